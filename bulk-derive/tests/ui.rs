//! Compile-fail tests: every misuse of `#[derive(CopyRow)]` gives a spanned, readable error.
//!
//! One case per file under `tests/ui/<category>/`, each with its `.stderr`. Compiler output
//! changes between Rust versions: the snapshots are for the toolchain this project builds
//! with. After a deliberate change, regenerate with `TRYBUILD=overwrite cargo test -p
//! bulk-derive --test ui` and read every changed `.stderr`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/**/*.rs");
}
