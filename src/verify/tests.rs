//! The core against a medium that lies: each branch (discard, directory,
//! bundle hash, decryption) with the second read differing from the first.
use super::member::validate_file;
use super::*;
use crate::format::container::Stamp;
use crate::format::usage::Sniff;
use sha2::{Digest, Sha256};
use std::io::{self, Seek, SeekFrom};
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn golden(name: &str) -> Vec<u8> {
    std::fs::read(root().join("fixtures/bundles").join(name)).unwrap()
}

fn trust() -> TrustStore {
    let k = root().join("keys");
    TrustStore::load(&k.join("allowed_signers"), Some(&k.join("revoked_keys"))).unwrap()
}

fn opts<'a>(trust: &'a TrustStore, ids: Option<&'a Identities>) -> VerifyOptions<'a> {
    VerifyOptions {
        progress: crate::base::progress::Progress::none(),
        trust,
        identities: ids,
        require_signers: 1,
        now: Clock::Fixed(humantime::parse_rfc3339("2026-11-01T00:00:00Z").unwrap()),
        skew: DEFAULT_SKEW,
    }
}

/// Returns `first` until the `switch`-th seek to offset 0, then `second`;
/// the stamp changes when `restamp` is set, after the switch.
struct Lying {
    first: Vec<u8>,
    second: Vec<u8>,
    pos: u64,
    zero_seeks: usize,
    switch: usize,
    restamp: bool,
}

impl Lying {
    fn new(first: Vec<u8>, second: Vec<u8>) -> Lying {
        // Reader::open reads the first local header at offset 0 (one
        // seek); the sequential pass is the second.
        Lying {
            first,
            second,
            pos: 0,
            zero_seeks: 0,
            switch: 2,
            restamp: false,
        }
    }
    fn data(&self) -> &[u8] {
        if self.zero_seeks >= self.switch {
            &self.second
        } else {
            &self.first
        }
    }
}

impl Read for Lying {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let d = self.data();
        let start = (self.pos as usize).min(d.len());
        let n = buf.len().min(d.len() - start);
        buf[..n].copy_from_slice(&d[start..start + n]);
        self.pos += n as u64;
        Ok(n)
    }
}

impl Seek for Lying {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => (self.data().len() as i64 + d) as u64,
            SeekFrom::Current(d) => (self.pos as i64 + d) as u64,
        };
        if self.pos == 0 {
            self.zero_seeks += 1;
        }
        Ok(self.pos)
    }
}

impl Medium for Lying {
    fn stamp(&self) -> io::Result<Stamp> {
        let moved = self.restamp && self.zero_seeks >= self.switch;
        Ok(Stamp {
            len: self.first.len() as u64,
            mtime: (if moved { 2 } else { 1 }, 0),
            ctime: (1, 0),
        })
    }
}

fn flip(mut b: Vec<u8>, at: usize) -> Vec<u8> {
    b[at] ^= 0x20;
    b
}

fn find(hay: &[u8], needle: &[u8]) -> usize {
    hay.windows(needle.len()).position(|w| w == needle).unwrap()
}

fn run(
    medium: Lying,
    ids: Option<&Identities>,
    dir: Option<&Path>,
    hash: Hashing,
) -> Result<(Verified, Staged)> {
    let t = trust();
    let name = |_: &Manifest, p: &PayloadEntry| output_name(p).to_string();
    let ask = Ask {
        bundle_sha256: hash,
        kind: None,
    };
    let done = match dir {
        Some(dir) => {
            let dest = Dir::new(dir, &name, Replace::Never, Hashing::Take);
            verify_bundle(medium, &opts(&t, ids), ask, dest).map(|(v, d)| (v, d.into_staged()))
        }
        None => {
            verify_bundle(medium, &opts(&t, ids), ask, Discard).map(|(v, _)| (v, Staged::default()))
        }
    };
    done.map_err(Error::from)
}

#[test]
fn an_honest_medium_verifies_and_the_bundle_hash_is_of_its_bytes() {
    let b = golden("golden_encrypted_users.airlock.zip");
    let (v, staged) = run(Lying::new(b.clone(), b.clone()), None, None, Hashing::Take).unwrap();
    assert_eq!(
        v.bundle_sha256.unwrap().as_str(),
        hex::encode(Sha256::digest(&b))
    );
    assert!(staged.files.is_empty());
    // Without the hash asked for, none is taken.
    let (v, _) = run(Lying::new(b.clone(), b), None, None, Hashing::Skip).unwrap();
    assert!(v.bundle_sha256.is_none());
}

#[test]
fn payload_bytes_that_differ_on_the_second_read_are_refused_and_nothing_is_left() {
    let b = golden("golden_encrypted_users.airlock.zip");
    let at = find(&b, b"\"users\"") + 20;
    for hash in [Hashing::Skip, Hashing::Take] {
        let dir = tempfile::tempdir().unwrap();
        let err = run(
            Lying::new(b.clone(), flip(b.clone(), at)),
            None,
            Some(dir.path()),
            hash,
        )
        .err()
        .unwrap();
        assert!(
            matches!(err.code, Code::ZipCrc | Code::MemberDigest),
            "{err}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}

#[test]
fn structure_that_differs_on_the_second_read_is_bundle_changed() {
    let b = golden("golden_encrypted_users.airlock.zip");
    let manifest_at = find(&b, b"\"bundle_id\"");
    let header_at = 10; // inside the first local header
    let cd_at = b.len() - 98 - 20; // inside the central directory
    for at in [manifest_at, header_at, cd_at] {
        let err = run(
            Lying::new(b.clone(), flip(b.clone(), at)),
            None,
            None,
            Hashing::Take,
        )
        .err()
        .unwrap();
        assert_eq!(err.code, Code::BundleChanged, "byte {at}: {err}");
    }
    // A second read that finds more bytes after the end.
    let mut longer = b.clone();
    longer.extend_from_slice(b"tail");
    let err = run(Lying::new(b.clone(), longer), None, None, Hashing::Skip)
        .err()
        .unwrap();
    assert_eq!(err.code, Code::BundleChanged, "{err}");
    // A second read that ends early.
    let err = run(
        Lying::new(b.clone(), b[..b.len() - 50].to_vec()),
        None,
        None,
        Hashing::Skip,
    )
    .err()
    .unwrap();
    assert_eq!(err.code, Code::BundleChanged, "{err}");
}

#[test]
fn a_file_whose_time_changes_during_the_run_is_bundle_changed() {
    let b = golden("golden_clear_users.airlock.zip");
    let mut m = Lying::new(b.clone(), b);
    m.restamp = true;
    let dir = tempfile::tempdir().unwrap();
    let err = run(m, None, Some(dir.path()), Hashing::Skip).err().unwrap();
    assert_eq!(err.code, Code::BundleChanged, "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

fn identity() -> (tempfile::TempDir, Identities) {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("id.txt");
    std::fs::copy(root().join("keys/age_identity.txt"), &p).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut ids = Identities::default();
    ids.add_file(&p, &mut || unreachable!()).unwrap();
    (d, ids)
}

#[test]
fn decryption_reads_the_ciphertext_once_and_stages_the_plaintext() {
    let b = golden("golden_enc_x25519.airlock.zip");
    let plain = std::fs::read(root().join("fixtures/usage/ghes-clear-users.json")).unwrap();
    let (_d, ids) = identity();
    let dir = tempfile::tempdir().unwrap();
    let (v, staged) = run(
        Lying::new(b.clone(), b.clone()),
        Some(&ids),
        Some(dir.path()),
        Hashing::Take,
    )
    .unwrap();
    assert!(v.payload[0].decrypted);
    assert_eq!(
        v.payload[0].plaintext_sha256.as_deref().unwrap(),
        hex::encode(Sha256::digest(&plain))
    );
    // Staged, not published: nothing under its own name yet.
    let target = staged.files[0].target.clone();
    assert!(!target.exists());
    assert_eq!(std::fs::read(staged.files[0].path()).unwrap(), plain);
    let written = staged.publish(0o600, Replace::Never).unwrap();
    assert_eq!(written, vec![target.clone()]);
    assert_eq!(std::fs::read(&target).unwrap(), plain);

    // Ciphertext that differs on the second read: refused, nothing left.
    let dir = tempfile::tempdir().unwrap();
    let at = 1000; // inside the ciphertext (1583 bytes from offset 83)
    let err = run(
        Lying::new(b.clone(), flip(b.clone(), at)),
        Some(&ids),
        Some(dir.path()),
        Hashing::Take,
    )
    .err()
    .unwrap();
    assert!(
        matches!(err.code, Code::ZipCrc | Code::MemberDigest),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn encrypted_members_need_an_identity_to_be_written_out() {
    let b = golden("golden_enc_x25519.airlock.zip");
    let dir = tempfile::tempdir().unwrap();
    let err = run(
        Lying::new(b.clone(), b),
        None,
        Some(dir.path()),
        Hashing::Skip,
    )
    .err()
    .unwrap();
    assert_eq!(err.code, Code::DecryptNoIdentity);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn freshness_is_judged_at_the_moment_of_decision() {
    let b = golden("golden_clear_users.airlock.zip");
    let t = trust();
    let mut o = opts(&t, None);
    o.now = Clock::Fixed(humantime::parse_rfc3339("2027-01-01T00:00:00Z").unwrap());
    let err = verify_bundle(Lying::new(b.clone(), b), &o, Ask::default(), Discard)
        .err()
        .unwrap();
    assert_eq!(err.error.code, Code::BundleExpired);
}

#[test]
fn publishing_respects_the_replace_rule() {
    let b = golden("golden_clear_users.airlock.zip");
    let name = |_: &Manifest, p: &PayloadEntry| output_name(p).to_string();
    let t = trust();
    let stage = |dir: &Path| {
        let dest = Dir::new(dir, &name, Replace::IfIdentical, Hashing::Take);
        verify_bundle(
            Lying::new(b.clone(), b.clone()),
            &opts(&t, None),
            Ask::default(),
            dest,
        )
        .unwrap()
        .1
        .into_staged()
    };
    let dir = tempfile::tempdir().unwrap();
    let first = stage(dir.path()).publish(0o644, Replace::Never).unwrap();
    // The same bytes again: fine with IfIdentical, refused with Never.
    assert_eq!(
        stage(dir.path())
            .publish(0o644, Replace::IfIdentical)
            .unwrap(),
        first
    );
    assert_eq!(
        stage(dir.path())
            .publish(0o644, Replace::Never)
            .err()
            .unwrap()
            .code,
        Code::OutputExists
    );
    // Other bytes under the name: refused with IfIdentical.
    std::fs::write(&first[0], b"other").unwrap();
    assert_eq!(
        stage(dir.path())
            .publish(0o644, Replace::IfIdentical)
            .err()
            .unwrap()
            .code,
        Code::OutputExists
    );
    stage(dir.path()).publish(0o644, Replace::Always).unwrap();
    assert_ne!(std::fs::read(&first[0]).unwrap(), b"other");
    // Only the published file is left: no temporary files.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

/// Decision 70: every member is sniffed, whatever its label; a usage
/// file labelled `file` must name the source. Only ciphertext that was
/// not decrypted goes unchecked, and says so.
#[test]
fn every_member_is_checked_against_the_source_whatever_its_label() {
    let t = trust();
    let at = |name: &str, ids| verify(std::io::Cursor::new(golden(name)), &opts(&t, ids));
    let e = at("fail_file_member_other_source.airlock.zip", None).unwrap_err();
    assert_eq!(e.code, Code::PayloadSource, "{e}");
    let v = at("golden_usage_and_file.airlock.zip", None).unwrap();
    assert!(v.payload.iter().all(|p| p.source_checked));
    assert_eq!(v.payload[1].kind, PayloadKind::File);
    assert!(v.payload[1].usage.is_none());
    let v = at("golden_enc_x25519.airlock.zip", None).unwrap();
    assert!(!v.payload[0].source_checked);
    let (_d, ids) = identity();
    let v = at("golden_enc_x25519.airlock.zip", Some(&ids)).unwrap();
    assert!(v.payload[0].source_checked);
}

#[test]
fn a_file_member_is_judged_by_exports_rule() {
    let v = verify(
        std::io::Cursor::new(golden("golden_usage_and_file.airlock.zip")),
        &opts(&trust(), None),
    )
    .unwrap();
    let (m, file) = (&v.manifest, &v.manifest.payload[1]);
    assert!(matches!(validate_file(m, file, Sniff::Other), Ok(None)));
    let e = validate_file(m, file, Sniff::Invalid("broken".into())).unwrap_err();
    assert_eq!(e.code, Code::UsageFileInvalid);
    let own = v.payload[0].usage.clone().unwrap();
    assert!(validate_file(m, file, Sniff::Usage(own.clone())).is_ok());
    let mut theirs = own;
    theirs.server_id = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f".into();
    let e = validate_file(m, file, Sniff::Usage(theirs)).unwrap_err();
    assert_eq!(e.code, Code::PayloadSource);
}
