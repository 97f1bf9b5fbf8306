//! A contract's interface: the methods it answers, their argument and return types, and
//! the records those types name.
//!
//! The SDK's `contract!` and `record!` macros write it into the module's custom section
//! [`SECTION`] as lines of text, from the same declarations the compiler checks:
//!
//! ```text
//! init(name:String)
//! method transfer(to:Address,amount:u128)->()
//! method history(id:String)->Vec<Step>
//! record Step{kind:String,actor:Address,height:u64}
//! ```
//!
//! Nothing in consensus reads it: the VM ignores custom sections, and a module without
//! one, or with one that does not parse, deploys and runs as before. Clients (the console,
//! the API) use it to build argument forms and to decode return data. It describes what
//! the contract's author declared; the code is what runs.

use serde::{Deserialize, Serialize};

/// The custom section's name.
pub const SECTION: &str = "pactum_interface";

/// The largest interface the node reads: 64 KiB of text.
pub const SECTION_BYTES_MAX: usize = 64 * 1024;

/// A value's type in the contract encoding (`pactum_sdk::codec`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Type {
    Unit,
    Bool,
    U8,
    U16,
    U32,
    U64,
    U128,
    I32,
    I64,
    I128,
    String,
    Address,
    /// `[u8; length]`, written without a length prefix.
    FixedBytes {
        length: usize,
    },
    Vec {
        item: Box<Type>,
    },
    Option {
        item: Box<Type>,
    },
    Tuple {
        items: Vec<Type>,
    },
    /// A record declared in the same interface.
    Record {
        name: String,
    },
}

/// A named argument or record field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Type,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Method {
    pub name: String,
    pub arguments: Vec<Field>,
    pub returns: Type,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub name: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    /// The deploy's arguments.
    pub init: Vec<Field>,
    pub methods: Vec<Method>,
    pub records: Vec<Record>,
}

impl Interface {
    pub fn method(&self, name: &str) -> Option<&Method> {
        self.methods.iter().find(|method| method.name == name)
    }

    pub fn record(&self, name: &str) -> Option<&Record> {
        self.records.iter().find(|record| record.name == name)
    }

    /// Parses the section's text; every record a type names must be declared, and no
    /// name may be declared twice.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut interface = Self::default();
        let mut init = None;
        for (number, line) in text.lines().enumerate() {
            let line: String =
                line.chars().filter(|character| !character.is_whitespace()).collect();
            let at = |error: String| format!("line {}: {error}", number + 1);
            if line.is_empty() {
                continue;
            }
            if let Some(rest) = line.strip_prefix("method") {
                let (name, arguments, rest) = signature(rest, '(', ')').map_err(at)?;
                let returns = match rest.strip_prefix("->") {
                    _ if rest.is_empty() => Type::Unit,
                    Some("") => Type::Unit,
                    Some(returns) => parse_type(returns).map_err(at)?,
                    None => return Err(at(format!("unexpected {rest:?} after the arguments"))),
                };
                if interface.method(&name).is_some() {
                    return Err(at(format!("method {name} is declared twice")));
                }
                interface.methods.push(Method { name, arguments, returns });
            } else if let Some(rest) = line.strip_prefix("record") {
                let (name, fields, rest) = signature(rest, '{', '}').map_err(at)?;
                if !rest.is_empty() {
                    return Err(at(format!("unexpected {rest:?} after the fields")));
                }
                if interface.record(&name).is_some() {
                    return Err(at(format!("record {name} is declared twice")));
                }
                interface.records.push(Record { name, fields });
            } else if line.starts_with("init(") {
                let (_, arguments, rest) = signature(&line, '(', ')').map_err(at)?;
                if !rest.is_empty() || init.replace(arguments).is_some() {
                    return Err(at("a second or malformed init line".into()));
                }
            } else {
                return Err(at(format!("{line:?} is not an init, method or record line")));
            }
        }
        interface.init = init.unwrap_or_default();
        interface.check_records()?;
        Ok(interface)
    }

    fn check_records(&self) -> Result<(), String> {
        fn named<'a>(kind: &'a Type, out: &mut Vec<&'a str>) {
            match kind {
                Type::Record { name } => out.push(name),
                Type::Vec { item } | Type::Option { item } => named(item, out),
                Type::Tuple { items } => items.iter().for_each(|item| named(item, out)),
                _ => {}
            }
        }
        let mut names = Vec::new();
        let fields = self
            .init
            .iter()
            .chain(self.methods.iter().flat_map(|method| &method.arguments))
            .chain(self.records.iter().flat_map(|record| &record.fields));
        for field in fields {
            named(&field.kind, &mut names);
        }
        for method in &self.methods {
            named(&method.returns, &mut names);
        }
        match names.into_iter().find(|name| self.record(name).is_none()) {
            Some(name) => Err(format!("type {name} is neither built in nor a declared record")),
            None => Ok(()),
        }
    }
}

/// `name<open>field:type,...<close>rest` → the name, the fields and the rest.
fn signature(text: &str, open: char, close: char) -> Result<(String, Vec<Field>, &str), String> {
    let start = text.find(open).ok_or_else(|| format!("no {open:?} in {text:?}"))?;
    let name = &text[..start];
    if !is_identifier(name) {
        return Err(format!("{name:?} is not a name"));
    }
    let end = matching(text, start).ok_or_else(|| format!("no matching {close:?}"))?;
    let mut fields: Vec<Field> = Vec::new();
    for part in split_top_level(&text[start + 1..end]) {
        let (field, kind) =
            part.split_once(':').ok_or_else(|| format!("{part:?} is not `name: type`"))?;
        if !is_identifier(field) || fields.iter().any(|seen| seen.name == field) {
            return Err(format!("{field:?} is not a new field name"));
        }
        fields.push(Field { name: field.to_owned(), kind: parse_type(kind)? });
    }
    Ok((name.to_owned(), fields, &text[end + 1..]))
}

fn is_identifier(text: &str) -> bool {
    let mut characters = text.chars();
    characters.next().is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && characters.all(|character| character.is_ascii_alphanumeric() || character == '_')
}

/// The index of the bracket closing the one at `start`.
fn matching(text: &str, start: usize) -> Option<usize> {
    let mut depth = 0usize;
    for (index, character) in text.char_indices().skip_while(|(index, _)| *index < start) {
        match character {
            '(' | '<' | '[' | '{' => depth += 1,
            ')' | '>' | ']' | '}' => {
                depth = depth.checked_sub(1)?;
                if depth == 0 {
                    return Some(index);
                }
            }
            _ => {}
        }
    }
    None
}

/// `a,b<c,d>,(e,f)` → `a`, `b<c,d>`, `(e,f)`; empty parts (a trailing comma) dropped.
fn split_top_level(text: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut from) = (0i32, 0usize);
    for (index, character) in text.char_indices() {
        match character {
            '(' | '<' | '[' | '{' => depth += 1,
            ')' | '>' | ']' | '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[from..index]);
                from = index + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[from..]);
    parts.into_iter().filter(|part| !part.is_empty()).collect()
}

/// How deeply types may nest: the section is any deployer's text, and the node parses it
/// on a request thread.
pub const NESTING_MAX: usize = 16;

/// A Rust type as the macros write it (whitespace removed), e.g. `Vec<(Address,u128)>`.
pub fn parse_type(text: &str) -> Result<Type, String> {
    parse_nested(text, 0)
}

fn parse_nested(text: &str, depth: usize) -> Result<Type, String> {
    if depth > NESTING_MAX {
        return Err(format!("a type nests more than {NESTING_MAX} deep"));
    }
    let unknown = || format!("{text:?} is not a type of the contract encoding");
    if let Some(inner) = text.strip_prefix('(').and_then(|rest| rest.strip_suffix(')')) {
        let items = split_top_level(inner)
            .into_iter()
            .map(|item| parse_nested(item, depth + 1))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(if items.is_empty() { Type::Unit } else { Type::Tuple { items } });
    }
    if let Some(inner) = text.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
        return match inner.split_once(';') {
            Some(("u8", "32")) => Ok(Type::FixedBytes { length: 32 }),
            Some(("u8", "64")) => Ok(Type::FixedBytes { length: 64 }),
            _ => Err(unknown()),
        };
    }
    if let Some(open) = text.find('<') {
        let inner = text[open + 1..].strip_suffix('>').ok_or_else(unknown)?;
        let item = Box::new(parse_nested(inner, depth + 1)?);
        return match last_segment(&text[..open]) {
            "Vec" => Ok(Type::Vec { item }),
            "Option" => Ok(Type::Option { item }),
            _ => Err(unknown()),
        };
    }
    Ok(match last_segment(text) {
        "bool" => Type::Bool,
        "u8" => Type::U8,
        "u16" => Type::U16,
        "u32" => Type::U32,
        "u64" => Type::U64,
        "u128" => Type::U128,
        "i32" => Type::I32,
        "i64" => Type::I64,
        "i128" => Type::I128,
        "String" => Type::String,
        "Address" => Type::Address,
        name if is_identifier(name) => Type::Record { name: name.to_owned() },
        _ => return Err(unknown()),
    })
}

/// `alloc::string::String` → `String`.
fn last_segment(path: &str) -> &str {
    path.rsplit("::").next().unwrap_or(path)
}

/// The text of `module`'s interface section: `None` when it has none, an error when the
/// module's sections are malformed or the section is too large or not UTF-8.
pub fn section_text(module: &[u8]) -> Result<Option<String>, String> {
    let mut rest =
        module.strip_prefix(b"\0asm\x01\0\0\0".as_slice()).ok_or("not a WebAssembly module")?;
    let mut text: Option<String> = None;
    while let Some((&id, after)) = rest.split_first() {
        let (size, after) = leb128(after).ok_or("a section's size is malformed")?;
        if after.len() < size {
            return Err("a section runs past the end of the module".into());
        }
        let (content, after) = after.split_at(size);
        rest = after;
        if id != 0 {
            continue;
        }
        let (length, name_and_data) = leb128(content).ok_or("a custom section is malformed")?;
        if name_and_data.len() < length {
            return Err("a custom section's name runs past its end".into());
        }
        let (name, data) = name_and_data.split_at(length);
        if name != SECTION.as_bytes() {
            continue;
        }
        // The linker may split what the macros wrote across several sections of the name.
        let piece = std::str::from_utf8(data).map_err(|_| "the interface is not UTF-8")?;
        let text = text.get_or_insert_with(String::new);
        if text.len() + piece.len() > SECTION_BYTES_MAX {
            return Err(format!("the interface is over {SECTION_BYTES_MAX} bytes"));
        }
        text.push_str(piece);
    }
    Ok(text)
}

/// The interface `module` declares, if any.
pub fn of_module(module: &[u8]) -> Result<Option<Interface>, String> {
    section_text(module)?.map(|text| Interface::parse(&text)).transpose()
}

fn leb128(bytes: &[u8]) -> Option<(usize, &[u8])> {
    let mut value = 0usize;
    for (index, &byte) in bytes.iter().enumerate().take(5) {
        value |= usize::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return Some((value, &bytes[index + 1..]));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "init(name: String)\n\
        method transfer(to: Address, amount: u128) -> ()\n\
        method history(id: String) -> Vec<Step>\n\
        method pairs() -> Vec<(Address, Option<u64>)>\n\
        method hash(data: alloc::vec::Vec<u8>) -> [u8; 32]\n\
        record Step{kind: String, actor: Address, seen: bool}\n";

    #[test]
    fn the_macros_text_parses_into_methods_records_and_types() {
        let interface = Interface::parse(TEXT).unwrap();
        assert_eq!(interface.init, vec![Field { name: "name".into(), kind: Type::String }]);
        assert_eq!(interface.methods.len(), 4);
        assert_eq!(interface.method("transfer").unwrap().returns, Type::Unit);
        assert_eq!(
            interface.method("history").unwrap().returns,
            Type::Vec { item: Box::new(Type::Record { name: "Step".into() }) }
        );
        assert_eq!(
            interface.method("pairs").unwrap().returns,
            Type::Vec {
                item: Box::new(Type::Tuple {
                    items: vec![Type::Address, Type::Option { item: Box::new(Type::U64) }]
                })
            }
        );
        assert_eq!(
            interface.method("hash").unwrap().arguments[0].kind,
            Type::Vec { item: Box::new(Type::U8) }
        );
        assert_eq!(interface.record("Step").unwrap().fields[2].kind, Type::Bool);
    }

    #[test]
    fn a_malformed_interface_is_refused_with_its_line() {
        let deep = format!("method f(x: {}u8{})", "Vec<".repeat(10_000), ">".repeat(10_000));
        for (text, expected) in [
            ("method f(x: f64)", "type f64 is neither built in"),
            ("method f(x: Missing)", "Missing is neither built in"),
            ("method f(x: u8)\nmethod f()", "line 2: method f is declared twice"),
            ("method f(x: u8, x: u8)", "not a new field name"),
            ("method f(x: [u8; 7])", "not a type"),
            ("function f()", "not an init, method or record line"),
            ("method f(x: u8", "no matching"),
            (deep.as_str(), "nests more than 16"),
        ] {
            let error = Interface::parse(text).unwrap_err();
            assert!(error.contains(expected), "{text:?}: {error}");
        }
    }

    #[test]
    fn the_section_is_found_among_a_modules_sections_and_its_pieces_joined() {
        fn custom(name: &str, data: &str) -> Vec<u8> {
            let mut content = vec![name.len() as u8];
            content.extend_from_slice(name.as_bytes());
            content.extend_from_slice(data.as_bytes());
            let mut section = vec![0, content.len() as u8];
            section.extend(content);
            section
        }
        let mut module = b"\0asm\x01\0\0\0".to_vec();
        module.extend([1, 1, 0]); // an empty type section
        module.extend(custom("name", "ignored"));
        module.extend(custom(SECTION, "method a()\n"));
        module.extend(custom(SECTION, "method b() -> u8\n"));
        let interface = of_module(&module).unwrap().unwrap();
        assert_eq!(interface.methods.len(), 2);
        assert_eq!(of_module(b"\0asm\x01\0\0\0").unwrap(), None);
        module.extend([0, 100, 1]);
        assert!(section_text(&module).unwrap_err().contains("past the end"));
    }
}
