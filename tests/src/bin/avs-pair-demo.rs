//! Filled below.
fn main() {}
