//! Bounded resources: the real binary run under an address-space limit
//! (`prlimit --as`). Payloads four times the limit stream through export,
//! verify and extract; hostile fixtures are refused under a tighter limit; and
//! a process starved of memory fails with AIRLOCK-E-RESOURCES, never a panic.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

/// Documented bound (docs/testing.md): 64 MiB of address space, which
/// includes the binary, its libraries and an 8 MiB thread stack.
const LIMIT_MIB: u64 = 64;

/// A run stopped after this long hung (exit 124 from `timeout`): a
/// starved thread's panic that cannot print has hung the process before.
/// SIGTERM first; SIGKILL 10 s later, since a process hung on its
/// allocator's lock cannot run its SIGTERM handler either.
const HUNG_AFTER: &str = "600";

fn limited(mib: u64) -> Command {
    let _installed = tool("prlimit");
    let mut c = tool("timeout");
    c.args(["-k", "10", HUNG_AFTER])
        .arg("prlimit")
        .arg(format!("--as={}", mib << 20))
        .arg("--")
        .arg(airlock_bin());
    isolate(&mut c);
    c.env_remove("SOURCE_DATE_EPOCH");
    c
}

fn ok(out: &Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sha(p: &Path) -> String {
    airlock::fsutil::sha256_file(p).unwrap()
}

#[test]
fn a_256_mib_payload_streams_under_a_64_mib_address_space() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let k = key(d, "exporter_ed25519");
    let id = key(d, "age_identity.txt");
    let recipient = std::fs::read_to_string(&id)
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("# public key: ").map(str::to_string))
        .unwrap();
    // 256 MiB of non-zero, non-repeating-at-1-MiB bytes, written in pieces.
    let big = d.join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let mut block = vec![0u8; 1 << 20];
        for i in 0..256u32 {
            for (j, b) in block.iter_mut().enumerate() {
                *b = (j as u32).wrapping_mul(31).wrapping_add(i) as u8;
            }
            f.write_all(&block).unwrap();
        }
    }
    let trust = root().join("keys/allowed_signers");
    for (name, extra) in [
        ("signed", vec![]),
        (
            "encrypted",
            vec!["--recipient".to_string(), recipient.clone()],
        ),
    ] {
        let bundle = d.join(format!("{name}.airlock.zip"));
        let out = limited(LIMIT_MIB)
            .arg("export")
            .arg(&big)
            .args(["--host-name", "ghes.example.com", "--key"])
            .arg(&k)
            .arg("--out")
            .arg(&bundle)
            .arg("--state-dir")
            .arg(d.join("state"))
            .args(&extra)
            .output()
            .unwrap();
        ok(&out, &format!("export {name}"));
        assert!(std::fs::metadata(&bundle).unwrap().len() > 256 << 20);

        let out = limited(LIMIT_MIB)
            .arg("verify")
            .arg(&bundle)
            .arg("--trust")
            .arg(&trust)
            .arg("--identity")
            .arg(&id)
            .output()
            .unwrap();
        ok(&out, &format!("verify {name}"));

        let dir = d.join(format!("out-{name}"));
        std::fs::create_dir(&dir).unwrap();
        let out = limited(LIMIT_MIB)
            .arg("extract")
            .arg(&bundle)
            .arg("--trust")
            .arg(&trust)
            .arg("--identity")
            .arg(&id)
            .arg("--out")
            .arg(&dir)
            .output()
            .unwrap();
        ok(&out, &format!("extract {name}"));
        assert_eq!(sha(&dir.join("big.bin")), sha(&big), "{name}");
        std::fs::remove_file(&bundle).unwrap();
    }
}

#[test]
fn hostile_fixtures_are_refused_under_a_32_mib_address_space() {
    let e: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("fixtures/expectations.json")).unwrap(),
    )
    .unwrap();
    let mut n = 0;
    for f in e["fail"].as_array().unwrap() {
        let file = root().join("fixtures").join(f["file"].as_str().unwrap());
        if f.get("identity").is_some() {
            continue;
        }
        let out = limited(32)
            .arg("verify")
            .arg(&file)
            .arg("--trust")
            .arg(root().join("keys/allowed_signers"))
            .arg("--revoked")
            .arg(root().join("keys/revoked_keys"))
            .args(["--at", f["at"].as_str().unwrap(), "--json"])
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}: {:?}", file.display(), out.status));
        assert_eq!(v["error"]["code"], f["code"], "{}", file.display());
        n += 1;
    }
    assert!(n >= 39, "{n}");
}

#[test]
fn starved_of_memory_it_fails_with_a_code_never_a_panic() {
    // Regression: with too little address space for a second thread, the
    // usage-file parser's thread::spawn panicked (exit 101). Regression:
    // the probe for a thread's room, a heap allocation, stayed in glibc's
    // heap and took that room; the thread's signal stack then failed and the
    // standard library panicked inside it (at 25-26 MiB, abort or hang). The sweep starts
    // low enough for the release binary too (AIRLOCK_BIN), which is smaller
    // than the debug build and reaches the resource errors at 11-13 MiB, the
    // debug build at about 16; below that the loader cannot map libc.
    let bundle = root().join("fixtures/bundles/golden_usage_and_file.airlock.zip");
    let mut resources = 0;
    let mut last = None;
    for mib in 8..=40 {
        let out = limited(mib)
            .arg("verify")
            .arg(&bundle)
            .arg("--trust")
            .arg(root().join("keys/allowed_signers"))
            .args(["--at", "2026-11-01T01:00:00Z"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.code() != Some(101) && !err.contains("panicked"),
            "{mib} MiB: {err}"
        );
        // 124: SIGTERM after the deadline; 137: SIGKILL 10 s later. A death
        // by signal (no code) is not asserted against: just above the
        // loader's limit the runtime itself dies before `main` (a failed
        // small allocation, the main stack), which no code can catch
        // (docs/testing.md); a thread's panic prints "panicked" first.
        assert!(
            !matches!(out.status.code(), Some(124 | 137)),
            "{mib} MiB: hung"
        );
        if err.contains("AIRLOCK-E-RESOURCES") {
            assert_eq!(out.status.code(), Some(3), "{mib} MiB");
            resources += 1;
        }
        last = Some(out.status.success());
    }
    assert!(
        resources > 0,
        "no limit in the sweep reached the resource errors"
    );
    assert_eq!(last, Some(true), "verify failed even with 40 MiB");
}
