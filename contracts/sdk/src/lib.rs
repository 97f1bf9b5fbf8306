//! The Pactum contract SDK.
//!
//! A contract is a plain Rust module of functions, each returning `Result<T, E>` where
//! `T` is [`Encode`] and `E` converts into a [`Revert`]. The [`contract!`] macro names the
//! init function and the callable methods and generates the entry points the VM calls
//! (`pactum_init`, `pactum_call`): it decodes the arguments, calls the function, and sets
//! the encoded result as return data or reverts with the error's reason.
//!
//! - [`env`]: caller, own address, block height and time, events, hashing, signatures,
//!   calls to other contracts;
//! - [`storage`]: typed single values ([`storage::Value`]) and maps ([`storage::Map`]),
//!   namespaced to the contract by the VM;
//! - [`codec`]: the argument, return and storage encoding;
//! - [`testing`] (native builds only): a mock chain to unit-test contracts with
//!   `cargo test`, without a node or a VM.
//!
//! The library is `no_std` + `alloc`. On `wasm32` it supplies the allocator (a bump
//! allocator: each call runs in a fresh instance, so nothing needs freeing) and the panic
//! handler (a panic traps). It must never reach for anything the host ABI does not give:
//! no clock, no randomness, no IO.

#![no_std]

extern crate alloc;
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

pub mod codec;
pub mod env;
pub mod host;
pub mod storage;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
#[cfg(target_arch = "wasm32")]
mod wasm_runtime;

use alloc::string::String;

pub use codec::{Decode, DecodeError, Encode};

/// A 32-byte identity: an account's Ed25519 public key, or a contract's address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Address(pub [u8; 32]);

/// A contract error: the transaction reverts with this reason, its state changes are
/// discarded, and its gas is charged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Revert {
    pub reason: String,
}

impl Revert {
    pub fn new(reason: impl Into<String>) -> Self {
        Self { reason: reason.into() }
    }
}

impl From<&str> for Revert {
    fn from(reason: &str) -> Self {
        Self::new(reason)
    }
}

impl From<String> for Revert {
    fn from(reason: String) -> Self {
        Self::new(reason)
    }
}

impl From<DecodeError> for Revert {
    fn from(error: DecodeError) -> Self {
        Self::new(alloc::format!("bad input: {error}"))
    }
}

/// What a contract function returns.
pub type Result<T, E = Revert> = core::result::Result<T, E>;

/// Returns `Err(Revert)` with the given reason unless `condition` holds.
#[macro_export]
macro_rules! ensure {
    ($condition:expr, $($reason:tt)+) => {
        if !$condition {
            return Err($crate::Revert::new($crate::__private::format!($($reason)+)).into());
        }
    };
}

#[doc(hidden)]
pub mod __private {
    pub use alloc::format;
    pub use alloc::vec::Vec;

    use crate::{Revert, host};

    /// Ends an entry point: sets the return data, or reverts.
    pub fn finish(result: crate::Result<Vec<u8>>) {
        match result {
            Ok(data) => host::return_set(&data),
            Err(revert) => host::revert(&revert.reason),
        }
    }

    pub fn unknown_method(method: &str) -> Revert {
        Revert::new(format!("unknown method `{method}`"))
    }

    pub fn method() -> alloc::string::String {
        host::method()
    }

    pub fn input() -> Vec<u8> {
        host::input()
    }

    /// `text` as an array of its bytes, for the interface section's statics.
    pub const fn bytes<const N: usize>(text: &str) -> [u8; N] {
        let source = text.as_bytes();
        assert!(source.len() == N, "the interface text and its array differ in length");
        let mut out = [0u8; N];
        let mut index = 0;
        while index < N {
            out[index] = source[index];
            index += 1;
        }
        out
    }
}

/// The type a method declares it returns: `()` when it declares none.
#[doc(hidden)]
#[macro_export]
macro_rules! __return_type {
    () => {
        ()
    };
    ($returns:ty) => {
        $returns
    };
}

/// Writes `$text` (a `&'static str` constant) into the module's `pactum_interface`
/// custom section; the linker joins every such piece into one section.
#[doc(hidden)]
#[macro_export]
macro_rules! __interface_section {
    ($text:expr) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            #[allow(unsafe_code)] // `link_section` names the custom section; nothing runs.
            #[unsafe(link_section = "pactum_interface")]
            #[used]
            static PACTUM_INTERFACE_PIECE: [u8; $text.len()] = $crate::__private::bytes($text);
        };
    };
}

/// Declares a struct whose fields are encoded one after another, so it can be stored,
/// passed as an argument, returned and emitted.
#[macro_export]
macro_rules! record {
    (
        $(#[$meta:meta])*
        $visibility:vis struct $name:ident { $($field_visibility:vis $field:ident : $type:ty),* $(,)? }
    ) => {
        $(#[$meta])*
        $visibility struct $name { $($field_visibility $field: $type),* }

        impl $crate::Encode for $name {
            fn encode_to(&self, out: &mut $crate::__private::Vec<u8>) {
                $( $crate::Encode::encode_to(&self.$field, out); )*
            }
        }

        impl $crate::Decode for $name {
            fn decode_from(input: &mut &[u8]) -> ::core::result::Result<Self, $crate::DecodeError> {
                Ok(Self { $($field: <$type as $crate::Decode>::decode_from(input)?),* })
            }
        }

        impl $name {
            /// This record's line in the contract's interface section.
            pub const INTERFACE: &'static str = concat!(
                "record ", stringify!($name), "{", $(stringify!($field), ":", stringify!($type), ",",)* "}\n"
            );
        }

        $crate::__interface_section!($name::INTERFACE);
    };
}

/// Declares a contract's entry points and its interface.
///
/// ```text
/// pactum_sdk::contract! {
///     init(issuer: Address, name: String) => init;
///     methods {
///         mint(to: Address, amount: u128);
///         balance(owner: Address) -> u128;
///     }
/// }
/// ```
///
/// `init` names the function run once at deploy with the deploy's input; each method is
/// a function of the same name in the invoking module. Arguments arrive as the encoded
/// tuple of their types; a function's `Ok` value is encoded as the return data, and its
/// type must be the one declared after `->` (`()` when none is): the compiler checks it.
///
/// The declarations are also the contract's interface (`INTERFACE`, one line per init,
/// method and — from [`record!`] — record), written into the module's
/// `pactum_interface` custom section, which clients read to build argument forms and to
/// decode return data. On native builds the macro also defines `NATIVE`, the contract's
/// entry points for the test harness.
#[macro_export]
macro_rules! contract {
    (
        init($($init_argument:ident : $init_type:ty),* $(,)?) => $init:path;
        methods {
            $( $method:ident ( $($argument:ident : $type:ty),* $(,)? ) $(-> $returns:ty)?; )*
        }
    ) => {
        /// The contract's init and methods, as written into its interface section (with
        /// each record's line).
        pub const INTERFACE: &str = concat!(
            "init(", $(stringify!($init_argument), ":", stringify!($init_type), ",",)* ")\n",
            $(
                "method ", stringify!($method), "(",
                $(stringify!($argument), ":", stringify!($type), ",",)*
                ")->", $(stringify!($returns),)? "\n",
            )*
        );

        $crate::__interface_section!(INTERFACE);

        /// The deploy entry point, called once by the VM (or the test harness).
        pub fn __pactum_init_entry() {
            let input = $crate::__private::input();
            let result = (|| -> $crate::Result<$crate::__private::Vec<u8>> {
                let ($($init_argument,)*) = <($($init_type,)*) as $crate::Decode>::decode(&input)?;
                let output = $init($($init_argument),*).map_err(::core::convert::Into::<$crate::Revert>::into)?;
                Ok($crate::Encode::encode(&output))
            })();
            $crate::__private::finish(result);
        }

        /// The call entry point: dispatches on the method name.
        pub fn __pactum_call_entry() {
            let method = $crate::__private::method();
            let input = $crate::__private::input();
            let result = (|| -> $crate::Result<$crate::__private::Vec<u8>> {
                match method.as_str() {
                    $(
                        stringify!($method) => {
                            let ($($argument,)*) = <($($type,)*) as $crate::Decode>::decode(&input)?;
                            let output: $crate::__return_type!($($returns)?) =
                                self::$method($($argument),*).map_err(::core::convert::Into::<$crate::Revert>::into)?;
                            Ok($crate::Encode::encode(&output))
                        }
                    )*
                    other => Err($crate::__private::unknown_method(other)),
                }
            })();
            $crate::__private::finish(result);
        }

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)] // `no_mangle` exports the entry point under the ABI's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn pactum_init() {
            __pactum_init_entry();
        }

        #[cfg(target_arch = "wasm32")]
        #[allow(unsafe_code)] // `no_mangle` exports the entry point under the ABI's name.
        #[unsafe(no_mangle)]
        pub extern "C" fn pactum_call() {
            __pactum_call_entry();
        }

        /// The contract's entry points for the native test harness.
        #[cfg(not(target_arch = "wasm32"))]
        pub const NATIVE: $crate::testing::NativeContract = $crate::testing::NativeContract {
            name: env!("CARGO_PKG_NAME"),
            init: __pactum_init_entry,
            call: __pactum_call_entry,
        };
    };
}
