//! Decision 70 (issue 27): every payload member is checked against the
//! bundle's signed source, whatever its label. Bundles are made by hand
//! here, as an attacker holding a key trusted for another instance would:
//! `export` refuses to make them.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use airlock::crypt::Recipients;
use airlock::format::container::Writer;
use airlock::format::manifest::{
    BundleId, Encryption, Fingerprint, FormatName, FormatVersion, HexDigest, Manifest,
    PayloadEntry, PayloadKind, Sequence, Source, Timestamp,
};
use airlock::format::rules::signature_member_name;
use airlock::sample::{usage_clear, SAMPLE_HOST, SAMPLE_SERVER_ID};
use airlock::sshsig::BUNDLE_NAMESPACE;
use common::*;
use predicates::str::contains;
use sha2::{Digest, Sha256};

const OTHER_HOST: &str = "other.example.com";
const OTHER_ID: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";
/// The recipient of keys/age_identity.txt.
const AGE_RECIPIENT: &str = "age186t64m8enqsxhfgmrw8wr0ef2dykmuzpgzl7trdhrj8jzfvdmuvsqzevjc";

/// A key trusted for `other.example.com` only, and a working directory.
fn world() -> World {
    World::with_key("other-host_ed25519", OTHER_HOST)
}

/// One member: its name in `payload/`, its bytes as stored, its label, and
/// whether it is an age file.
struct Member<'a> {
    name: &'a str,
    stored: Vec<u8>,
    kind: PayloadKind,
    encrypted: bool,
}

impl World {
    /// A bundle for other.example.com, signed by its key, made now.
    fn bundle(&self, file: &str, members: &[Member<'_>], recipients: &Recipients) -> PathBuf {
        let signer =
            airlock::keys::load_signer(&self.key, &mut || unreachable!("no passphrase")).unwrap();
        let now = SystemTime::now() - Duration::from_secs(60);
        let mut m = Manifest {
            format: FormatName::AirlockBundle,
            version: FormatVersion::V1,
            bundle_id: BundleId::parse(&hex::encode(&Sha256::digest(file.as_bytes())[..16]))
                .unwrap(),
            created: Timestamp::from_system(now),
            expires: Timestamp::from_system(now + Duration::from_secs(7 * 86400)),
            tool: airlock::tool_version(),
            source: Source::instance(OTHER_HOST, Some(OTHER_ID.into())),
            sequence: Sequence {
                key: Fingerprint::parse(&signer.fingerprint()).unwrap(),
                number: 1,
            },
            payload: members
                .iter()
                .map(|x| PayloadEntry {
                    name: format!("payload/{}", x.name),
                    size: x.stored.len() as u64,
                    sha256: HexDigest::from_bytes(&Sha256::digest(&x.stored).into()),
                    kind: x.kind,
                    reference: None,
                    encryption: x.encrypted.then_some(Encryption::Age),
                })
                .collect(),
            recipients: recipients.listed.clone(),
        };
        m.version = airlock::format::manifest::version_for(&m.recipients);
        m.check().unwrap();
        let mb = m.to_bytes();
        let sig = signer.sign(BUNDLE_NAMESPACE, &mb).unwrap();
        let mut w = Writer::new(std::io::Cursor::new(Vec::new()));
        for x in members {
            w.add_bytes(&format!("payload/{}", x.name), &x.stored)
                .unwrap();
        }
        w.add_bytes("manifest.json", &mb).unwrap();
        w.add_bytes(&signature_member_name(&sig), sig.to_armored().as_bytes())
            .unwrap();
        let out = self.p(file);
        std::fs::write(&out, w.finish().unwrap().into_inner()).unwrap();
        out
    }

    fn cmd(&self, sub: &str, b: &Path) -> assert_cmd::Command {
        let mut c = airlock();
        c.arg(sub).arg(b).arg("--trust").arg(&self.allowed);
        c
    }

    fn import(&self, b: &Path) -> assert_cmd::Command {
        let mut c = self.cmd("import", b);
        c.arg("--state-dir")
            .arg(self.p("importer-state"))
            .arg("--outbox")
            .arg(self.p("outbox"))
            // The outbox is created only inside HOME (docs/operator-guide.md).
            .env("HOME", self.dir.path());
        c
    }

    /// Import `b`: refused with `code` (exit 8), nothing handed over.
    fn import_refused(&self, b: &Path, code: &str) {
        self.import(b).fails(8, code);
        assert_eq!(self.outbox_payloads(), Vec::<String>::new());
    }
    fn identity(&self) -> PathBuf {
        key(self.dir.path(), "age_identity.txt")
    }
}

fn clear(name: &str, bytes: Vec<u8>, kind: PayloadKind) -> Member<'_> {
    Member {
        name,
        stored: bytes,
        kind,
        encrypted: false,
    }
}

fn to_me() -> Recipients {
    let mut r = Recipients::default();
    r.add(AGE_RECIPIENT).unwrap();
    r
}

fn encrypt(rs: &Recipients, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = rs.encryptor().unwrap().wrap_output(&mut out).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
    out
}

/// The bug of issue 27: ghes.example.com's usage file, labelled `file`,
/// under a manifest for other.example.com signed by other.example.com's
/// key. `import` handed it over; now it is refused and nothing is written.
#[test]
fn import_refuses_another_instances_usage_file_labelled_file() {
    let w = world();
    let theirs = usage_clear(SAMPLE_HOST, SAMPLE_SERVER_ID, 3);
    let b = w.bundle(
        "theirs.airlock.zip",
        &[clear("license-usage.json", theirs, PayloadKind::File)],
        &Recipients::default(),
    );
    w.cmd("verify", &b)
        .assert()
        .code(8)
        .stderr(contains("AIRLOCK-E-PAYLOAD-SOURCE"))
        .stderr(contains("labelled `file`"));
    w.import_refused(&b, "AIRLOCK-E-PAYLOAD-SOURCE");
    // Behind another member that is fine, too.
    let theirs = usage_clear(SAMPLE_HOST, SAMPLE_SERVER_ID, 3);
    let b = w.bundle(
        "second.airlock.zip",
        &[
            clear("notes.txt", b"change ticket\n".to_vec(), PayloadKind::File),
            clear("data.json", theirs, PayloadKind::File),
        ],
        &Recipients::default(),
    );
    w.import_refused(&b, "AIRLOCK-E-PAYLOAD-SOURCE");
}

/// Content that looks like a usage file but is not a valid one is refused
/// as export refuses it: GitHub's parser might read it otherwise.
#[test]
fn a_file_member_that_is_an_invalid_usage_file_is_refused_as_export_does() {
    let w = world();
    let b = w.bundle(
        "invalid.airlock.zip",
        &[clear(
            "x.json",
            br#"{"instance": {"host_name": "ghes.example.com"}, "users": []}"#.to_vec(),
            PayloadKind::File,
        )],
        &Recipients::default(),
    );
    w.import_refused(&b, "AIRLOCK-E-USAGE-FILE-INVALID");
}

/// `file` members that are not usage files still import, byte for byte:
/// binary spanning several read blocks, JSON without an `instance`, text;
/// and the instance's own usage file, whatever its label.
#[test]
fn file_members_that_are_not_another_instances_usage_file_still_import() {
    let w = world();
    let binary: Vec<u8> = (0..(3 << 20) + 17)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let json = br#"{"a": 1, "instances": [{"host_name": "ghes.example.com"}]}"#.to_vec();
    let own = usage_clear(OTHER_HOST, OTHER_ID, 2);
    let members = [
        clear("blob.bin", binary.clone(), PayloadKind::File),
        clear("config.json", json.clone(), PayloadKind::File),
        clear("own-usage.json", own.clone(), PayloadKind::File),
        clear(
            "notes.txt",
            b"not JSON at all {\n".to_vec(),
            PayloadKind::File,
        ),
    ];
    let b = w.bundle("fine.airlock.zip", &members, &Recipients::default());
    let out = w.cmd("verify", &b).arg("--json").run_ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for p in v["payload"].as_array().unwrap() {
        assert_eq!(p["source_checked"], true, "{p}");
    }
    assert_eq!(v["payload"][2]["usage"]["host_name"], OTHER_HOST);
    assert!(v["payload"][0].get("usage").is_none());
    w.import(&b).assert().success();
    let files = w.outbox_payloads();
    assert_eq!(files.len(), 4, "{files:?}");
    for x in &members {
        let f = files.iter().find(|f| f.ends_with(x.name)).unwrap();
        assert!(
            std::fs::read(w.p("outbox").join(f)).unwrap() == x.stored,
            "{f}"
        );
    }
}

/// An encrypted `file` member can only be checked where it is decrypted:
/// `verify` without an identity says so (text and `source_checked`), with
/// one refuses it, and `import` refuses it with nothing in the outbox.
#[test]
fn an_encrypted_file_member_is_checked_where_it_is_decrypted() {
    let w = world();
    let rs = to_me();
    let theirs = usage_clear(SAMPLE_HOST, SAMPLE_SERVER_ID, 3);
    let b = w.bundle(
        "enc.airlock.zip",
        &[Member {
            name: "license-usage.json.age",
            stored: encrypt(&rs, &theirs),
            kind: PayloadKind::File,
            encrypted: true,
        }],
        &rs,
    );
    let out = w.cmd("verify", &b).arg("--json").run_ok();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["payload"][0]["source_checked"], false);
    assert_eq!(v["payload_decrypted"], false);
    w.cmd("verify", &b)
        .assert()
        .success()
        .stdout(contains("source NOT checked"));
    let id = w.identity();
    w.cmd("verify", &b)
        .arg("--identity")
        .arg(&id)
        .fails(8, "AIRLOCK-E-PAYLOAD-SOURCE");
    let dir = w.p("extracted");
    std::fs::create_dir(&dir).unwrap();
    w.cmd("extract", &b)
        .arg("--identity")
        .arg(&id)
        .arg("--out")
        .arg(&dir)
        .fails(8, "AIRLOCK-E-PAYLOAD-SOURCE");
    assert_eq!(listing(&dir), Vec::<String>::new());
    w.import(&b)
        .arg("--identity")
        .arg(&id)
        .fails(8, "AIRLOCK-E-PAYLOAD-SOURCE");
    assert_eq!(w.outbox_payloads(), Vec::<String>::new());
}
