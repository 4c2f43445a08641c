//! How this binary was built, as `airlock --version` reports it. Every value
//! is fixed at compile time by `build.rs` from the build environment (the
//! release script sets the commit and the glibc floor); nothing is looked up
//! when the binary runs.

/// The package version.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The target triple the binary was compiled for.
pub const TARGET: &str = env!("AIRLOCK_BUILT_TARGET");

/// `rustc --version` of the compiler that built it.
pub const RUSTC: &str = env!("AIRLOCK_BUILT_RUSTC");

/// Whether the debug-only test hooks (`AIRLOCK_FAULT`, `AIRLOCK_PAUSE`) are
/// compiled in. They are in debug builds and never in release builds.
pub const TEST_HOOKS: bool = cfg!(debug_assertions);

fn non_empty(s: &'static str) -> Option<&'static str> {
    (!s.is_empty()).then_some(s)
}

/// The git commit built (`-dirty` when tracked files differed from it), when
/// the build environment gave one.
pub fn commit() -> Option<&'static str> {
    non_empty(env!("AIRLOCK_BUILT_COMMIT"))
}

/// The oldest glibc the binary runs on, when the build pinned one (the
/// portable release build links against glibc 2.17's symbol versions).
pub fn glibc_floor() -> Option<&'static str> {
    non_empty(env!("AIRLOCK_BUILT_GLIBC"))
}

/// The text after `airlock ` that `airlock --version` prints: the version on
/// the first line, then one `key: value` line per fact.
pub fn long_version() -> String {
    let commit = commit().unwrap_or("unknown (not built by scripts/release.sh)");
    let glibc = match glibc_floor() {
        Some(v) => format!("{v} or newer"),
        None if cfg!(target_env = "gnu") => {
            "that of the build machine (not a portable release build)".to_string()
        }
        None => "not linked against glibc".to_string(),
    };
    let rustc = non_empty(RUSTC).unwrap_or("unknown");
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let hooks = if TEST_HOOKS {
        "AIRLOCK_FAULT, AIRLOCK_PAUSE (debug build: not for production)"
    } else {
        "none"
    };
    format!(
        "{VERSION}\ncommit: {commit}\ntarget: {TARGET}\nglibc: {glibc}\nrustc: {rustc}\nprofile: {profile}\ntest hooks: {hooks}"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_version_names_every_fact_once() {
        let v = long_version();
        let mut lines = v.lines();
        assert_eq!(lines.next(), Some(VERSION));
        let keys: Vec<&str> = lines.map(|l| l.split(": ").next().unwrap()).collect();
        assert_eq!(
            keys,
            [
                "commit",
                "target",
                "glibc",
                "rustc",
                "profile",
                "test hooks"
            ]
        );
        assert!(v.contains(&format!("target: {TARGET}")));
        assert!(TARGET.contains("linux") || !cfg!(target_os = "linux"));
    }

    #[test]
    fn test_hooks_are_reported_as_compiled() {
        let v = long_version();
        if cfg!(debug_assertions) {
            assert!(v.contains("test hooks: AIRLOCK_FAULT, AIRLOCK_PAUSE"));
        } else {
            assert!(v.contains("test hooks: none"));
        }
    }
}
