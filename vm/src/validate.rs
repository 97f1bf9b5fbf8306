//! Deploy-time validation: the checks a module must pass before it is compiled and stored.
//!
//! The order is fixed and each failure has its own [`DeployError`]: size, WebAssembly
//! validity under the engine's features, no start function, imports only from the host
//! ABI with the right signatures, the required exports, and memory, table and data
//! segments within bounds.

use pactum_types::limits;
use wasmparser::{ExternalKind, Operator, Parser, Payload, TypeRef, ValType};

use crate::abi::{self, AbiType};
use crate::error::DeployError;

/// The exports every contract has: its memory, `pactum_init` (run once at deploy) and
/// `pactum_call` (every call). Both functions take and return nothing; arguments and
/// results travel through the host ABI.
pub const REQUIRED_EXPORTS: [(&str, &str); 3] = [
    ("memory", "memory"),
    ("pactum_init", "function () -> ()"),
    ("pactum_call", "function () -> ()"),
];

const WASM_PAGE_BYTES: u64 = 65_536;

/// Checks `code` against every deploy rule. `engine` checks validity with exactly the
/// features the VM compiles with.
pub(crate) fn validate(engine: &wasmtime::Engine, code: &[u8]) -> Result<(), DeployError> {
    if code.len() > limits::CONTRACT_CODE_BYTES_MAX {
        return Err(DeployError::CodeTooLarge {
            bytes: code.len(),
            max: limits::CONTRACT_CODE_BYTES_MAX,
        });
    }
    // The structure first: a few linear passes over the bytes bound everything that
    // validation and compilation cost before either runs.
    let structure = parse(code)?;
    check_counts(&structure)?;
    wasmtime::Module::validate(engine, code)
        .map_err(|error| DeployError::InvalidModule { reason: format!("{error:#}") })?;
    if structure.has_start {
        return Err(DeployError::StartFunction);
    }
    for import in &structure.imports {
        let known = import.module == abi::MODULE
            && abi::HOST_FUNCTIONS.iter().any(|function| {
                function.name == import.name
                    && import.signature.as_ref().is_some_and(|(params, results)| {
                        params.as_slice() == function.params
                            && results.as_slice() == function.results
                    })
            });
        if !known {
            return Err(DeployError::UnknownImport {
                module: import.module.clone(),
                name: import.name.clone(),
                abi: abi::MODULE,
            });
        }
    }
    for (name, kind) in REQUIRED_EXPORTS {
        let present = structure.exports.iter().any(|export| match export {
            Export::Memory(export_name) => kind == "memory" && export_name == name,
            Export::Function { name: export_name, signature } => {
                kind != "memory"
                    && export_name == name
                    && signature
                        .as_ref()
                        .is_some_and(|(params, results)| params.is_empty() && results.is_empty())
            }
        });
        if !present {
            return Err(DeployError::MissingExport { name, kind });
        }
    }
    let pages_max = (limits::CONTRACT_MEMORY_BYTES_MAX as u64) / WASM_PAGE_BYTES;
    let memory_pages = structure.memory_pages.unwrap_or(0);
    if memory_pages > pages_max {
        return Err(DeployError::MemoryTooLarge { pages: memory_pages, max: pages_max });
    }
    for elements in &structure.table_elements {
        if *elements > limits::CONTRACT_TABLE_ELEMENTS_MAX as u64 {
            return Err(DeployError::TableTooLarge {
                elements: *elements,
                max: limits::CONTRACT_TABLE_ELEMENTS_MAX as u64,
            });
        }
    }
    let memory_bytes = memory_pages * WASM_PAGE_BYTES;
    for segment in &structure.data_segments {
        // A constant offset is checked exactly; any other offset expression is checked
        // at instantiation, where an out-of-bounds segment traps.
        if let Some(start) = segment.offset {
            let end = start + segment.length;
            if end > memory_bytes {
                return Err(DeployError::DataSegmentOutOfBounds {
                    index: segment.index,
                    start,
                    end,
                    memory_bytes,
                });
            }
        }
    }
    Ok(())
}

/// The module's counts against `limits`.
fn check_counts(structure: &Structure) -> Result<(), DeployError> {
    let counts = [
        ("functions", structure.functions, limits::CONTRACT_FUNCTIONS_MAX),
        ("function types", structure.types, limits::CONTRACT_TYPES_MAX),
        ("globals", structure.globals, limits::CONTRACT_GLOBALS_MAX),
        ("tables", structure.table_elements.len(), limits::CONTRACT_TABLES_MAX),
        ("data segments", structure.data_segment_count, limits::CONTRACT_DATA_SEGMENTS_MAX),
    ];
    for (what, count, max) in counts {
        if count > max {
            return Err(DeployError::TooMany { what, count: count as u64, max: max as u64 });
        }
    }
    for body in &structure.bodies {
        if body.bytes > limits::CONTRACT_FUNCTION_BODY_BYTES_MAX {
            return Err(DeployError::FunctionTooLarge {
                index: body.index,
                what: "has a body of bytes",
                count: body.bytes as u64,
                max: limits::CONTRACT_FUNCTION_BODY_BYTES_MAX as u64,
            });
        }
        if body.locals > limits::CONTRACT_FUNCTION_LOCALS_MAX {
            return Err(DeployError::FunctionTooLarge {
                index: body.index,
                what: "declares locals:",
                count: body.locals,
                max: limits::CONTRACT_FUNCTION_LOCALS_MAX,
            });
        }
    }
    Ok(())
}

/// A function body's size and declared locals.
struct Body {
    /// The function's index (imports first).
    index: u32,
    bytes: usize,
    locals: u64,
}

struct Import {
    module: String,
    name: String,
    signature: Option<(Vec<AbiType>, Vec<AbiType>)>,
}

enum Export {
    Memory(String),
    Function { name: String, signature: Option<(Vec<AbiType>, Vec<AbiType>)> },
}

struct DataSegment {
    index: u32,
    offset: Option<u64>,
    length: u64,
}

#[derive(Default)]
struct Structure {
    has_start: bool,
    imports: Vec<Import>,
    exports: Vec<Export>,
    memory_pages: Option<u64>,
    table_elements: Vec<u64>,
    data_segments: Vec<DataSegment>,
    data_segment_count: usize,
    functions: usize,
    types: usize,
    globals: usize,
    bodies: Vec<Body>,
}

fn abi_type(value: ValType) -> Option<AbiType> {
    match value {
        ValType::I32 => Some(AbiType::I32),
        ValType::I64 => Some(AbiType::I64),
        _ => None,
    }
}

/// The signature of a function type, or `None` if it uses a type the ABI never does.
fn signature(params: &[ValType], results: &[ValType]) -> Option<(Vec<AbiType>, Vec<AbiType>)> {
    let params: Option<Vec<AbiType>> = params.iter().copied().map(abi_type).collect();
    let results: Option<Vec<AbiType>> = results.iter().copied().map(abi_type).collect();
    Some((params?, results?))
}

fn parse(code: &[u8]) -> Result<Structure, DeployError> {
    let invalid = |error: wasmparser::BinaryReaderError| DeployError::InvalidModule {
        reason: error.to_string(),
    };
    let mut structure = Structure::default();
    let mut types: Vec<Option<(Vec<AbiType>, Vec<AbiType>)>> = Vec::new();
    let mut function_types: Vec<u32> = Vec::new();
    let mut exports: Vec<(String, ExternalKind, u32)> = Vec::new();
    let mut defined_functions = 0usize;
    for payload in Parser::new(0).parse_all(code) {
        match payload.map_err(invalid)? {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub_type in group.map_err(invalid)?.into_types() {
                        types.push(match sub_type.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(function) => {
                                signature(function.params(), function.results())
                            }
                            _ => None,
                        });
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import.map_err(invalid)?;
                    let signature = match import.ty {
                        TypeRef::Func(type_index) | TypeRef::FuncExact(type_index) => {
                            function_types.push(type_index);
                            types.get(type_index as usize).cloned().flatten()
                        }
                        _ => None,
                    };
                    structure.imports.push(Import {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        signature,
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for type_index in reader {
                    function_types.push(type_index.map_err(invalid)?);
                    defined_functions += 1;
                }
            }
            Payload::MemorySection(reader) => {
                for memory in reader {
                    let memory = memory.map_err(invalid)?;
                    structure.memory_pages = Some(memory.initial);
                }
            }
            Payload::TableSection(reader) => {
                for table in reader {
                    structure.table_elements.push(table.map_err(invalid)?.ty.initial);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export.map_err(invalid)?;
                    exports.push((export.name.to_string(), export.kind, export.index));
                }
            }
            Payload::StartSection { .. } => structure.has_start = true,
            Payload::GlobalSection(reader) => structure.globals += reader.count() as usize,
            Payload::CodeSectionEntry(body) => {
                let index = (function_types.len() - defined_functions) as u32
                    + structure.bodies.len() as u32;
                let mut locals = 0u64;
                for local in body.get_locals_reader().map_err(invalid)? {
                    let (count, _) = local.map_err(invalid)?;
                    // Saturating: a body may declare up to 2^32 - 1 locals per entry.
                    locals = locals.saturating_add(u64::from(count));
                }
                structure.bodies.push(Body { index, bytes: body.range().len(), locals });
            }
            Payload::DataSection(reader) => {
                structure.data_segment_count += reader.count() as usize;
                for (index, data) in reader.into_iter().enumerate() {
                    let data = data.map_err(invalid)?;
                    if let wasmparser::DataKind::Active { offset_expr, .. } = data.kind {
                        let mut operators = offset_expr.get_operators_reader();
                        let offset = match operators.read().map_err(invalid)? {
                            Operator::I32Const { value } => Some(u64::from(value as u32)),
                            _ => None,
                        };
                        structure.data_segments.push(DataSegment {
                            index: index as u32,
                            offset,
                            length: data.data.len() as u64,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    structure.functions = function_types.len();
    structure.types = types.len();
    for (name, kind, index) in exports {
        match kind {
            ExternalKind::Memory => structure.exports.push(Export::Memory(name)),
            ExternalKind::Func | ExternalKind::FuncExact => {
                let signature = function_types
                    .get(index as usize)
                    .and_then(|type_index| types.get(*type_index as usize).cloned().flatten());
                structure.exports.push(Export::Function { name, signature });
            }
            _ => {}
        }
    }
    Ok(structure)
}
