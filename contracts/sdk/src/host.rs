//! The host ABI (`pactum_v1`, see `docs/contract-abi.md`) as safe functions over slices.
//!
//! On `wasm32` these call the imports the VM links. Everywhere else they call the native
//! test harness ([`crate::testing`]), which implements the same ABI in process, so a
//! contract's code is the same in both.

use alloc::string::String;
use alloc::vec::Vec;

#[cfg(target_arch = "wasm32")]
pub(crate) use wasm::*;

#[cfg(not(target_arch = "wasm32"))]
pub(crate) use crate::testing::host::*;

/// The answer of `call` when the callee succeeded.
pub const CALL_SUCCESS: i32 = 0;
/// The callee reverted.
pub const CALL_REVERTED: i32 = 1;
/// The callee ran out of the gas it was given.
pub const CALL_OUT_OF_GAS: i32 = 2;
/// The callee trapped.
pub const CALL_TRAPPED: i32 = 3;
/// The call did not run (unknown contract, reentrancy, depth or instance limit).
pub const CALL_REFUSED: i32 = 4;

// Keep the native harness's functions in step with the wasm ones: both must provide
// every function below with the same signature.
#[allow(dead_code, clippy::type_complexity)]
fn _signatures_agree() {
    let _: fn() -> Vec<u8> = input;
    let _: fn() -> String = method;
    let _: fn(&[u8]) = return_set;
    let _: fn(&[u8]) -> Option<Vec<u8>> = storage_get;
    let _: fn(&[u8], &[u8]) = storage_set;
    let _: fn(&[u8]) = storage_remove;
    let _: fn() -> [u8; 32] = caller;
    let _: fn() -> [u8; 32] = self_address;
    let _: fn() -> u64 = block_height;
    let _: fn() -> u64 = block_timestamp_ms;
    let _: fn(&str, &[u8]) = event_emit;
    let _: fn(&str) -> ! = revert;
    let _: fn(&[u8]) -> [u8; 32] = sha3_256;
    let _: fn(&[u8; 32], &[u8], &[u8; 64]) -> bool = ed25519_verify;
    let _: fn(&[u8; 32], &str, &[u8], u64) -> (i32, Vec<u8>) = call;
}

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod wasm {
    use alloc::string::String;
    use alloc::vec;
    use alloc::vec::Vec;

    #[link(wasm_import_module = "pactum_v1")]
    unsafe extern "C" {
        #[link_name = "input_size"]
        fn host_input_size() -> i32;
        #[link_name = "input_copy"]
        fn host_input_copy(pointer: *mut u8);
        #[link_name = "method_size"]
        fn host_method_size() -> i32;
        #[link_name = "method_copy"]
        fn host_method_copy(pointer: *mut u8);
        #[link_name = "return_set"]
        fn host_return_set(pointer: *const u8, length: usize);
        #[link_name = "storage_get"]
        fn host_storage_get(
            key: *const u8,
            key_length: usize,
            value: *mut u8,
            capacity: usize,
        ) -> i32;
        #[link_name = "storage_set"]
        fn host_storage_set(
            key: *const u8,
            key_length: usize,
            value: *const u8,
            value_length: usize,
        );
        #[link_name = "storage_remove"]
        fn host_storage_remove(key: *const u8, key_length: usize);
        #[link_name = "caller"]
        fn host_caller(pointer: *mut u8);
        #[link_name = "self_address"]
        fn host_self_address(pointer: *mut u8);
        #[link_name = "block_height"]
        fn host_block_height() -> i64;
        #[link_name = "block_timestamp_ms"]
        fn host_block_timestamp_ms() -> i64;
        #[link_name = "event_emit"]
        fn host_event_emit(
            topic: *const u8,
            topic_length: usize,
            data: *const u8,
            data_length: usize,
        );
        #[link_name = "revert"]
        fn host_revert(reason: *const u8, reason_length: usize) -> !;
        #[link_name = "sha3_256"]
        fn host_sha3_256(data: *const u8, data_length: usize, output: *mut u8);
        #[link_name = "ed25519_verify"]
        fn host_ed25519_verify(
            key: *const u8,
            message: *const u8,
            message_length: usize,
            signature: *const u8,
        ) -> i32;
        #[link_name = "call"]
        fn host_call(
            address: *const u8,
            method: *const u8,
            method_length: usize,
            input: *const u8,
            input_length: usize,
            gas_limit: i64,
        ) -> i32;
        #[link_name = "call_result_size"]
        fn host_call_result_size() -> i32;
        #[link_name = "call_result_copy"]
        fn host_call_result_copy(pointer: *mut u8);
    }

    // SAFETY (for every call below): each pointer comes from a live slice, array or Vec
    // of this module, and each length is that buffer's length, so the host reads or
    // writes only memory the buffer owns. The host checks every range again and traps
    // rather than touch memory outside the contract's.

    pub(crate) fn input() -> Vec<u8> {
        let size = unsafe { host_input_size() } as usize;
        let mut buffer = vec![0u8; size];
        unsafe { host_input_copy(buffer.as_mut_ptr()) };
        buffer
    }

    pub(crate) fn method() -> String {
        let size = unsafe { host_method_size() } as usize;
        let mut buffer = vec![0u8; size];
        unsafe { host_method_copy(buffer.as_mut_ptr()) };
        // The VM only ever passes UTF-8 method names.
        String::from_utf8(buffer).unwrap_or_default()
    }

    pub(crate) fn return_set(data: &[u8]) {
        unsafe { host_return_set(data.as_ptr(), data.len()) }
    }

    pub(crate) fn storage_get(key: &[u8]) -> Option<Vec<u8>> {
        let mut buffer = vec![0u8; 128];
        let size =
            unsafe { host_storage_get(key.as_ptr(), key.len(), buffer.as_mut_ptr(), buffer.len()) };
        if size < 0 {
            return None;
        }
        let size = size as usize;
        if size > buffer.len() {
            buffer = vec![0u8; size];
            unsafe { host_storage_get(key.as_ptr(), key.len(), buffer.as_mut_ptr(), buffer.len()) };
        }
        buffer.truncate(size);
        Some(buffer)
    }

    pub(crate) fn storage_set(key: &[u8], value: &[u8]) {
        unsafe { host_storage_set(key.as_ptr(), key.len(), value.as_ptr(), value.len()) }
    }

    pub(crate) fn storage_remove(key: &[u8]) {
        unsafe { host_storage_remove(key.as_ptr(), key.len()) }
    }

    pub(crate) fn caller() -> [u8; 32] {
        let mut address = [0u8; 32];
        unsafe { host_caller(address.as_mut_ptr()) };
        address
    }

    pub(crate) fn self_address() -> [u8; 32] {
        let mut address = [0u8; 32];
        unsafe { host_self_address(address.as_mut_ptr()) };
        address
    }

    pub(crate) fn block_height() -> u64 {
        unsafe { host_block_height() as u64 }
    }

    pub(crate) fn block_timestamp_ms() -> u64 {
        unsafe { host_block_timestamp_ms() as u64 }
    }

    pub(crate) fn event_emit(topic: &str, data: &[u8]) {
        unsafe { host_event_emit(topic.as_ptr(), topic.len(), data.as_ptr(), data.len()) }
    }

    pub(crate) fn revert(reason: &str) -> ! {
        unsafe { host_revert(reason.as_ptr(), reason.len()) }
    }

    pub(crate) fn sha3_256(data: &[u8]) -> [u8; 32] {
        let mut digest = [0u8; 32];
        unsafe { host_sha3_256(data.as_ptr(), data.len(), digest.as_mut_ptr()) };
        digest
    }

    pub(crate) fn ed25519_verify(key: &[u8; 32], message: &[u8], signature: &[u8; 64]) -> bool {
        unsafe {
            host_ed25519_verify(key.as_ptr(), message.as_ptr(), message.len(), signature.as_ptr())
                == 1
        }
    }

    pub(crate) fn call(
        address: &[u8; 32],
        method: &str,
        input: &[u8],
        gas_limit: u64,
    ) -> (i32, Vec<u8>) {
        let gas_limit = i64::try_from(gas_limit).unwrap_or(i64::MAX);
        let status = unsafe {
            host_call(
                address.as_ptr(),
                method.as_ptr(),
                method.len(),
                input.as_ptr(),
                input.len(),
                gas_limit,
            )
        };
        let size = unsafe { host_call_result_size() } as usize;
        let mut result = vec![0u8; size];
        unsafe { host_call_result_copy(result.as_mut_ptr()) };
        (status, result)
    }
}
