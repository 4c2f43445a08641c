//! Records how the binary is built, for `airlock --version`: the target
//! triple and the compiler (from Cargo), and, when the release script sets
//! them, the commit (`AIRLOCK_BUILD_COMMIT`) and the oldest glibc the build
//! links against (`AIRLOCK_BUILD_GLIBC`). Nothing is asked of git or of the
//! system when the binary runs. A malformed value stops the build rather than
//! ending up in a release.

use std::env;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=AIRLOCK_BUILD_COMMIT");
    println!("cargo:rerun-if-env-changed=AIRLOCK_BUILD_GLIBC");

    let target = env::var("TARGET").unwrap_or_default();
    println!("cargo:rustc-env=AIRLOCK_BUILT_TARGET={target}");

    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc_version = Command::new(rustc)
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=AIRLOCK_BUILT_RUSTC={rustc_version}");

    let commit = env::var("AIRLOCK_BUILD_COMMIT").unwrap_or_default();
    if !commit.is_empty() && !is_commit(&commit) {
        panic!(
            "AIRLOCK_BUILD_COMMIT={commit:?} is not a git commit id \
             (40 or 64 lowercase hex digits, optionally followed by -dirty)"
        );
    }
    println!("cargo:rustc-env=AIRLOCK_BUILT_COMMIT={commit}");

    let glibc = env::var("AIRLOCK_BUILD_GLIBC").unwrap_or_default();
    if !glibc.is_empty() && !is_glibc_version(&glibc) {
        panic!("AIRLOCK_BUILD_GLIBC={glibc:?} is not a glibc version such as 2.17");
    }
    println!("cargo:rustc-env=AIRLOCK_BUILT_GLIBC={glibc}");
}

fn is_commit(s: &str) -> bool {
    let id = s.strip_suffix("-dirty").unwrap_or(s);
    (id.len() == 40 || id.len() == 64)
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_glibc_version(s: &str) -> bool {
    let mut parts = s.split('.');
    let ok = |p: Option<&str>| {
        p.is_some_and(|p| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()))
    };
    ok(parts.next()) && ok(parts.next()) && parts.next().is_none()
}
