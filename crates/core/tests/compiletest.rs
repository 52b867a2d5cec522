//! Misuse the types forbid, shown as compile-fail tests (one file per misuse in `tests/ui/`).
//! Refresh the expected output with `TRYBUILD=overwrite cargo test -p winprov-core --test
//! compiletest` and review the diff.
//!
//! Host tests only: trybuild drives the host's cargo, which a Windows test binary under Wine
//! cannot do.
#![cfg(not(any(windows, loom)))]

#[test]
fn compile_fail() {
    trybuild::TestCases::new().compile_fail("tests/ui/*.rs");
}
