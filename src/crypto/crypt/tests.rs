use super::*;
use std::io::Write;

fn encrypt(r: &Recipients, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut w = r.encryptor().unwrap().wrap_output(&mut out).unwrap();
    w.write_all(data).unwrap();
    w.finish().unwrap();
    out
}

#[test]
fn x25519_round_trip_and_header_check() {
    let (text, recipient) = generate_identity("2026-11-28T00:00:00Z");
    let mut rs = Recipients::default();
    rs.add(&recipient).unwrap();
    rs.add(&recipient).unwrap(); // duplicates collapse
    assert_eq!(rs.listed.len(), 1);
    let ct = encrypt(&rs, b"secret usage");
    let st = header_stanzas(&ct[..]).unwrap();
    check_header(&st, &rs.listed).unwrap();

    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("id.txt");
    std::fs::write(&p, text.as_bytes()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut ids = Identities::default();
    ids.add_file(&p, &mut || unreachable!()).unwrap();
    let mut pt = Vec::new();
    ids.decrypt(&ct[..], SCRYPT_MAX_WORK_FACTOR)
        .unwrap()
        .read_to_end(&mut pt)
        .unwrap();
    assert_eq!(pt, b"secret usage");

    // Two stanzas against one listed recipient: refused.
    let mut two = Recipients::default();
    two.add(&recipient).unwrap();
    two.add(&generate_identity("x").1).unwrap();
    let ct2 = encrypt(&two, b"x");
    assert!(check_header(&header_stanzas(&ct2[..]).unwrap(), &rs.listed).is_err());
}

#[test]
fn passphrase_cannot_mix_and_truncation_is_detected() {
    let mut rs = Recipients::default();
    rs.set_passphrase("pw", 10).unwrap();
    assert!(rs.add(&generate_identity("x").1).is_err());
    let ct = encrypt(&rs, &vec![7u8; 200_000]);
    check_header(&header_stanzas(&ct[..]).unwrap(), &rs.listed).unwrap();
    let mut ids = Identities::default();
    ids.set_passphrase("pw");
    let mut pt = Vec::new();
    let err = ids
        .decrypt(&ct[..ct.len() - 10], 20)
        .unwrap()
        .read_to_end(&mut pt)
        .unwrap_err();
    assert!(
        matches!(
            err.kind(),
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
        ),
        "{err:?}"
    );
    let mut wrong = Identities::default();
    wrong.set_passphrase("nope");
    assert_eq!(
        wrong.decrypt(&ct[..], 20).err().unwrap().code,
        Code::DecryptFailed
    );
    // The cap on the work factor holds.
    let mut capped = Identities::default();
    capped.set_passphrase("pw");
    assert_eq!(
        capped.decrypt(&ct[..], 9).err().unwrap().code,
        Code::DecryptFailed
    );
}

fn write_private(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

#[test]
fn hybrid_recipients_listing_mixing_and_header_check() {
    let (pq_text, pq) = generate_hybrid_identity("2026-11-28T00:00:00Z");
    assert!(pq.starts_with("age1pq1") && pq.len() == 1959);
    let mut rs = Recipients::default();
    rs.add(&pq).unwrap();
    rs.add(&pq.to_ascii_uppercase()).unwrap(); // the same key, listed once
    assert_eq!(rs.listed.len(), 1);
    assert_eq!(rs.listed[0], ListedRecipient::MlKem768X25519(pq.clone()));
    // age's rule: no classical recipient beside a post-quantum one, either order.
    let (_, x) = generate_identity("x");
    let e = rs.add(&x).unwrap_err();
    assert_eq!(e.code, Code::Args);
    assert!(e.cause.contains("cannot be"), "{}", e.cause);
    let mut classical = Recipients::default();
    classical.add(&x).unwrap();
    assert_eq!(classical.add(&pq).unwrap_err().code, Code::Args);
    let mut pass = Recipients::default();
    pass.set_passphrase("pw", 10).unwrap();
    assert_eq!(pass.add(&pq).unwrap_err().code, Code::Args);
    assert!(rs.set_passphrase("pw", 10).is_err());
    // A damaged recipient is named briefly, not printed whole.
    let mut broken = pq.clone();
    broken.truncate(1000);
    let e = Recipients::default().add(&broken).unwrap_err();
    assert!(e.cause.len() < 200, "{}", e.cause);

    let ct = encrypt(&rs, b"secret usage");
    let st = header_stanzas(&ct[..]).unwrap();
    check_header(&st, &rs.listed).unwrap();
    // The stanza count is checked against the signed list.
    let mut two = Recipients::default();
    two.add(&pq).unwrap();
    two.add(&generate_hybrid_identity("x").1).unwrap();
    let ct2 = encrypt(&two, b"x");
    assert!(check_header(&header_stanzas(&ct2[..]).unwrap(), &rs.listed).is_err());
    check_header(&header_stanzas(&ct2[..]).unwrap(), &two.listed).unwrap();
    // An X25519 header against a signed hybrid list, and the reverse.
    let ctx = encrypt(&classical, b"x");
    assert!(check_header(&header_stanzas(&ctx[..]).unwrap(), &rs.listed).is_err());
    assert!(check_header(&st, &classical.listed).is_err());

    // The identity file made by keygen decrypts; an X25519 one does not,
    // and the hint says why.
    let d = tempfile::tempdir().unwrap();
    let p = write_private(d.path(), "pq.txt", &pq_text);
    let mut ids = Identities::default();
    ids.add_file(&p, &mut || unreachable!()).unwrap();
    let mut pt = Vec::new();
    ids.decrypt(&ct[..], SCRYPT_MAX_WORK_FACTOR)
        .unwrap()
        .read_to_end(&mut pt)
        .unwrap();
    assert_eq!(pt, b"secret usage");
    assert_eq!(ids.no_match_hint(&rs.listed), None);
    let (x_text, _) = generate_identity("x");
    let xp = write_private(d.path(), "x.txt", &x_text);
    let mut xids = Identities::default();
    xids.add_file(&xp, &mut || unreachable!()).unwrap();
    assert_eq!(
        xids.decrypt(&ct[..], SCRYPT_MAX_WORK_FACTOR)
            .err()
            .unwrap()
            .code,
        Code::DecryptNoIdentity
    );
    assert!(xids
        .no_match_hint(&rs.listed)
        .unwrap()
        .contains("AGE-SECRET-KEY-PQ-1"));
    assert_eq!(xids.no_match_hint(&classical.listed), None);
}

#[test]
fn identity_files_with_hybrid_and_x25519_lines() {
    let d = tempfile::tempdir().unwrap();
    let (pq_text, pq) = generate_hybrid_identity("x");
    let (x_text, x) = generate_identity("x");
    let both = write_private(d.path(), "both.txt", &format!("{}{}", *pq_text, *x_text));
    let mut ids = Identities::default();
    ids.add_file(&both, &mut || unreachable!()).unwrap();
    for r in [&pq, &x] {
        let mut rs = Recipients::default();
        rs.add(r).unwrap();
        let mut pt = Vec::new();
        ids.decrypt(&encrypt(&rs, b"both")[..], SCRYPT_MAX_WORK_FACTOR)
            .unwrap()
            .read_to_end(&mut pt)
            .unwrap();
        assert_eq!(pt, b"both");
    }
    // A damaged hybrid line is refused with its line number; so is a
    // file that holds nothing.
    let mut lines: Vec<String> = pq_text.lines().map(String::from).collect();
    let last = lines.pop().unwrap();
    lines.push(last[..last.len() - 1].to_string());
    let bad = write_private(d.path(), "bad.txt", &lines.join("\n"));
    let e = Identities::default()
        .add_file(&bad, &mut || unreachable!())
        .unwrap_err();
    assert_eq!(e.code, Code::KeyRead);
    assert!(e.cause.contains("line 3"), "{}", e.cause);
    let empty = write_private(d.path(), "empty.txt", "# nothing\n");
    assert_eq!(
        Identities::default()
            .add_file(&empty, &mut || unreachable!())
            .unwrap_err()
            .code,
        Code::KeyRead
    );
}

/// Regression (issue 28, first day 3): a `.pub` given as identity was
/// first told "chmod 600 key.pub", then "not an age identity file".
#[test]
fn a_public_key_as_identity_says_so_before_its_mode() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let private = write_private(d.path(), "id_ed25519", "not read\n");
    let pubf = d.path().join("id_ed25519.pub");
    std::fs::write(&pubf, "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHx me@host\n").unwrap();
    std::fs::set_permissions(&pubf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Identities::default()
        .add_file(&pubf, &mut || unreachable!())
        .unwrap_err();
    assert_eq!(e.code, Code::KeyRead);
    assert!(
        e.cause.contains("is a public key (ssh-ed25519"),
        "{}",
        e.cause
    );
    let hint = e.hint.unwrap_or_default();
    assert!(
        hint.contains(&format!("--identity {}", private.display())),
        "{hint}"
    );
    assert!(!hint.contains("chmod"), "{hint}");
    let rec = d.path().join("recipient.txt");
    std::fs::write(
        &rec,
        "# public key\nage1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p\n",
    )
    .unwrap();
    std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Identities::default()
        .add_file(&rec, &mut || unreachable!())
        .unwrap_err();
    assert!(e.cause.contains("holds an age recipient"), "{}", e.cause);
    assert!(e.hint.unwrap_or_default().contains("AGE-SECRET-KEY-1"));
}
