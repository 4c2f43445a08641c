use super::*;
use crate::sample::{usage_encrypted, SAMPLE_HOST, SAMPLE_SERVER_ID};
use crate::verify::{verify_file, Clock};

struct Setup {
    dir: tempfile::TempDir,
    signer: Signer,
    state: StateDir,
    trust: TrustStore,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("key");
    let g = crate::crypto::keys::generate(&key, "test", None, false).unwrap();
    let signer = crate::crypto::keys::load_signer(&key, &mut || unreachable!()).unwrap();
    let state = StateDir::open(&dir.path().join("state")).unwrap();
    let trust = TrustStore::only(g.public, "test");
    Setup {
        dir,
        signer,
        state,
        trust,
    }
}

fn opts<'a>(s: &'a Setup, input: &Path, read_back: bool, r: &'a Recipients) -> ExportOptions<'a> {
    ExportOptions {
        progress: crate::base::progress::Progress::none(),
        inputs: vec![Input::path(input).unwrap()],
        bundle: BundleSpec {
            signer: &s.signer,
            host_name: None,
            server_id: None,
            created: SystemTime::now(),
            expires_in: Duration::from_secs(3600),
            tool: "airlock test".into(),
            recipients: r,
        },
        now: Clock::System,
        out: s.dir.path().to_path_buf(),
        overwrite: false,
        state: &s.state,
        read_back,
    }
}

fn usage(s: &Setup) -> PathBuf {
    let p = s.dir.path().join("license-usage.json");
    std::fs::write(&p, usage_encrypted(SAMPLE_HOST, SAMPLE_SERVER_ID, 5000)).unwrap();
    p
}

fn ledger_hash(s: &Setup) -> Option<String> {
    let l = Ledger::open(s.state.path()).unwrap();
    l.events()
        .unwrap()
        .into_iter()
        .rev()
        .find(|e| e.outcome == Outcome::Exported)
        .unwrap()
        .bundle_sha256
        .map(|d| d.to_string())
}

/// The ledger's bundle hash is that of the published file, from the
/// read-back's pass; without a read-back, there is none (decision 67).
#[test]
fn the_ledger_records_the_published_bundle_with_and_without_read_back() {
    let s = setup();
    let u = usage(&s);
    let none = Recipients::default();
    for read_back in [true, false] {
        let r = export(opts(&s, &u, read_back, &none)).unwrap();
        let want = read_back.then(|| fsutil::sha256_file(&r.path).unwrap());
        assert_eq!(ledger_hash(&s), want);
        assert!(r
            .path
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(SAMPLE_HOST));
        let v = verify_file(
            &r.path,
            &VerifyOptions {
                progress: crate::base::progress::Progress::none(),
                trust: &s.trust,
                identities: None,
                require_signers: 1,
                now: Clock::System,
                skew: Duration::from_secs(60),
            },
        )
        .unwrap();
        assert_eq!(v.manifest, r.manifest);
        assert_eq!(r.usage.len(), 1);
    }
    // Sequence numbers went up by one per export.
    let l = Ledger::open(s.state.path()).unwrap();
    let seqs: Vec<u64> = l
        .events()
        .unwrap()
        .iter()
        .filter(|e| e.outcome == Outcome::Exported)
        .filter_map(|e| e.sequence)
        .collect();
    assert_eq!(seqs, vec![1, 2]);
}

#[test]
fn read_back_hands_back_the_hash_of_what_is_on_disk_and_refuses_other_bytes() {
    let s = setup();
    let u = usage(&s);
    let none = Recipients::default();
    let r = export(opts(&s, &u, true, &none)).unwrap();
    let bytes = std::fs::read(&r.path).unwrap();
    let mb = r.manifest.to_bytes();
    let h = readback(
        &r.path,
        &s.signer,
        &mb,
        SystemTime::now(),
        &Progress::none(),
    )
    .unwrap();
    assert_eq!(h.as_str(), fsutil::sha256_file(&r.path).unwrap());
    // A manifest other than the one written: READBACK.
    let mut other = mb.clone();
    other.push(b' ');
    assert_eq!(
        readback(
            &r.path,
            &s.signer,
            &other,
            SystemTime::now(),
            &Progress::none()
        )
        .err()
        .unwrap()
        .code,
        Code::Readback
    );
    // A flipped payload byte on the medium: READBACK.
    let mut bad = bytes.clone();
    bad[120] ^= 1;
    std::fs::write(&r.path, &bad).unwrap();
    assert_eq!(
        readback(
            &r.path,
            &s.signer,
            &mb,
            SystemTime::now(),
            &Progress::none()
        )
        .err()
        .unwrap()
        .code,
        Code::Readback
    );
}

#[test]
fn the_source_comes_from_the_usage_file_and_must_agree_with_the_flags() {
    let s = setup();
    let u = usage(&s);
    let none = Recipients::default();
    let mut o = opts(&s, &u, false, &none);
    o.bundle.host_name = Some("other.example.com".into());
    assert_eq!(export(o).err().unwrap().code, Code::SourceConflict);
    // An opaque file needs a host name.
    let f = s.dir.path().join("notes.txt");
    std::fs::write(&f, "hello").unwrap();
    let o = opts(&s, &f, false, &none);
    assert_eq!(export(o).err().unwrap().code, Code::SourceUnknown);
    let mut o = opts(&s, &f, false, &none);
    o.bundle.host_name = Some("not a host".into());
    assert_eq!(export(o).err().unwrap().code, Code::Args);
    // Nothing was left in the output directory by the failures.
    let left: Vec<_> = std::fs::read_dir(s.dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with(".airlock-"))
        .collect();
    assert!(left.is_empty());
}
