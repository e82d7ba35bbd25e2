//! The global allocator of rulebridge's binaries (the CLI and the send benchmark, so the
//! benchmark measures what the CLI runs).
//!
//! mimalloc instead of the system allocator: a record's evaluation makes a few dozen small
//! allocations, and glibc's malloc and free were a quarter of a dry run's instructions (see
//! BENCHMARKS.md). Its version 2: a two-thread dry run costs about 4% more CPU than one
//! thread with it, against 14% with version 3.
//!
//! Blocks of [`LARGE`] bytes or more (a 10 MB record's line, its parsed text, its output) are
//! mapped from the kernel on their own (Linux) and unmapped when freed, and grow in place or
//! by remapping, without a copy. mimalloc 2 keeps such blocks in its 32 MiB segments, which
//! it holds per thread while any block in them lives: a dry run of 10 MB records peaked at
//! 296–307 MB with it, against 186–200 MB with version 3.
//!
//! mimalloc is called through its plain entry points where the alignment asked for is one
//! every mimalloc block has (the `mimalloc` crate calls the aligned ones for every
//! allocation, a slower path).
//!
//! ```
//! #[global_allocator]
//! static ALLOC: rulebridge_alloc::Mimalloc = rulebridge_alloc::Mimalloc;
//! # fn main() {
//! let small = vec![1u8; 3];
//! let large = vec![2u8; 8 << 20];
//! assert_eq!((small.len(), large[(8 << 20) - 1]), (3, 2));
//! # }
//! ```

use std::alloc::{GlobalAlloc, Layout};

use libmimalloc_sys::{
    mi_free, mi_malloc, mi_malloc_aligned, mi_realloc, mi_realloc_aligned, mi_zalloc,
    mi_zalloc_aligned,
};

/// mimalloc for small blocks, the kernel's pages for large ones.
pub struct Mimalloc;

/// Every mimalloc block is aligned to a machine word at least.
const WORD: usize = std::mem::size_of::<usize>();

/// The size from which a block is mapped on its own (Linux).
pub const LARGE: usize = 4 << 20;

/// Whether a block of this layout lives in its own mapping. Mappings are page-aligned,
/// which covers every alignment up to a page; the size alone then tells, at free and
/// realloc, which side owns a block.
#[inline]
fn mapped(layout: Layout) -> bool {
    cfg!(target_os = "linux") && layout.size() >= LARGE && layout.align() <= pages::PAGE
}

// SAFETY: small blocks forward to the mimalloc function with the same contract, using the
// plain ones only for alignments every block satisfies; large blocks are whole page
// mappings (see `pages`), recognised by the layout the caller must pass back.
unsafe impl GlobalAlloc for Mimalloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if mapped(layout) {
            return pages::map(layout.size(), false);
        }
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
        if mapped(layout) {
            // Fresh anonymous pages are zero.
            return pages::map(layout.size(), true);
        }
        // SAFETY: see the impl.
        unsafe {
            if layout.align() <= WORD {
                mi_zalloc(layout.size()).cast()
            } else {
                mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if mapped(layout) {
            // SAFETY: a large layout's block is a mapping of that size (see `alloc`).
            unsafe { pages::unmap(ptr, layout.size()) };
            return;
        }
        // SAFETY: `ptr` came from mimalloc.
        unsafe { mi_free(ptr.cast()) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller passes a valid `new_size` for `layout.align()`.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        match (mapped(layout), mapped(new_layout)) {
            // SAFETY: `ptr` is a mapping of `layout.size()` bytes.
            (true, true) => unsafe { pages::remap(ptr, layout.size(), new_size) },
            // SAFETY: `ptr` came from mimalloc.
            (false, false) => unsafe {
                if layout.align() <= WORD {
                    mi_realloc(ptr.cast(), new_size).cast()
                } else {
                    mi_realloc_aligned(ptr.cast(), new_size, layout.align()).cast()
                }
            },
            // SAFETY: `ptr` came from this allocator with `layout`.
            _ => unsafe { across(ptr, layout, new_layout) },
        }
    }
}

/// A block moved across [`LARGE`]: a new block on the other side, the bytes copied over.
///
/// # Safety
/// `ptr` came from [`Mimalloc`] with `layout`; `new_layout` is non-zero.
#[cold]
#[inline(never)]
unsafe fn across(ptr: *mut u8, layout: Layout, new_layout: Layout) -> *mut u8 {
    // SAFETY: see the function's contract.
    unsafe {
        let new = Mimalloc.alloc(new_layout);
        if !new.is_null() {
            std::ptr::copy_nonoverlapping(ptr, new, layout.size().min(new_layout.size()));
            Mimalloc.dealloc(ptr, layout);
        }
        new
    }
}

/// Whole mappings for large blocks. Their length is the block's size rounded up to pages,
/// so it is known again from the layout at free and realloc.
///
/// A few freed mappings (at most [`KEPT`] bytes in all) are kept for the next large block:
/// a fresh mapping costs a page fault per page touched, which made a dry run of 10 MB
/// records spend more time faulting than working.
#[cfg(target_os = "linux")]
mod pages {
    use std::ptr::null_mut;
    use std::sync::Mutex;

    pub const PAGE: usize = 4096;

    /// What freed mappings may hold, in bytes, waiting for reuse.
    const KEPT: usize = 48 << 20;

    /// Freed mappings kept for reuse: (address, length), `SLOTS` at most. Locked only when a
    /// large block is made or freed; the lock does not allocate.
    const SLOTS: usize = 4;
    static FREED: Mutex<[(usize, usize); SLOTS]> = Mutex::new([(0, 0); SLOTS]);

    fn length(size: usize) -> usize {
        size.div_ceil(PAGE) * PAGE
    }

    /// A mapping of `size` bytes. `zeroed` asks for a new one (a kept one holds old bytes).
    // Out of line: the small blocks' path stays a tail call into mimalloc.
    #[cold]
    #[inline(never)]
    pub fn map(size: usize, zeroed: bool) -> *mut u8 {
        let len = length(size);
        if !zeroed && let Some((addr, kept)) = take(len) {
            // SAFETY: a whole mapping of `kept` bytes that no block uses any more.
            let p = unsafe { resize(addr as *mut u8, kept, len) };
            if !p.is_null() {
                return p;
            }
            // SAFETY: the same mapping, left as it was by the failed resize.
            unsafe { libc::munmap(addr as *mut libc::c_void, kept) };
        }
        // SAFETY: an anonymous private mapping at an address of the kernel's choosing.
        let p = unsafe {
            libc::mmap(
                null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return null_mut();
        }
        // Huge pages where the kernel gives them on request: five faults for 10 MB instead
        // of 2,560. Advice only: a kernel that declines leaves ordinary pages.
        // SAFETY: the range is the mapping just made.
        unsafe { libc::madvise(p, len, libc::MADV_HUGEPAGE) };
        p.cast()
    }

    /// The kept mapping closest in length to `len` (the smallest that holds it, else the
    /// largest), taken out of the list.
    fn take(len: usize) -> Option<(usize, usize)> {
        let mut freed = FREED.lock().unwrap_or_else(|e| e.into_inner());
        let slot = freed
            .iter()
            .enumerate()
            .filter(|(_, (addr, _))| *addr != 0)
            .min_by_key(|(_, (_, kept))| {
                if *kept >= len {
                    (0, *kept)
                } else {
                    (1, usize::MAX - *kept)
                }
            })
            .map(|(i, _)| i)?;
        Some(std::mem::take(&mut freed[slot]))
    }

    /// # Safety
    /// `ptr` is a mapping made by [`map`] or [`remap`] for `size` bytes.
    // Out of line: the small blocks' path stays a tail call into mimalloc.
    #[cold]
    #[inline(never)]
    pub unsafe fn unmap(ptr: *mut u8, size: usize) {
        let len = length(size);
        {
            let mut freed = FREED.lock().unwrap_or_else(|e| e.into_inner());
            let held: usize = freed.iter().map(|(_, kept)| kept).sum();
            if held + len <= KEPT
                && let Some(slot) = freed.iter_mut().find(|(addr, _)| *addr == 0)
            {
                *slot = (ptr as usize, len);
                return;
            }
        }
        // SAFETY: see the function's contract. It cannot fail for a whole mapping we made.
        unsafe { libc::munmap(ptr.cast(), len) };
    }

    /// # Safety
    /// `ptr` is a mapping made by [`map`] or [`remap`] for `size` bytes.
    // Out of line: the small blocks' path stays a tail call into mimalloc.
    #[cold]
    #[inline(never)]
    pub unsafe fn remap(ptr: *mut u8, size: usize, new_size: usize) -> *mut u8 {
        // SAFETY: see the function's contract.
        unsafe { resize(ptr, length(size), length(new_size)) }
    }

    /// # Safety
    /// `ptr` is a whole mapping of `old` bytes; `old` and `new` are multiples of a page.
    unsafe fn resize(ptr: *mut u8, old: usize, new: usize) -> *mut u8 {
        if old == new {
            return ptr;
        }
        // SAFETY: see the function's contract; the kernel moves the pages when it must,
        // without copying them.
        let p = unsafe { libc::mremap(ptr.cast(), old, new, libc::MREMAP_MAYMOVE) };
        if p == libc::MAP_FAILED {
            null_mut()
        } else {
            p.cast()
        }
    }
}

/// Elsewhere every block is mimalloc's (`mapped` is false), so these are never called.
#[cfg(not(target_os = "linux"))]
mod pages {
    pub const PAGE: usize = 4096;

    pub fn map(_size: usize, _zeroed: bool) -> *mut u8 {
        std::ptr::null_mut()
    }

    pub unsafe fn unmap(_ptr: *mut u8, _size: usize) {}

    pub unsafe fn remap(_ptr: *mut u8, _size: usize, _new_size: usize) -> *mut u8 {
        std::ptr::null_mut()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_keep_the_alignment_asked_for_through_realloc() {
        for align in [1, 2, 8, 16, 64, 4096, 8192] {
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

    /// A block that grows from small to large and back keeps its bytes at every step, on
    /// each side of [`LARGE`] and across it, and a large zeroed block reads as zeros.
    #[test]
    fn blocks_keep_their_bytes_across_the_large_boundary() {
        let sizes = [
            100,
            LARGE - 1,
            LARGE,
            LARGE + 1,
            3 * LARGE + 5,
            LARGE + 7,
            LARGE - 8,
            64,
        ];
        for align in [1, 16, 4096, 8192] {
            // SAFETY: non-zero sizes; each block is passed back with the layout it has.
            unsafe {
                let mut layout = Layout::from_size_align(sizes[0], align).expect("layout");
                let mut p = Mimalloc.alloc(layout);
                assert!(!p.is_null());
                fill(p, layout.size());
                for &size in &sizes[1..] {
                    let q = Mimalloc.realloc(p, layout, size);
                    assert!(!q.is_null(), "realloc to {size}");
                    assert_eq!(q as usize % align, 0, "align {align} at {size}");
                    check(q, layout.size().min(size));
                    layout = Layout::from_size_align(size, align).expect("layout");
                    fill(q, size);
                    p = q;
                }
                Mimalloc.dealloc(p, layout);

                let big = Layout::from_size_align(LARGE + 3, align).expect("layout");
                let z = Mimalloc.alloc_zeroed(big);
                assert!(!z.is_null());
                assert!(
                    std::slice::from_raw_parts(z, big.size())
                        .iter()
                        .all(|b| *b == 0)
                );
                Mimalloc.dealloc(z, big);
            }
        }
    }

    /// A freed large block is kept for reuse, so a block asked for zeroed must not be it.
    #[test]
    fn a_zeroed_large_block_is_zero_after_a_dirty_one_was_freed() {
        let layout = Layout::from_size_align(LARGE + 100, 8).expect("layout");
        for _ in 0..3 {
            // SAFETY: a non-zero size; each block is freed once, with its layout.
            unsafe {
                let dirty = Mimalloc.alloc(layout);
                assert!(!dirty.is_null());
                dirty.write_bytes(0xAB, layout.size());
                Mimalloc.dealloc(dirty, layout);
                let z = Mimalloc.alloc_zeroed(layout);
                assert!(!z.is_null());
                assert!(
                    std::slice::from_raw_parts(z, layout.size())
                        .iter()
                        .all(|b| *b == 0)
                );
                let again = Mimalloc.alloc(layout);
                assert!(!again.is_null());
                again.write_bytes(1, layout.size());
                Mimalloc.dealloc(again, layout);
                Mimalloc.dealloc(z, layout);
            }
        }
    }

    /// # Safety
    /// `p` holds `n` writable bytes.
    unsafe fn fill(p: *mut u8, n: usize) {
        for i in 0..n {
            // SAFETY: `i < n`.
            unsafe { *p.add(i) = (i % 251) as u8 };
        }
    }

    /// # Safety
    /// `p` holds `n` readable bytes.
    unsafe fn check(p: *const u8, n: usize) {
        // SAFETY: see the contract.
        let bytes = unsafe { std::slice::from_raw_parts(p, n) };
        if let Some(i) = bytes
            .iter()
            .enumerate()
            .position(|(i, b)| *b != (i % 251) as u8)
        {
            panic!("byte {i} of {n} changed");
        }
    }
}
