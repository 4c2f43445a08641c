//! CLI snapshot tests: the human output and stderr of the main commands are
//! pinned in tests/cmd/*.toml (regenerate with TRYCMD=overwrite after an
//! intended change, and review the diff).

mod common;

#[test]
fn cli_snapshots() {
    trycmd::TestCases::new()
        .register_bin("airlock", common::airlock_bin())
        .case("tests/cmd/*.toml");
}
