//! The container is canonical: changing any single byte of a bundle makes
//! verification fail. Nothing can ride along unseen.

mod common;

use std::time::{Duration, SystemTime};

use airlock::export::{self, Input};
use airlock::state::StateDir;
use airlock::trust::TrustStore;
use airlock::verify::DEFAULT_SKEW;
use airlock::verify::{verify_file, VerifyOptions};
use common::*;

fn small_bundle(
    dir: &std::path::Path,
    usage: bool,
) -> (std::path::PathBuf, TrustStore, SystemTime) {
    let k = key(dir, "exporter_ed25519");
    let signer = airlock::keys::load_signer(&k, &mut || unreachable!()).unwrap();
    let f = if usage {
        let p = dir.join("u.json");
        sample_usage_clear(&p, 1);
        p
    } else {
        let p = dir.join("note.txt");
        std::fs::write(&p, "a small opaque payload\n").unwrap();
        p
    };
    let state = StateDir::open(&dir.join("state")).unwrap();
    let created = humantime::parse_rfc3339(FIXTURE_TIME).unwrap();
    let r = export::export(export::ExportOptions {
        progress: airlock::progress::Progress::none(),
        inputs: vec![Input::path(&f).unwrap()],
        bundle: export::BundleSpec {
            signer: &signer,
            host_name: Some("ghes.example.com".into()),
            server_id: Some(airlock::sample::SAMPLE_SERVER_ID.into()),
            created,
            expires_in: Duration::from_secs(3600),
            tool: airlock::tool_version(),
            recipients: &Default::default(),
        },
        now: created.into(),
        out: dir.join("b.zip"),
        overwrite: false,
        state: &state,
        read_back: true,
    })
    .unwrap();
    let trust = TrustStore::load(
        &trust_keys(dir, "ghes.example.com", &["exporter_ed25519"]),
        None,
    )
    .unwrap();
    (r.path, trust, created)
}

fn every_byte(usage: bool) {
    let d = tempfile::tempdir().unwrap();
    let (b, trust, at) = small_bundle(d.path(), usage);
    let opts = VerifyOptions {
        progress: airlock::progress::Progress::none(),
        trust: &trust,
        now: at.into(),
        skew: DEFAULT_SKEW,
        identities: None,
        require_signers: 1,
    };
    verify_file(&b, &opts).expect("the untouched bundle verifies");
    let orig = std::fs::read(&b).unwrap();
    let m = d.path().join("m.zip");
    let mut positions = 0;
    for i in 0..orig.len() {
        for mask in [0x01u8, 0x80, 0xff] {
            let mut x = orig.clone();
            x[i] ^= mask;
            std::fs::write(&m, &x).unwrap();
            assert!(
                verify_file(&m, &opts).is_err(),
                "byte {i} ^ {mask:#04x} went unnoticed"
            );
        }
        positions += 1;
    }
    assert_eq!(positions, orig.len());
    // Truncation at any point, and one extra byte, fail as well.
    for n in 0..orig.len() {
        std::fs::write(&m, &orig[..n]).unwrap();
        assert!(
            verify_file(&m, &opts).is_err(),
            "truncated to {n} bytes verified"
        );
    }
    let mut longer = orig.clone();
    longer.push(0);
    std::fs::write(&m, &longer).unwrap();
    assert!(verify_file(&m, &opts).is_err());
}

#[test]
fn any_single_byte_change_fails_opaque_bundle() {
    every_byte(false);
}

#[test]
fn any_single_byte_change_fails_usage_bundle() {
    every_byte(true);
}
