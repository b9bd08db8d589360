//! The `cwl-copy` command-line tool.

fn main() {}
