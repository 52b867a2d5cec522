//! Misuse of the author API that must not compile (trybuild). Each case is one file in
//! `tests/ui/` with the compiler's message beside it; refresh with `TRYBUILD=overwrite`.

#[cfg(not(any(windows, loom)))]
#[test]
fn author_api_misuse_does_not_compile() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
