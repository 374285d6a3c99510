//! `PopSan::act` allocates nothing (its own test binary: the allocator is process-wide; the
//! count is per thread).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use spikerl_snn::{Encoding, ParamSet, PopSan, PopSanSpec};

struct Counting;

thread_local! {
    // Per thread: the test harness's own threads allocate whenever they like.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn allocations() -> usize {
    ALLOCATIONS.with(Cell::get)
}

// SAFETY: forwards to the system allocator, only counting.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

#[test]
fn act_allocates_nothing() {
    for encoding in [Encoding::Deterministic, Encoding::Poisson] {
        let mut spec = PopSanSpec::new(11, 3, 1.0);
        spec.encoding = encoding;
        let mut net = PopSan::new(&ParamSet::init(&spec, 4).unwrap()).unwrap();
        let obs: Vec<f32> = (0..11).map(|i| i as f32 * 0.3 - 1.5).collect();
        let batch: Vec<f32> = obs.iter().cycle().take(11 * 8).copied().collect();
        let (mut a, mut b) = ([0.0f32; 3], [0.0f32; 24]);
        net.act(&obs, &mut a).unwrap();
        let before = allocations();
        for _ in 0..100 {
            net.act(&obs, &mut a).unwrap();
            net.act_batch(&batch, &mut b).unwrap();
        }
        assert_eq!(allocations(), before, "{encoding:?}: act allocated");
    }
}
