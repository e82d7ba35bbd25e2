//! Field paths evaluate without allocating: they borrow from the record. Counted with a global
//! allocator, so this file holds a single test.

use std::alloc::{GlobalAlloc, Layout, System};
use std::borrow::Cow;
use std::sync::atomic::{AtomicUsize, Ordering};

use rulebridge::expr::{Env, Scope, compile, parse};
use rulebridge::functions::{FixedClock, Registry};
use serde_json::json;

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `alloc` above, which used the system allocator.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn paths_and_comparisons_do_not_allocate() {
    let registry = Registry::builtin();
    let clock = FixedClock::default_test();
    let record = json!({
        "user": {"address": {"city": "London"}, "tags": ["a", "b"]},
        "score": 90, "vip": true, "nick": null,
    });
    let sources = [
        "user.address.city",
        "user.tags[-1]",
        "user.missing.deep",
        "$.user.tags[0]",
        "nick ?? user.address.city",
        "score > 80 && vip",
        "user.address.city == \"London\"",
        "if vip then user.tags[0] else nick",
        "lower(nick)",
    ];
    for src in sources {
        let expr = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        let (compiled, _) =
            compile(&expr, &Scope::new(&registry)).unwrap_or_else(|e| panic!("{src}: {e:?}"));
        let env = Env::new(&record, &clock);
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        let value = compiled.eval(&env);
        let after = ALLOCATIONS.load(Ordering::Relaxed);
        assert_eq!(after - before, 0, "`{src}` allocated");
        let value = value.unwrap_or_else(|e| panic!("{src}: {e}"));
        if src.contains('.') && !src.contains("==") && !src.contains('>') {
            assert!(matches!(value, Cow::Borrowed(_)), "`{src}` was copied");
        }
    }
}
