//! Regenerate `fixtures/`: `cargo run --example make_fixtures`.
//!
//! - Test keys in `keys/` are made only if missing (they are committed).
//! - Golden bundles are made only if missing: they must keep verifying in
//!   every future version, so they are never rewritten
//!   (`--rewrite-golden` overrides, for a deliberate format break only).
//! - Signed-only `fail_*` bundles are rebuilt every time, byte for byte the
//!   same (fixed times, deterministic Ed25519, the same sample data).
//!   Encrypted ones involve age's randomness, so, like golden bundles, they
//!   are made only when missing.
//! - `fixtures/expectations.json` names the error code each `fail_*` bundle
//!   must produce, and the identity or passphrase to verify it with.

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::crypt::Recipients;
use airlock::export::{self, Input};
use airlock::format::container::{self, Entry, Writer};
use airlock::format::manifest::{
    BundleId, Encryption, Fingerprint, FormatName, FormatVersion, HexDigest, Manifest,
    PayloadEntry, PayloadKind, Sequence, Source, Timestamp,
};
use airlock::format::rules::signature_member_name;
use airlock::keys::{self, Signer};
use airlock::sample::{self, SAMPLE_ENTERPRISE, SAMPLE_HOST, SAMPLE_REFERENCE, SAMPLE_SERVER_ID};
use airlock::sshsig::BUNDLE_NAMESPACE;
use airlock::state::StateDir;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::io::Write;

/// The moment every fixture is made and checked at.
const FIXTURE_TIME: &str = "2026-11-01T00:00:00Z";
const OTHER_HOST: &str = "other.example.com";
const OTHER_ID: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn key(name: &str) -> Signer {
    let p = root().join("keys").join(name);
    if !p.exists() {
        keys::generate(&p, &format!("airlock TEST ONLY {name}"), None, false).expect("keygen");
    }
    // git does not keep modes: a fresh clone has 0644 keys, which airlock refuses.
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
    keys::load_signer(&p, &mut || unreachable!("test keys have no passphrase")).expect("load key")
}

/// An age identity file in keys/ (made if missing); returns its recipient.
fn age_identity(name: &str) -> String {
    let p = root().join("keys").join(name);
    if !p.exists() {
        let (text, _) = airlock::crypt::generate_identity(FIXTURE_TIME);
        fs::write(&p, text.as_bytes()).unwrap();
    }
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = fs::read_to_string(&p).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("identity file has a public key comment")
        .to_string()
}

/// A hybrid post-quantum age identity file in keys/ (made if missing);
/// returns its recipient.
fn age_pq_identity(name: &str) -> String {
    let p = root().join("keys").join(name);
    if !p.exists() {
        let (text, _) = airlock::crypt::generate_hybrid_identity(FIXTURE_TIME);
        fs::write(&p, text.as_bytes()).unwrap();
    }
    fs::set_permissions(&p, fs::Permissions::from_mode(0o600)).expect("chmod");
    let text = fs::read_to_string(&p).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .expect("identity file has a public key comment")
        .to_string()
}

/// A recipient that hides its age labels, so that age lets it be mixed with
/// recipients it refuses to mix with (for hostile fixtures only).
struct Unlabelled(Box<dyn age::Recipient>);

impl age::Recipient for Unlabelled {
    fn wrap_file_key(
        &self,
        file_key: &age_core::format::FileKey,
    ) -> Result<
        (
            Vec<age_core::format::Stanza>,
            std::collections::HashSet<String>,
        ),
        age::EncryptError,
    > {
        let (stanzas, _) = self.0.wrap_file_key(file_key)?;
        Ok((stanzas, Default::default()))
    }
}

fn t(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s).expect("time")
}

fn manifest(
    payload: &[(&str, &[u8], PayloadKind)],
    created: SystemTime,
    lifetime: Duration,
    seq: u64,
    signer: &Signer,
    host: &str,
    id: &str,
) -> Manifest {
    let payload: Vec<PayloadEntry> = payload
        .iter()
        .map(|(n, b, k)| PayloadEntry {
            name: format!("payload/{n}"),
            size: b.len() as u64,
            sha256: HexDigest::from_bytes(&Sha256::digest(b).into()),
            kind: *k,
            reference: None,
            encryption: None,
        })
        .collect();
    let m = Manifest {
        format: FormatName::AirlockBundle,
        version: FormatVersion::V1,
        bundle_id: BundleId::parse(&hex::encode(
            &Sha256::digest(format!("fixture {seq} {}", signer.fingerprint()))[..16],
        ))
        .expect("32 hex digits"),
        created: Timestamp::from_system(created),
        expires: Timestamp::from_system(created + lifetime),
        tool: airlock::tool_version(),
        source: Source::instance(host, Some(id.into())),
        sequence: Sequence {
            key: Fingerprint::parse(&signer.fingerprint()).expect("fingerprint"),
            number: seq,
        },
        payload,
        recipients: vec![],
    };
    m.check().expect("fixture manifest is valid");
    m
}

/// Mark a manifest built by `manifest` as encrypted to `listed`, in the
/// format version those recipients take.
fn encrypted(
    mut m: Manifest,
    name: &str,
    listed: &[airlock::format::manifest::Recipient],
) -> Manifest {
    m.payload[0].name = format!("payload/{name}");
    m.payload[0].encryption = Some(Encryption::Age);
    m.recipients = listed.to_vec();
    m.version = airlock::format::manifest::version_for(&m.recipients);
    m
}

fn sig(m: &[u8], s: &Signer, ns: &str) -> (String, Vec<u8>) {
    let sig = s.sign(ns, m).expect("sign");
    (signature_member_name(&sig), sig.to_armored().into_bytes())
}

fn zip(members: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut w = Writer::new(Cursor::new(Vec::new()));
    for (n, d) in members {
        w.add_bytes(n, d).expect("write");
    }
    w.finish().expect("finish").into_inner()
}

/// Offsets of the central directory entries of a canonical zip.
fn cd_entries(z: &[u8]) -> Vec<usize> {
    let le = |o: usize, n: usize| {
        let mut a = [0u8; 8];
        a[..n].copy_from_slice(&z[o..o + n]);
        u64::from_le_bytes(a) as usize
    };
    let t = z.len() - 98;
    let (count, mut at) = (le(t + 24, 8), le(t + 48, 8));
    let mut out = Vec::new();
    for _ in 0..count {
        out.push(at);
        at += 46 + le(at + 28, 2) + 28;
    }
    out
}

/// (file, recipients, passphrase?, identity to decrypt with, passphrase file)
type EncGolden<'a> = (&'a str, Vec<String>, bool, Option<&'a str>, Option<&'a str>);

struct Case {
    file: String,
    code: &'static str,
    what: &'static str,
    identity: Option<&'static str>,
    /// What the connected side's `import` says when it differs from
    /// verify's code: a licence bundle whose manifest parses is refused as
    /// `WRONG-DIRECTION` before anything else is judged (decision 81).
    import_code: Option<&'static str>,
}

fn main() {
    let rewrite_golden = std::env::args().any(|a| a == "--rewrite-golden");
    let fx = root().join("fixtures");
    fs::create_dir_all(fx.join("usage")).unwrap();
    fs::create_dir_all(fx.join("bundles")).unwrap();

    let exporter = key("exporter_ed25519");
    let outsider = key("outsider_ed25519");
    let revoked = key("revoked_ed25519");
    let retired = key("retired_ed25519");
    let other_host = key("other-host_ed25519");
    let connected = key("connected_ed25519");

    let allowed = format!(
        "# TEST ONLY: trust file for airlock's fixtures. Never trust these keys.\n\
         {SAMPLE_HOST} namespaces=\"airlock-bundle\" {} exporter\n\
         {SAMPLE_HOST} namespaces=\"airlock-bundle\" {} revoked\n\
         {SAMPLE_HOST} namespaces=\"airlock-bundle\",valid-before=\"20260101Z\" {} retired\n\
         {OTHER_HOST} namespaces=\"airlock-bundle\" {} other-host\n\
         {SAMPLE_ENTERPRISE} namespaces=\"airlock-bundle\" {} connected\n",
        exporter.public.to_openssh(),
        revoked.public.to_openssh(),
        retired.public.to_openssh(),
        other_host.public.to_openssh(),
        connected.public.to_openssh()
    );
    fs::write(root().join("keys/allowed_signers"), allowed).unwrap();
    // The isolated side's licence trust file: the connected side's key only
    // (decision 83); an exporter's key in it would let an instance sign licences.
    fs::write(
        root().join("keys/licence_allowed_signers"),
        format!(
            "# TEST ONLY: the isolated side's licence trust file. Never trust these keys.\n\
             {SAMPLE_ENTERPRISE} namespaces=\"airlock-bundle\" {} connected\n",
            connected.public.to_openssh()
        ),
    )
    .unwrap();
    fs::write(
        root().join("keys/revoked_keys"),
        format!(
            "# TEST ONLY: revoked keys for airlock's fixtures\n{} revoked\n",
            revoked.public.to_openssh()
        ),
    )
    .unwrap();

    // Sample usage files.
    let enc = sample::usage_encrypted(SAMPLE_HOST, SAMPLE_SERVER_ID, 4096);
    let clear = sample::usage_clear(SAMPLE_HOST, SAMPLE_SERVER_ID, 5);
    let other = sample::usage_encrypted(OTHER_HOST, OTHER_ID, 1024);
    let notes = b"Carried with the usage file: change ticket CHG-1234.\n".to_vec();
    fs::write(fx.join("usage/ghes-encrypted-users.json"), &enc).unwrap();
    fs::write(fx.join("usage/ghes-clear-users.json"), &clear).unwrap();
    fs::write(fx.join("usage/other-instance.json"), &other).unwrap();
    fs::write(fx.join("usage/notes.txt"), &notes).unwrap();

    let at = t(FIXTURE_TIME);
    let month = Duration::from_secs(30 * 24 * 3600);

    // Golden bundles, through the real export path.
    let goldens = [
        (
            "golden_encrypted_users.airlock.zip",
            vec!["ghes-encrypted-users.json"],
        ),
        (
            "golden_clear_users.airlock.zip",
            vec!["ghes-clear-users.json"],
        ),
        (
            "golden_usage_and_file.airlock.zip",
            vec!["ghes-encrypted-users.json", "notes.txt"],
        ),
    ];
    let state_dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(state_dir.path()).unwrap();
    for (name, files) in &goldens {
        let out = fx.join("bundles").join(name);
        if out.exists() && !rewrite_golden {
            continue;
        }
        let inputs: Vec<Input> = files
            .iter()
            .map(|f| Input::path(&fx.join("usage").join(f)).unwrap())
            .collect();
        export::export(export::ExportOptions {
            progress: airlock::progress::Progress::none(),
            inputs,
            bundle: export::BundleSpec {
                signer: &exporter,
                host_name: None,
                server_id: None,
                created: at,
                expires_in: month,
                tool: airlock::tool_version(),
                recipients: &Recipients::default(),
            },
            now: at.into(),
            out: out.clone(),
            overwrite: true,
            state: &state,
            read_back: true,
        })
        .expect("golden export");
        println!("wrote {}", out.display());
    }

    // fail_* bundles.
    let u = "license-usage.json";
    let mut cases: Vec<Case> = Vec::new();
    let emit = |file: &str,
                bytes: Vec<u8>,
                code: &'static str,
                what: &'static str,
                cases: &mut Vec<Case>| {
        fs::write(fx.join("bundles").join(file), bytes).unwrap();
        cases.push(Case {
            file: file.into(),
            code,
            what,
            identity: None,
            import_code: None,
        });
    };
    let good = |signer: &Signer, seq: u64| -> (Vec<u8>, (String, Vec<u8>)) {
        let m = manifest(
            &[(u, &enc, PayloadKind::Usage)],
            at,
            month,
            seq,
            signer,
            SAMPLE_HOST,
            SAMPLE_SERVER_ID,
        )
        .to_bytes();
        let s = sig(&m, signer, BUNDLE_NAMESPACE);
        (m, s)
    };
    let p = |n: &str| format!("payload/{n}");
    let (m, s) = good(&exporter, 10);

    let mut forged = enc.clone();
    let i = forged.len() - 100;
    forged[i] = if forged[i] == b'A' { b'B' } else { b'A' };
    emit(
        "fail_tampered_payload.airlock.zip",
        zip(&[
            (p(u), forged),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-MEMBER-DIGEST",
        "payload byte changed, CRC recomputed",
        &mut cases,
    );

    let tampered_m = String::from_utf8(m.clone())
        .unwrap()
        .replace("\"number\": 10", "\"number\": 99")
        .into_bytes();
    emit(
        "fail_tampered_manifest.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("manifest.json".into(), tampered_m),
            s.clone(),
        ]),
        "AIRLOCK-E-SIG-INVALID",
        "manifest edited (sequence number), signature kept",
        &mut cases,
    );

    emit(
        "fail_unlisted_member.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            (p("run-me.sh"), b"#!/bin/sh\necho pwned\n".to_vec()),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-MEMBER-UNLISTED",
        "a member the manifest does not list",
        &mut cases,
    );

    let m2 = manifest(
        &[
            (u, &enc, PayloadKind::Usage),
            ("notes.txt", &notes, PayloadKind::File),
        ],
        at,
        month,
        11,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    )
    .to_bytes();
    let s2 = sig(&m2, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_missing_member.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("manifest.json".into(), m2.clone()),
            s2.clone(),
        ]),
        "AIRLOCK-E-MEMBER-MISSING",
        "a member the manifest lists was removed",
        &mut cases,
    );

    emit(
        "fail_duplicate_member.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            (p(u), other.clone()),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-ZIP-DUPLICATE",
        "two members with the same name (zip readers let the last win)",
        &mut cases,
    );

    emit(
        "fail_path_traversal.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            (
                "../../etc/cron.d/airlock".into(),
                b"* * * * * root sh\n".to_vec(),
            ),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-ZIP-NAME",
        "a member named ../../etc/cron.d/airlock",
        &mut cases,
    );

    emit(
        "fail_wrong_namespace.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("manifest.json".into(), m.clone()),
            sig(&m, &exporter, "file"),
        ]),
        "AIRLOCK-E-SIG-NAMESPACE",
        "signature made with ssh-keygen's namespace \"file\"",
        &mut cases,
    );

    let (mo, so) = good(&outsider, 1);
    emit(
        "fail_untrusted_key.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), mo), so]),
        "AIRLOCK-E-SIG-UNTRUSTED",
        "signed by a key not in allowed_signers",
        &mut cases,
    );

    let (mr, sr) = good(&retired, 1);
    emit(
        "fail_key_window.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), mr), sr]),
        "AIRLOCK-E-SIG-WINDOW",
        "signed by a key whose valid-before has passed",
        &mut cases,
    );

    let (mv, sv) = good(&revoked, 1);
    emit(
        "fail_revoked_key.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), mv), sv]),
        "AIRLOCK-E-SIG-REVOKED",
        "signed by a revoked key",
        &mut cases,
    );

    let (mh, sh) = good(&other_host, 1);
    emit(
        "fail_wrong_principal.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), mh), sh]),
        "AIRLOCK-E-SIG-PRINCIPAL",
        "signed by a key trusted only for another instance",
        &mut cases,
    );

    let me = manifest(
        &[(u, &enc, PayloadKind::Usage)],
        at - 2 * month,
        month,
        12,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    )
    .to_bytes();
    let se = sig(&me, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_expired.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), me), se]),
        "AIRLOCK-E-BUNDLE-EXPIRED",
        "genuine bundle past its expiry (freeze/replay)",
        &mut cases,
    );

    let mf = manifest(
        &[(u, &enc, PayloadKind::Usage)],
        at + Duration::from_secs(24 * 3600),
        month,
        13,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    )
    .to_bytes();
    let sf = sig(&mf, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_future.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), mf), sf]),
        "AIRLOCK-E-BUNDLE-FUTURE",
        "dated a day after the verification time",
        &mut cases,
    );

    let mp = manifest(
        &[(u, &other, PayloadKind::Usage)],
        at,
        month,
        14,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    )
    .to_bytes();
    let sp = sig(&mp, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_payload_source.airlock.zip",
        zip(&[(p(u), other.clone()), ("manifest.json".into(), mp), sp]),
        "AIRLOCK-E-PAYLOAD-SOURCE",
        "usage file of another instance under this instance's manifest",
        &mut cases,
    );

    // Decision 70: a usage file is checked against the source whatever its
    // label. A key trusted only for OTHER_HOST signs a bundle for its own
    // instance that carries SAMPLE_HOST's usage file labelled `file`.
    let mfs = manifest(
        &[(u, &enc, PayloadKind::File)],
        at,
        month,
        2,
        &other_host,
        OTHER_HOST,
        OTHER_ID,
    )
    .to_bytes();
    let sfs = sig(&mfs, &other_host, BUNDLE_NAMESPACE);
    emit(
        "fail_file_member_other_source.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), mfs), sfs]),
        "AIRLOCK-E-PAYLOAD-SOURCE",
        "another instance's usage file labelled `file`, signed by a key trusted for the manifest's instance",
        &mut cases,
    );

    emit(
        "fail_no_signature.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), m.clone())]),
        "AIRLOCK-E-SIG-MISSING",
        "manifest without any signature",
        &mut cases,
    );

    let mc = manifest(
        &[(u, &clear, PayloadKind::Usage)],
        at,
        month,
        15,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    )
    .to_bytes();
    let sc = sig(&mc, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_mix_and_match.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("manifest.json".into(), mc.clone()),
            sc.clone(),
        ]),
        "AIRLOCK-E-MEMBER-DIGEST",
        "manifest and signature of one bundle, payload of another",
        &mut cases,
    );

    emit(
        "fail_signature_swapped.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("manifest.json".into(), m.clone()),
            sc.clone(),
        ]),
        "AIRLOCK-E-SIG-INVALID",
        "signature of another bundle by the same key",
        &mut cases,
    );

    let base = zip(&[
        (p(u), enc.clone()),
        ("manifest.json".into(), m.clone()),
        s.clone(),
    ]);
    let mut appended = base.clone();
    appended.extend_from_slice(b"#!/bin/sh\necho appended\n");
    emit(
        "fail_appended_data.airlock.zip",
        appended,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "data appended after the zip",
        &mut cases,
    );
    let mut prepended = b"MZ\x90\x00 prepended stub ".to_vec();
    prepended.extend_from_slice(&base);
    emit(
        "fail_prepended_data.airlock.zip",
        prepended,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "data prepended before the zip (self-extractor style)",
        &mut cases,
    );

    emit(
        "fail_not_a_zip.airlock.zip",
        enc.clone(),
        "AIRLOCK-E-NOT-A-BUNDLE",
        "a bare usage file renamed to .airlock.zip",
        &mut cases,
    );

    // Zip-level attacks, built byte by byte (issue #6). Each starts from the
    // valid `base` or from raw headers, so only the one lie differs.
    let cd = cd_entries(&base);
    let name0 = "payload/license-usage.json".len();

    // A non-recursive zip bomb: extra central entries all pointing at the
    // first member's bytes (Fifield's overlapping-files construction).
    {
        let (mut members, mut entries) = (Vec::new(), Vec::new());
        for (n, d) in [
            (p(u), enc.clone()),
            ("manifest.json".to_string(), m.clone()),
            s.clone(),
        ] {
            let e = Entry {
                name: n.clone(),
                size: d.len() as u64,
                crc32: crc32fast::hash(&d),
                header_offset: members.len() as u64,
            };
            members.extend(container::local_header(&n, e.size, e.crc32));
            members.extend(&d);
            entries.push(e);
        }
        let first = entries[0].clone();
        let mut all = vec![first.clone()];
        for i in 1..=8 {
            all.push(Entry {
                name: format!("payload/copy-{i}.json"),
                ..first.clone()
            });
        }
        all.extend(entries[1..].iter().cloned());
        let cd_offset = members.len() as u64;
        let mut out = members;
        for e in &all {
            out.extend(container::central_header(e));
        }
        let cd_size = out.len() as u64 - cd_offset;
        out.extend(container::tail(all.len() as u64, cd_offset, cd_size));
        emit(
            "fail_overlapping_members.airlock.zip",
            out,
            "AIRLOCK-E-ZIP-STRUCTURE",
            "zip bomb: 8 extra central entries all pointing at the first member's data",
            &mut cases,
        );
    }

    let mut b = base.clone();
    b[30 + name0 - 6] ^= 0x20; // payload/license-usage.JSON in the local header only
    emit(
        "fail_local_central_mismatch.airlock.zip",
        b,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "local header names another member than the central directory",
        &mut cases,
    );

    let mut b = base.clone();
    let huge = (1u64 << 62).to_le_bytes();
    for off in [
        30 + name0 + 4,
        30 + name0 + 12,
        cd[0] + 46 + name0 + 4,
        cd[0] + 46 + name0 + 12,
    ] {
        b[off..off + 8].copy_from_slice(&huge);
    }
    emit(
        "fail_zip64_size_lie.airlock.zip",
        b,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "Zip64 fields in both headers claim the payload is 4 EiB",
        &mut cases,
    );

    let mut b = base.clone();
    b[cd[0] + 38..cd[0] + 42].copy_from_slice(&(0o120777u32 << 16).to_le_bytes());
    emit(
        "fail_symlink_member.airlock.zip",
        b,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "payload member marked as a symbolic link in its Unix mode",
        &mut cases,
    );

    let mut b = base.clone();
    for off in [8, cd[0] + 10] {
        b[off] = 8; // deflate
    }
    emit(
        "fail_compressed_member.airlock.zip",
        b,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "payload member claims deflate compression",
        &mut cases,
    );

    let mut b = base.clone();
    let n = b.len();
    b[n - 2..].copy_from_slice(&7u16.to_le_bytes());
    b.extend_from_slice(b"comment");
    emit(
        "fail_zip_comment.airlock.zip",
        b,
        "AIRLOCK-E-ZIP-STRUCTURE",
        "an archive comment after the end record",
        &mut cases,
    );

    emit(
        "fail_empty_zip.airlock.zip",
        container::tail(0, 0, 0),
        "AIRLOCK-E-ZIP-LIMIT",
        "a zip with no members at all",
        &mut cases,
    );

    emit(
        "fail_absolute_member.airlock.zip",
        zip(&[
            (
                "/etc/cron.d/airlock".into(),
                b"* * * * * root sh\n".to_vec(),
            ),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-ZIP-NAME",
        "a member with an absolute path",
        &mut cases,
    );

    emit(
        "fail_symlink_name.airlock.zip",
        zip(&[
            ("payload/link -> /etc/shadow".into(), b"x".to_vec()),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-ZIP-NAME",
        "a member name with spaces and '>' (symlink-listing style)",
        &mut cases,
    );

    emit(
        "fail_unicode_names.airlock.zip",
        zip(&[
            ("payload/caf\u{e9}.txt".into(), b"nfc".to_vec()),
            ("payload/cafe\u{301}.txt".into(), b"nfd".to_vec()),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-ZIP-NAME",
        "two names that differ only by Unicode normalisation (NFC and NFD)",
        &mut cases,
    );

    emit(
        "fail_case_duplicate.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("payload/LICENSE-USAGE.json".into(), b"{}".to_vec()),
            ("manifest.json".into(), m.clone()),
            s.clone(),
        ]),
        "AIRLOCK-E-ZIP-DUPLICATE",
        "two names that differ only in case (they merge on FAT, NTFS, APFS)",
        &mut cases,
    );

    let mut many: Vec<(String, Vec<u8>)> = (0..64)
        .map(|i| (format!("payload/f{i}.txt"), vec![b'x']))
        .collect();
    many.push(("manifest.json".into(), m.clone()));
    emit(
        "fail_too_many_members.airlock.zip",
        zip(&many),
        "AIRLOCK-E-ZIP-LIMIT",
        "65 members, over the format's limit of 64",
        &mut cases,
    );

    // A manifest over 256 KiB, validly signed: rejected before it is read.
    let mut big = m.clone();
    big.pop();
    big.extend(std::iter::repeat_n(b' ', 256 * 1024));
    big.extend(b"}\n");
    let big_sig = sig(&big, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_manifest_oversize.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), big), big_sig]),
        "AIRLOCK-E-ZIP-LIMIT",
        "a signed manifest of 256 KiB + 4 bytes (the limit is 256 KiB)",
        &mut cases,
    );

    // A signed manifest nested 100 000 arrays deep: the parser must stop, not
    // overflow the stack.
    let deep: Vec<u8> = std::iter::repeat_n(b'[', 100_000)
        .chain(std::iter::repeat_n(b']', 100_000))
        .collect();
    let deep_sig = sig(&deep, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_manifest_deep.airlock.zip",
        zip(&[
            (p(u), enc.clone()),
            ("manifest.json".into(), deep),
            deep_sig,
        ]),
        "AIRLOCK-E-MANIFEST-INVALID",
        "a signed manifest of 100 000 nested JSON arrays",
        &mut cases,
    );

    let v2 = manifest(
        &[(u, &enc, PayloadKind::Usage)],
        at,
        month,
        13,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    );
    // Version 4 has no type: written as text. (Version 3, once the unknown
    // version here, is a licence bundle's since decision 81.)
    let v2 = String::from_utf8(v2.to_bytes())
        .expect("utf-8")
        .replacen("\"version\": 1,", "\"version\": 4,", 1)
        .into_bytes();
    let v2_sig = sig(&v2, &exporter, BUNDLE_NAMESPACE);
    emit(
        "fail_format_version.airlock.zip",
        zip(&[(p(u), enc.clone()), ("manifest.json".into(), v2), v2_sig]),
        "AIRLOCK-E-FORMAT-VERSION",
        "a signed manifest of format version 4, which this airlock does not know",
        &mut cases,
    );

    // Manifest strictness: each a validly signed manifest that a JSON reader
    // could take two ways (a sequence past 2^53, `null` for an absent field,
    // an empty list, a version written as a float).
    let strict = manifest(
        &[(u, &enc, PayloadKind::Usage)],
        at,
        month,
        15,
        &exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    )
    .to_bytes();
    let strict = String::from_utf8(strict).unwrap();
    let id_field = format!("\"server_id\": \"{SAMPLE_SERVER_ID}\"");
    for (file, from, to, code, what) in [
        (
            "fail_sequence_2p53.airlock.zip",
            "\"number\": 15",
            "\"number\": 9007199254740992",
            "AIRLOCK-E-MANIFEST-INVALID",
            "sequence number 2^53, past the format's limit 2^53-1",
        ),
        (
            "fail_sequence_2p63.airlock.zip",
            "\"number\": 15",
            "\"number\": 9223372036854775808",
            "AIRLOCK-E-MANIFEST-INVALID",
            "sequence number 2^63 (was stored as a negative integer)",
        ),
        (
            "fail_sequence_u64_max.airlock.zip",
            "\"number\": 15",
            "\"number\": 18446744073709551615",
            "AIRLOCK-E-MANIFEST-INVALID",
            "sequence number 2^64-1 (was stored as -1)",
        ),
        (
            "fail_null_server_id.airlock.zip",
            id_field.as_str(),
            "\"server_id\": null",
            "AIRLOCK-E-MANIFEST-INVALID",
            "source.server_id is null instead of absent",
        ),
        (
            "fail_null_encryption.airlock.zip",
            "\"kind\": \"ghes-license-usage\"",
            "\"kind\": \"ghes-license-usage\",\n      \"encryption\": null",
            "AIRLOCK-E-MANIFEST-INVALID",
            "a payload entry with \"encryption\": null",
        ),
        (
            "fail_empty_recipients.airlock.zip",
            "\"payload\": [",
            "\"recipients\": [],\n  \"payload\": [",
            "AIRLOCK-E-MANIFEST-INVALID",
            "an empty recipients list instead of none",
        ),
        (
            "fail_version_float.airlock.zip",
            "\"version\": 1,",
            "\"version\": 1.0,",
            "AIRLOCK-E-MANIFEST-INVALID",
            "format version written as 1.0",
        ),
    ] {
        assert!(strict.contains(from), "{from}");
        let bytes = strict.replacen(from, to, 1).into_bytes();
        let signature = sig(&bytes, &exporter, BUNDLE_NAMESPACE);
        emit(
            file,
            zip(&[
                (p(u), enc.clone()),
                ("manifest.json".into(), bytes),
                signature,
            ]),
            code,
            what,
            &mut cases,
        );
    }

    // A usage file that is not one (signed, so only the payload check stops it).
    let mut bad_usage = enc.clone();
    let cut = bad_usage.len() / 2;
    bad_usage.truncate(cut);
    let (bm, bs) = {
        let m = manifest(
            &[(u, &bad_usage, PayloadKind::Usage)],
            at,
            month,
            14,
            &exporter,
            SAMPLE_HOST,
            SAMPLE_SERVER_ID,
        )
        .to_bytes();
        let s = sig(&m, &exporter, BUNDLE_NAMESPACE);
        (m, s)
    };
    emit(
        "fail_usage_truncated.airlock.zip",
        zip(&[(p(u), bad_usage), ("manifest.json".into(), bm), bs]),
        "AIRLOCK-E-USAGE-FILE-INVALID",
        "signed, but the usage file inside is cut in half",
        &mut cases,
    );

    // Encrypted fixtures (issue #3).
    let age_id = age_identity("age_identity.txt");
    let pq_id = age_pq_identity("age_pq_identity.txt");
    let importer = key("importer_ed25519");
    let passphrase = "TEST ONLY passphrase for airlock fixtures";
    fs::write(
        root().join("keys/bundle_passphrase.txt"),
        format!("{passphrase}\n"),
    )
    .unwrap();
    let importer_line = importer.public.to_openssh();
    let encrypted_goldens: Vec<EncGolden> = vec![
        (
            "golden_enc_x25519.airlock.zip",
            vec![age_id.clone()],
            false,
            Some("keys/age_identity.txt"),
            None,
        ),
        (
            "golden_enc_ssh_ed25519.airlock.zip",
            vec![importer_line.clone()],
            false,
            Some("keys/importer_ed25519"),
            None,
        ),
        (
            "golden_enc_passphrase.airlock.zip",
            vec![],
            true,
            None,
            Some("keys/bundle_passphrase.txt"),
        ),
        (
            "golden_enc_two_recipients.airlock.zip",
            vec![age_id.clone(), importer_line.clone()],
            false,
            Some("keys/importer_ed25519"),
            None,
        ),
        (
            "golden_enc_hybrid.airlock.zip",
            vec![pq_id.clone()],
            false,
            Some("keys/age_pq_identity.txt"),
            None,
        ),
    ];
    for (name, recips, pass, _, _) in &encrypted_goldens {
        let out = fx.join("bundles").join(name);
        if out.exists() && !rewrite_golden {
            continue;
        }
        let mut rs = Recipients::default();
        for r in recips {
            rs.add(r).unwrap();
        }
        if *pass {
            rs.set_passphrase(passphrase, airlock::crypt::SCRYPT_WORK_FACTOR)
                .unwrap();
        }
        export::export(export::ExportOptions {
            progress: airlock::progress::Progress::none(),
            inputs: vec![Input::path(&fx.join("usage/ghes-clear-users.json")).unwrap()],
            bundle: export::BundleSpec {
                signer: &exporter,
                host_name: None,
                server_id: None,
                created: at,
                expires_in: month,
                tool: airlock::tool_version(),
                recipients: &rs,
            },
            now: at.into(),
            out: out.clone(),
            overwrite: true,
            state: &state,
            read_back: true,
        })
        .expect("encrypted golden export");
        println!("wrote {}", out.display());
    }

    let enc_name = "ghes-clear-users.json.age";
    let to_me = |extra: &[String]| {
        let mut rs = Recipients::default();
        rs.add(&age_id).unwrap();
        for e in extra {
            rs.add(e).unwrap();
        }
        rs
    };
    let encrypt = |rs: &Recipients, data: &[u8]| {
        let mut out = Vec::new();
        let mut w = rs.encryptor().unwrap().wrap_output(&mut out).unwrap();
        w.write_all(data).unwrap();
        w.finish().unwrap();
        out
    };
    let enc_manifest = |ct: &[u8], listed: &Recipients, seq: u64| {
        let mut m = manifest(
            &[(enc_name.trim_end_matches(".age"), ct, PayloadKind::Usage)],
            at,
            month,
            seq,
            &exporter,
            SAMPLE_HOST,
            SAMPLE_SERVER_ID,
        );
        m.payload[0].name = format!("payload/{enc_name}");
        m.payload[0].encryption = Some(Encryption::Age);
        m.recipients = listed.listed.clone();
        m.version = airlock::format::manifest::version_for(&m.recipients);
        m.check().unwrap();
        m.to_bytes()
    };
    let mut enc_case = |file: &str,
                        make: &dyn Fn() -> Vec<u8>,
                        code: &'static str,
                        what: &'static str,
                        identity: Option<&'static str>| {
        let path = fx.join("bundles").join(file);
        if !path.exists() {
            fs::write(&path, make()).unwrap();
        }
        cases.push(Case {
            file: file.into(),
            code,
            what,
            identity,
            import_code: None,
        });
    };
    let mine = to_me(&[]);
    enc_case(
        "fail_ciphertext_truncated.airlock.zip",
        &|| {
            let ct = encrypt(&mine, &clear);
            let ct = ct[..ct.len() - 20].to_vec();
            let m = enc_manifest(&ct, &mine, 20);
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-DECRYPT-FAILED",
        "signed manifest over a truncated age file: only decryption to the end can tell",
        Some("keys/age_identity.txt"),
    );
    enc_case(
        "fail_ciphertext_swapped.airlock.zip",
        &|| {
            let genuine = encrypt(&mine, &clear);
            let m = enc_manifest(&genuine, &mine, 21);
            // An outsider who knows only the recipient makes a valid age file of the same size.
            let forged_plain = String::from_utf8(clear.clone())
                .unwrap()
                .replace("user1@", "evil1@")
                .into_bytes();
            let forged = encrypt(&mine, &forged_plain);
            zip(&[
                (p(enc_name), forged),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-MEMBER-DIGEST",
        "age file made by an outsider for the same recipient, swapped in",
        None,
    );
    enc_case(
        "fail_recipients_edited.airlock.zip",
        &|| {
            let ct = encrypt(&mine, &clear);
            let m = enc_manifest(&ct, &mine, 22);
            let s = sig(&m, &exporter, BUNDLE_NAMESPACE);
            let other = to_me(&[]);
            let _ = other;
            let outsider_recipient = airlock::crypt::generate_identity(FIXTURE_TIME).1;
            let edited = String::from_utf8(m)
                .unwrap()
                .replace(&age_id, &outsider_recipient)
                .into_bytes();
            zip(&[(p(enc_name), ct), ("manifest.json".into(), edited), s])
        },
        "AIRLOCK-E-SIG-INVALID",
        "recipient list in the manifest edited after signing",
        None,
    );
    enc_case(
        "fail_wrong_identity.airlock.zip",
        &|| {
            let mut theirs = Recipients::default();
            theirs
                .add(&airlock::crypt::generate_identity(FIXTURE_TIME).1)
                .unwrap();
            let ct = encrypt(&theirs, &clear);
            let m = enc_manifest(&ct, &theirs, 23);
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-DECRYPT-NO-IDENTITY",
        "encrypted for someone else; decrypting with keys/age_identity.txt",
        Some("keys/age_identity.txt"),
    );
    enc_case(
        "fail_hidden_recipient.airlock.zip",
        &|| {
            let hidden = to_me(&[airlock::crypt::generate_identity(FIXTURE_TIME).1]);
            let ct = encrypt(&hidden, &clear);
            let m = enc_manifest(&ct, &mine, 24);
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-RECIPIENTS-MISMATCH",
        "age file also encrypted to a recipient the signed manifest does not list",
        None,
    );

    // Post-quantum (format v2) fixtures (issue #21).
    let mut pq = Recipients::default();
    pq.add(&pq_id).unwrap();
    let pq_manifest = |ct: &[u8], listed: &[airlock::format::manifest::Recipient], seq: u64| {
        encrypted(
            manifest(
                &[(enc_name.trim_end_matches(".age"), ct, PayloadKind::Usage)],
                at,
                month,
                seq,
                &exporter,
                SAMPLE_HOST,
                SAMPLE_SERVER_ID,
            ),
            enc_name,
            listed,
        )
    };
    // An age file for the hybrid recipient and, hidden by dropping age's
    // "postquantum" label, the fixtures' X25519 recipient too.
    let pq_and_x25519 = || {
        let h = Unlabelled(Box::new(
            pq_id.parse::<airlock::crypt::hybrid::Recipient>().unwrap(),
        ));
        let x = age_id.parse::<age::x25519::Recipient>().unwrap();
        let mut out = Vec::new();
        let mut w = age::Encryptor::with_recipients([&h as &dyn age::Recipient, &x].into_iter())
            .unwrap()
            .wrap_output(&mut out)
            .unwrap();
        w.write_all(&clear).unwrap();
        w.finish().unwrap();
        out
    };
    enc_case(
        "fail_hybrid_x25519_identity.airlock.zip",
        &|| {
            let ct = encrypt(&pq, &clear);
            let m = pq_manifest(&ct, &pq.listed, 25);
            m.check().unwrap();
            let m = m.to_bytes();
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-DECRYPT-NO-IDENTITY",
        "encrypted to a post-quantum recipient only; decrypting with the X25519 keys/age_identity.txt",
        Some("keys/age_identity.txt"),
    );
    enc_case(
        "fail_hybrid_hidden_classical.airlock.zip",
        &|| {
            let ct = pq_and_x25519();
            let m = pq_manifest(&ct, &pq.listed, 26);
            m.check().unwrap();
            let m = m.to_bytes();
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-RECIPIENTS-MISMATCH",
        "signed for a post-quantum recipient only, but the age file also has an X25519 stanza (quantum-breakable)",
        Some("keys/age_pq_identity.txt"),
    );
    enc_case(
        "fail_hybrid_mixed_manifest.airlock.zip",
        &|| {
            let ct = pq_and_x25519();
            let mut listed = pq.listed.clone();
            listed.extend(to_me(&[]).listed);
            let m = pq_manifest(&ct, &listed, 27).to_bytes();
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-MANIFEST-INVALID",
        "a signed manifest that mixes a post-quantum and an X25519 recipient (age's rule forbids it)",
        None,
    );
    enc_case(
        "fail_hybrid_version_1.airlock.zip",
        &|| {
            let ct = encrypt(&pq, &clear);
            let mut m = pq_manifest(&ct, &pq.listed, 28);
            m.version = FormatVersion::V1;
            let m = m.to_bytes();
            zip(&[
                (p(enc_name), ct),
                ("manifest.json".into(), m.clone()),
                sig(&m, &exporter, BUNDLE_NAMESPACE),
            ])
        },
        "AIRLOCK-E-MANIFEST-INVALID",
        "a post-quantum recipient in a manifest of format version 1, which has no such type",
        None,
    );

    let licence_golden = licence_fixtures(&fx, &connected, &exporter, &state, &mut cases);

    let list: Vec<_> = cases
        .iter()
        .map(|c| {
            let mut v = json!({"file": format!("bundles/{}", c.file), "at": FIXTURE_TIME, "code": c.code, "what": c.what});
            if let Some(i) = c.identity {
                v["identity"] = json!(i);
            }
            if let Some(i) = c.import_code {
                v["import_code"] = json!(i);
            }
            v
        })
        .collect();
    let doc = json!({
        "comment": "Generated by `cargo run --example make_fixtures`. Verify each with --trust keys/allowed_signers --revoked keys/revoked_keys --at AT.",
        "trust": "keys/allowed_signers",
        "revoked": "keys/revoked_keys",
        "golden": goldens
            .iter()
            .map(|(n, _)| json!({"file": format!("bundles/{n}"), "at": FIXTURE_TIME}))
            .chain(encrypted_goldens.iter().map(|(n, _, _, id, pass)| {
                let mut v = json!({"file": format!("bundles/{n}"), "at": FIXTURE_TIME, "plaintext": "usage/ghes-clear-users.json"});
                if let Some(i) = id {
                    v["identity"] = json!(i);
                }
                if let Some(p) = pass {
                    v["passphrase_file"] = json!(p);
                }
                v
            }))
            .chain(std::iter::once(licence_golden))
            .collect::<Vec<_>>(),
        "fail": list,
    });
    let mut text = serde_json::to_string_pretty(&doc).unwrap();
    text.push('\n');
    fs::write(fx.join("expectations.json"), text).unwrap();
    println!(
        "wrote {} fail_* bundles and fixtures/expectations.json",
        cases.len()
    );
}

/// The licence bundle fixtures (format version 3, decision 81): the stand-in
/// licence, the golden licence bundle (through the real export path, made
/// only when missing), and signed-only `fail_*` licence bundles. Returns
/// the golden bundle's `expectations.json` entry.
fn licence_fixtures(
    fx: &std::path::Path,
    connected: &Signer,
    exporter: &Signer,
    state: &StateDir,
    cases: &mut Vec<Case>,
) -> serde_json::Value {
    use airlock::format::licence::LicenceInput;
    use airlock::format::manifest::{EnterpriseSlug, LicenceReference};
    fs::create_dir_all(fx.join("licence")).unwrap();
    let ghl_name = format!("github-enterprise-{SAMPLE_REFERENCE}.ghl");
    let ghl_path = fx.join("licence").join(&ghl_name);
    let ghl = sample::licence(SAMPLE_REFERENCE);
    fs::write(&ghl_path, &ghl).unwrap();
    let at = t(FIXTURE_TIME);
    let month = Duration::from_secs(30 * 24 * 3600);

    let golden = "golden_licence.airlock.zip";
    let out = fx.join("bundles").join(golden);
    if !out.exists() {
        let licence = LicenceInput::new(&ghl_path, SAMPLE_ENTERPRISE, None).unwrap();
        export::export(export::ExportOptions {
            progress: airlock::progress::Progress::none(),
            inputs: vec![Input::licence(&ghl_path, licence)],
            bundle: export::BundleSpec {
                signer: connected,
                host_name: None,
                server_id: None,
                created: at,
                expires_in: month,
                tool: airlock::tool_version(),
                recipients: &Recipients::default(),
            },
            now: at.into(),
            out: out.clone(),
            overwrite: true,
            state,
            read_back: true,
        })
        .expect("golden licence export");
        println!("wrote {}", out.display());
    }

    // A licence manifest built by hand, signed by `signer`.
    let licence_manifest = |data: &[u8], seq: u64, signer: &Signer| {
        let mut m = manifest(
            &[(&ghl_name, data, PayloadKind::File)],
            at,
            month,
            seq,
            signer,
            SAMPLE_HOST,
            SAMPLE_SERVER_ID,
        );
        m.version = FormatVersion::V3;
        m.source = Source::enterprise(EnterpriseSlug::parse(SAMPLE_ENTERPRISE).unwrap());
        m.payload[0].kind = PayloadKind::Licence;
        m.payload[0].reference = LicenceReference::parse(SAMPLE_REFERENCE);
        m
    };
    let bundle_of = |m: &Manifest, member: &str, data: &[u8], signer: &Signer| {
        let mb = m.to_bytes();
        zip(&[
            (member.to_string(), data.to_vec()),
            ("manifest.json".into(), mb.clone()),
            sig(&mb, signer, BUNDLE_NAMESPACE),
        ])
    };
    let member = format!("payload/{ghl_name}");
    let mut emit = |file: &str, bytes: Vec<u8>, code, import_code, what| {
        fs::write(fx.join("bundles").join(file), bytes).unwrap();
        cases.push(Case {
            file: file.into(),
            code,
            what,
            identity: None,
            import_code,
        });
    };
    let wrong_way = Some("AIRLOCK-E-WRONG-DIRECTION");

    let mut m = licence_manifest(&ghl, 2, connected);
    m.check().unwrap();
    m.version = FormatVersion::V1;
    emit(
        "fail_licence_version_1.airlock.zip",
        bundle_of(&m, &member, &ghl, connected),
        "AIRLOCK-E-MANIFEST-INVALID",
        None,
        "a licence manifest claiming format version 1: licences are version 3, so that version-1 readers refuse them",
    );

    let m = licence_manifest(&ghl, 3, connected);
    let text = String::from_utf8(m.to_bytes()).unwrap().replacen(
        &format!("\"name\": \"{member}\""),
        "\"name\": \"payload/github-enterprise-TEST124.ghl\"",
        1,
    );
    let mb = text.into_bytes();
    emit(
        "fail_licence_name_mismatch.airlock.zip",
        zip(&[
            ("payload/github-enterprise-TEST124.ghl".into(), ghl.clone()),
            ("manifest.json".into(), mb.clone()),
            sig(&mb, connected, BUNDLE_NAMESPACE),
        ]),
        "AIRLOCK-E-MANIFEST-INVALID",
        None,
        "a licence member named for reference TEST124 while the signed reference is TEST123",
    );

    let usage = sample::usage_encrypted(SAMPLE_HOST, SAMPLE_SERVER_ID, 1024);
    let m = licence_manifest(&usage, 4, connected);
    m.check().unwrap();
    emit(
        "fail_licence_holds_usage.airlock.zip",
        bundle_of(&m, &member, &usage, connected),
        "AIRLOCK-E-PAYLOAD-SOURCE",
        wrong_way,
        "a GHES usage file labelled as a licence: a licence bundle names no instance, so it can carry no usage file",
    );

    let m = licence_manifest(&ghl, 5, exporter);
    m.check().unwrap();
    emit(
        "fail_licence_signed_by_exporter.airlock.zip",
        bundle_of(&m, &member, &ghl, exporter),
        "AIRLOCK-E-SIG-PRINCIPAL",
        wrong_way,
        "a licence signed by the isolated side's export key, which is trusted for the instance, not the enterprise",
    );

    let enc = sample::usage_encrypted(SAMPLE_HOST, SAMPLE_SERVER_ID, 1024);
    let m = manifest(
        &[("license-usage.json", &enc, PayloadKind::Usage)],
        at,
        month,
        6,
        exporter,
        SAMPLE_HOST,
        SAMPLE_SERVER_ID,
    );
    let text = String::from_utf8(m.to_bytes())
        .unwrap()
        .replacen("\"version\": 1,", "\"version\": 3,", 1)
        .into_bytes();
    emit(
        "fail_licence_version_3_usage.airlock.zip",
        zip(&[
            ("payload/license-usage.json".into(), enc.clone()),
            ("manifest.json".into(), text.clone()),
            sig(&text, exporter, BUNDLE_NAMESPACE),
        ]),
        "AIRLOCK-E-MANIFEST-INVALID",
        None,
        "a usage bundle claiming format version 3, the licence bundles' version",
    );

    json!({
        "file": format!("bundles/{golden}"),
        "at": FIXTURE_TIME,
        "kind": "licence",
        "enterprise": SAMPLE_ENTERPRISE,
        "reference": SAMPLE_REFERENCE,
        "payload": format!("licence/{ghl_name}"),
    })
}
