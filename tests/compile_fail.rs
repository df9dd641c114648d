//! Compile-fail cases for `#[loss]`: each file under `tests/ui/` is a definition with one
//! mistake (or, under `several/`, many), and its `.stderr` holds the reviewed messages.

#[test]
fn ui() {
    trybuild::TestCases::new().compile_fail("tests/ui/*/*.rs");
}
