//! Zero heap allocations per event on the hot path: a counting global
//! allocator (per thread, so parallel tests don't disturb it) shows that a
//! warm second decode / convert of the same object allocates nothing.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use cwl_copy::corpus::{self, Rng};
use cwl_copy::{
    ColumnSpec, ConvertScratch, Converter, Decoder, Dialect, FnSink, LogEvent,
    Mapper, ObjectOutput, Scratch,
};

struct Counting;

thread_local! {
    static ALLOCS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: every call is forwarded to `System` unchanged; the counter is a
// const-initialised thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: the caller's obligations are passed on to `System`.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(
        &self,
        ptr: *mut u8,
        layout: Layout,
        new: usize,
    ) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: as above.
        unsafe { System.realloc(ptr, layout, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocs() -> u64 {
    ALLOCS.with(Cell::get)
}

fn object() -> Vec<u8> {
    let mut rng = Rng::new(7);
    let mut ts = 1_714_568_707_123;
    corpus::object(&mut rng, &mut ts, 20, 58 * 1024, true).0
}

#[test]
fn warm_decode_allocates_nothing() {
    let data = object();
    let dec = Decoder::new();
    let mut scratch = Scratch::new();
    let run = |scratch: &mut Scratch| {
        let mut n = 0u64;
        let stats = dec
            .decode(
                "o",
                &data,
                scratch,
                FnSink::new(
                    |e: &LogEvent<'_>| -> Result<(), ()> {
                        n += e.message.len() as u64;
                        Ok(())
                    },
                    |_| Err(()),
                ),
            )
            .unwrap();
        stats.events
    };
    let events = run(&mut scratch);
    assert!(events > 1000);
    let before = allocs();
    assert_eq!(run(&mut scratch), events);
    assert_eq!(
        allocs() - before,
        0,
        "allocations in a warm decode of {events} events"
    );
}

#[test]
fn warm_convert_allocates_nothing() {
    let data = object();
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/testdata/specs/integrated_user_log.toml"
    ))
    .unwrap();
    let spec = ColumnSpec::from_toml(&text).unwrap();
    // The one-pass path (issue #13) and the oracle path.
    for onepass in [true, false] {
        let mut conv = Converter::new(
            Decoder::new(),
            Mapper::new(&spec, Dialect::Postgres).unwrap(),
        );
        conv.set_onepass(onepass);
        let mut scratch = ConvertScratch::new();
        let mut out = ObjectOutput::default();
        conv.convert("o", &data, &mut scratch, &mut out);
        let counts = out.counts;
        assert!(counts.rows > 1000 && counts.filtered_out > 0, "{counts:?}");
        assert_eq!(counts.rejected, 0);
        let taken = out.onepass;
        if onepass {
            assert_eq!(taken.envelope_fallbacks, 0, "{taken:?}");
            assert!(taken.messages > counts.rows, "{taken:?}");
            // The scanner's fast path reads every message of the corpus,
            // each as the envelope reader meets it (its tape kept per
            // envelope, in buffers the warm run reuses).
            assert_eq!(taken.state_machine, 0, "{taken:?}");
            assert_eq!(taken.ahead, taken.messages, "{taken:?}");
        } else {
            assert_eq!(taken.envelopes + taken.messages, 0, "{taken:?}");
        }
        out.clear();
        let before = allocs();
        conv.convert("o", &data, &mut scratch, &mut out);
        assert_eq!(out.counts, counts);
        assert_eq!(
            allocs() - before,
            0,
            "allocations in a warm convert of {} events (one-pass: {onepass})",
            counts.events
        );
    }
}
