//! Documentation checks: every error code is documented with its exit code.

mod common;

#[test]
fn every_error_code_is_documented_with_its_exit_code() {
    let doc = std::fs::read_to_string(common::root().join("docs/errors.md")).unwrap();
    for c in airlock::Code::ALL {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", c.as_str())))
            .unwrap_or_else(|| panic!("{} is not in docs/errors.md", c.as_str()));
        assert!(
            row.starts_with(&format!("| `{}` | {} |", c.as_str(), c.class().exit_code())),
            "{}: wrong exit code in docs/errors.md",
            c.as_str()
        );
    }
}

#[test]
fn readme_quick_start_is_two_commands() {
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    assert!(readme.contains("cargo run --release -- demo"));
    assert!(readme.contains("bash tests/run.sh"));
    let ci = std::fs::read_to_string(common::root().join(".ci/run")).unwrap();
    assert!(
        ci.contains("tests/run.sh"),
        ".ci/run must run the README's test command"
    );
}
