//! The pieces a `no_std` WebAssembly module needs: an allocator and a panic handler.

#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::sync::atomic::{AtomicUsize, Ordering};

const PAGE_BYTES: usize = 65_536;

/// A bump allocator. A contract instance lives for one call, so memory is never reused;
/// `dealloc` does nothing and the VM's memory cap bounds what a call can take.
struct BumpAllocator {
    next: AtomicUsize,
}

unsafe extern "C" {
    /// The first byte after the data and the stack, placed by the linker.
    static __heap_base: u8;
}

// SAFETY: `alloc` hands out disjoint, correctly aligned ranges inside linear memory,
// growing it first when needed; it returns null when memory cannot grow, as required.
unsafe impl GlobalAlloc for BumpAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut next = self.next.load(Ordering::Relaxed);
        if next == 0 {
            // Only the address of the linker symbol is taken, never its value.
            next = core::ptr::addr_of!(__heap_base) as usize;
        }
        let Some(start) =
            next.checked_add(layout.align() - 1).map(|value| value & !(layout.align() - 1))
        else {
            return core::ptr::null_mut();
        };
        let Some(end) = start.checked_add(layout.size()) else {
            return core::ptr::null_mut();
        };
        let size = core::arch::wasm32::memory_size(0) * PAGE_BYTES;
        if end > size {
            let pages = (end - size).div_ceil(PAGE_BYTES);
            if core::arch::wasm32::memory_grow(0, pages) == usize::MAX {
                return core::ptr::null_mut();
            }
        }
        self.next.store(end, Ordering::Relaxed);
        start as *mut u8
    }

    unsafe fn dealloc(&self, _pointer: *mut u8, _layout: Layout) {}
}

#[global_allocator]
static ALLOCATOR: BumpAllocator = BumpAllocator { next: AtomicUsize::new(0) };

#[panic_handler]
fn panic(_info: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}
