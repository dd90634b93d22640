//! The process's allocator: a bump arena, then the system's.
//!
//! A hook is a short process that allocates a few hundred small blocks and
//! exits. musl's allocator maps and unmaps pages for them as it goes (on a
//! no-op config-changed: 71 mmap and 39 munmap calls, each a page fault or a
//! TLB flush more). Here the first `ARENA` bytes come from one static,
//! zero-initialised block (.bss: no page is touched before it is used) by
//! bumping an offset; freeing the most recent block gives it back, so the
//! usual "allocate, use, drop" of temporaries reuses the same bytes. Once
//! the arena is used up (a long action such as the smoketest), blocks come
//! from musl's allocator as before: at most `ARENA` bytes are never reused.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

const ARENA: usize = 1 << 20;

#[repr(C, align(4096))]
struct Block(UnsafeCell<[u8; ARENA]>);

// SAFETY: the bytes are handed out as disjoint ranges (an atomic offset);
// the block itself is never read or written through this type.
unsafe impl Sync for Block {}

static BLOCK: Block = Block(UnsafeCell::new([0; ARENA]));
/// Offset of the first free byte.
static NEXT: AtomicUsize = AtomicUsize::new(0);

pub struct Arena;

fn base() -> usize {
    BLOCK.0.get() as usize
}

fn owned(p: *mut u8) -> bool {
    let a = p as usize;
    a >= base() && a < base() + ARENA
}

// SAFETY: every block returned is `layout.size()` bytes aligned to
// `layout.align()`, disjoint from every other live block (the offset only
// moves back over the most recent block, when that block is freed).
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut cur = NEXT.load(Relaxed);
        loop {
            let start = (base() + cur).next_multiple_of(layout.align()) - base();
            let end = start + layout.size();
            if end > ARENA {
                // SAFETY: as the caller promised for `layout`.
                return unsafe { System.alloc(layout) };
            }
            match NEXT.compare_exchange_weak(cur, end, Relaxed, Relaxed) {
                Ok(_) => return (base() + start) as *mut u8,
                Err(now) => cur = now,
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if owned(p) {
            let start = p as usize - base();
            // The most recent block: give its bytes back. Others stay used.
            let _ = NEXT.compare_exchange(start + layout.size(), start, Relaxed, Relaxed);
        } else {
            // SAFETY: `p` came from `System.alloc` with this layout.
            unsafe { System.dealloc(p, layout) }
        }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if owned(p) {
            let start = p as usize - base();
            // The most recent block grows or shrinks where it is.
            if start + new_size <= ARENA
                && NEXT
                    .compare_exchange(start + layout.size(), start + new_size, Relaxed, Relaxed)
                    .is_ok()
            {
                return p;
            }
        } else {
            // SAFETY: `p` came from `System.alloc` with this layout.
            return unsafe { System.realloc(p, layout, new_size) };
        }
        // SAFETY: a valid layout (same alignment, a size the caller vouched for).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as above; the old block is live for `layout.size()` bytes.
        unsafe {
            let q = self.alloc(new_layout);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arena's own rules, on a private instance of its logic: blocks
    /// are aligned and disjoint, the last one is reused, the overflow goes
    /// to the system allocator and comes back to it.
    #[test]
    fn blocks_are_aligned_disjoint_and_the_last_is_reused() {
        let a = Arena;
        unsafe {
            let l8 = Layout::from_size_align(24, 8).unwrap();
            let l64 = Layout::from_size_align(100, 64).unwrap();
            let p = a.alloc(l8);
            let q = a.alloc(l64);
            assert_eq!(q as usize % 64, 0);
            assert!(q as usize >= p as usize + 24);
            a.dealloc(q, l64);
            let r = a.alloc(l64);
            assert_eq!(r, q, "the freed last block is handed out again");
            let grown = a.realloc(r, l64, 4000);
            assert_eq!(grown, r, "the last block grows in place");
            let big = Layout::from_size_align(ARENA * 2, 8).unwrap();
            let s = a.alloc(big);
            assert!(!owned(s), "too big for the arena: the system's");
            a.dealloc(s, big);
            a.dealloc(grown, Layout::from_size_align(4000, 64).unwrap());
            a.dealloc(p, l8);
        }
    }
}
