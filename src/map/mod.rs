//! Map: pick and filter what goes into each row.
//!
//! [`filter`] compiles CloudWatch Logs filter patterns (the syntax of
//! subscription and metric filters) and evaluates them per log event.

pub(crate) mod filter;
