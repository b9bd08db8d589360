//! Criterion benchmarks: one group per pipeline stage.

fn main() {}
