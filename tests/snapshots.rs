//! CLI snapshot tests: the human output and stderr of the main commands are
//! pinned in tests/cmd/*.toml (regenerate with TRYCMD=overwrite after an
//! intended change, and review the diff).

#[test]
fn cli_snapshots() {
    trycmd::TestCases::new().case("tests/cmd/*.toml");
}
