//! The global allocator of rulebridge's binaries (the CLI and the send benchmark, so the
//! benchmark measures what the CLI runs).
//!
//! mimalloc instead of the system allocator: a record's evaluation makes a few dozen small
//! allocations, and glibc's malloc and free were a quarter of a dry run's instructions (see
//! BENCHMARKS.md). Its version 3: version 2 makes a two-thread dry run cost 4% more CPU than
//! one thread instead of 14%, but a dry run of 10 MB records peaks at 296–307 MB with it
//! instead of 186–200 MB. It is called through its plain entry points where the alignment
//! asked for is one every mimalloc block has (the `mimalloc` crate calls the aligned ones
//! for every allocation, a slower path).
//!
//! ```
//! #[global_allocator]
//! static ALLOC: rulebridge_alloc::Mimalloc = rulebridge_alloc::Mimalloc;
//! # fn main() { assert_eq!(vec![1u8; 3].len(), 3); }
//! ```

use std::alloc::{GlobalAlloc, Layout};

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// mimalloc as a [`GlobalAlloc`].
pub struct Mimalloc;

/// Every mimalloc block is aligned to a machine word at least.
const WORD: usize = std::mem::size_of::<usize>();

// SAFETY: each method forwards to the mimalloc function with the same contract; the plain
// ones are used only for alignments every block satisfies.
unsafe impl GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= WORD {
                mi_malloc(layout.size()).cast()
            } else {
                mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= WORD {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator.
        unsafe { mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe {
            if layout.align() <= WORD {
                mi_realloc(ptr.cast(), new_size).cast()
            } else {
                mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_the_alignment_asked_for_through_realloc() {
        for align in [1, 2, 8, 16, 64, 4096] {
            let layout = Layout::from_size_align(24, align).expect("layout");
            // SAFETY: a non-zero size; every pointer is freed once, with its layout.
            unsafe {
                let p = Mimalloc.alloc_zeroed(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "align {align}");
                assert!(std::slice::from_raw_parts(p, 24).iter().all(|b| *b == 0));
                p.write_bytes(7, 24);
                let q = Mimalloc.realloc(p, layout, 10_000);
                assert!(!q.is_null());
                assert_eq!(q as usize % align, 0, "align {align} after realloc");
                assert!(std::slice::from_raw_parts(q, 24).iter().all(|b| *b == 7));
                Mimalloc.dealloc(q, Layout::from_size_align(10_000, align).expect("layout"));
            }
        }
    }
}
