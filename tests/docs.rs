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

/// The exit table of docs/errors.md is the program's (the man pages' EXIT
/// STATUS is generated from the same classes).
#[test]
fn exit_table_matches_the_classes() {
    let doc = std::fs::read_to_string(common::root().join("docs/errors.md")).unwrap();
    for c in airlock::error::Class::ALL {
        let row = format!("| {} | {} | {} |", c.exit_code(), c.name(), c.meaning());
        assert!(
            doc.contains(&row),
            "docs/errors.md lacks the exit row {row}"
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

#[test]
fn every_json_command_is_documented() {
    let doc = std::fs::read_to_string(common::root().join("docs/json-output.md")).unwrap();
    for c in [
        "verify",
        "extract",
        "export",
        "import",
        "inspect",
        "keygen",
        "sign",
        "log",
        "cloud status",
        "cloud seats",
        "fleet",
        "report",
        "demo",
        "completions",
        "man",
    ] {
        assert!(
            doc.contains(&format!("## `{c}`")),
            "docs/json-output.md lacks {c}"
        );
    }
}

#[test]
fn man_pages_and_completions() {
    let d = tempfile::tempdir().unwrap();
    let out = assert_cmd::Command::new(common::airlock_bin())
        .arg("man")
        .arg("--dir")
        .arg(d.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    for page in [
        "airlock.1",
        "airlock-export.1",
        "airlock-verify.1",
        "airlock-import.1",
    ] {
        let text = std::fs::read_to_string(d.path().join(page)).unwrap();
        assert!(text.contains(".TH"), "{page} is not a man page");
    }
    for shell in ["bash", "zsh", "fish"] {
        let out = assert_cmd::Command::new(common::airlock_bin())
            .arg("completions")
            .arg(shell)
            .output()
            .unwrap();
        assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("export"));
    }
}
