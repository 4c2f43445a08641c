//! The first day of a new administrator, again (issue #28): each mistake
//! made again, with the code and the message checked (the message carries
//! the fix), and nothing left behind.

mod common;

use std::path::Path;
use std::process::Output;

use common::*;

/// `airlock export license-usage.json --out OUT` with the test key.
fn export_to(d: &Path, out: &Path, media_roots: Option<&Path>) -> Output {
    let k = key(d, "exporter_ed25519");
    let u = sample_usage(d);
    let mut c = airlock();
    c.arg("export")
        .arg(&u)
        .arg("--key")
        .arg(&k)
        .arg("--out")
        .arg(out)
        .arg("--state-dir")
        .arg(d.join("state"));
    if let Some(r) = media_roots {
        c.env("AIRLOCK_TEST_MEDIA_ROOTS", r);
    }
    c.output().unwrap()
}

/// Item 1, as reported: `--out /media/stick` with no stick there exits
/// OUTPUT-DIR and writes nothing, on this host's real /media.
#[test]
fn item01_out_media_stick_unmounted_writes_nothing() {
    let stick = Path::new("/media/stick");
    if stick.exists() {
        eprintln!("item01_out_media_stick_unmounted_writes_nothing: skipped, /media/stick exists on this host");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let o = export_to(d.path(), stick, None);
    let e = failed(&o, "AIRLOCK-E-OUTPUT-DIR", 3);
    assert!(e.contains("is the stick mounted?"), "{e}");
    assert!(!stick.exists(), "wrote /media/stick");
    // No sequence number was used up.
    let seq = d.path().join("state/sequence");
    assert!(!seq.exists() || listing(&seq).is_empty());
}

/// Item 1: a missing `--out` that is not a bundle file name is refused
/// anywhere, and under a media root a directory with nothing mounted on it
/// is refused even though it exists (`--out /media/`).
#[test]
fn item01_out_missing_or_unmounted_is_output_dir() {
    let d = tempfile::tempdir().unwrap();
    let media = d.path().join("media");
    std::fs::create_dir(&media).unwrap();
    // Outside the media roots: a missing name without .zip.
    let o = export_to(d.path(), &d.path().join("stick"), None);
    let e = failed_saying(
        &o,
        "AIRLOCK-E-OUTPUT-DIR",
        3,
        &["does not end in .zip", "is the stick mounted?"],
    );
    assert!(e.contains(".airlock.zip"), "{e}");
    assert!(!d.path().join("stick").exists());
    skip_without_hooks!();
    // Under a media root (the test override): missing, with or without a slash.
    for out in [media.join("stick"), media.join("stick/")] {
        let o = export_to(d.path(), &out, Some(&media));
        let e = failed(&o, "AIRLOCK-E-OUTPUT-DIR", 3);
        assert!(e.contains("is the stick mounted?"), "{e}");
    }
    // The media root itself, and a directory in it, exist but nothing is mounted.
    std::fs::create_dir(media.join("user")).unwrap();
    for out in [
        format!("{}/", media.display()),
        format!("{}/user/", media.display()),
        format!("{}/user/u.airlock.zip", media.display()),
    ] {
        let o = export_to(d.path(), Path::new(&out), Some(&media));
        let e = failed(&o, "AIRLOCK-E-OUTPUT-DIR", 3);
        assert!(e.contains("no file system is mounted there"), "{e}");
        assert!(
            e.contains("is the stick mounted?") && e.contains("lsblk"),
            "{e}"
        );
    }
    assert!(listing(&media).is_empty(), "{:?}", listing(&media));
    // A bundle file name in an existing directory outside the roots is fine.
    let o = export_to(d.path(), &d.path().join("b.airlock.zip"), Some(&media));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Item 1: under a media root, a directory on a mounted file system is
/// used (here /dev/shm, a mount point on most Linux hosts, stands in).
#[test]
fn item01_out_on_a_mounted_file_system_is_used() {
    use std::os::unix::fs::MetadataExt;
    let shm = Path::new("/dev/shm");
    let mounted = match (std::fs::metadata(shm), std::fs::metadata("/dev")) {
        (Ok(a), Ok(b)) => a.dev() != b.dev(),
        _ => false,
    };
    if !mounted {
        eprintln!("item01_out_on_a_mounted_file_system_is_used: skipped, /dev/shm is not a mount point here");
        return;
    }
    skip_without_hooks!();
    let d = tempfile::tempdir().unwrap();
    let stick = tempfile::tempdir_in(shm).unwrap();
    let o = export_to(d.path(), &stick.path().join(""), Some(shm));
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(listing(stick.path()).len(), 1);
}

/// Export the sample usage file signed by `key` at Unix time `t`.
fn export_at(d: &Path, key: &Path, t: u64, out: &Path) {
    let u = d.join("usage.json");
    sample_usage_clear(&u, 5);
    airlock()
        .arg("export")
        .arg(&u)
        .arg("--key")
        .arg(key)
        .arg("--out")
        .arg(out)
        .arg("--state-dir")
        .arg(d.join(format!(
            "state-{}",
            key.file_name().unwrap().to_string_lossy()
        )))
        .env("SOURCE_DATE_EPOCH", t.to_string())
        .arg("--reproducible")
        .assert()
        .success();
}

/// Import `b` into the one importer state, handing over into an outbox of
/// its own: outbox names carry the host and the second only, so two bundles
/// of one second would meet there (a separate matter from the ledger rule).
fn import(d: &Path, allowed: &Path, b: &Path) -> Output {
    airlock()
        .arg("import")
        .arg(b)
        .trust_state(allowed, d.join("importer"))
        .arg("--outbox")
        .arg(d.join("outbox"))
        .env("HOME", d)
        .output()
        .unwrap()
}

/// Item 8: two exports in the same second by one key are ordered by their
/// sequence; from another key, the same second is still not newer.
#[test]
fn item08_same_second_is_ordered_by_the_sequence_of_one_key() {
    let (d, k) = keyed_dir();
    let other = key(d.path(), "retired_ed25519");
    let allowed = trust_keys(
        d.path(),
        "*.example.com",
        &["exporter_ed25519", "retired_ed25519"],
    );
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 60;
    let (b1, b2, b3) = (
        d.path().join("one.airlock.zip"),
        d.path().join("two.airlock.zip"),
        d.path().join("three.airlock.zip"),
    );
    export_at(d.path(), &k, t, &b1);
    export_at(d.path(), &k, t, &b2);
    export_at(d.path(), &other, t, &b3);
    let o = import(d.path(), &allowed, &b1);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = import(d.path(), &allowed, &b2);
    assert!(
        o.status.success(),
        "sequence 2 of the same second: {}",
        stderr(&o)
    );
    // One outbox: the second of the same second replaced the first (same
    // names), which moved into superseded/ before it was published.
    let top: Vec<String> = std::fs::read_dir(d.path().join("outbox"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json"))
        .collect();
    assert_eq!(top.len(), 1, "{top:?}");
    let sup = d.path().join("outbox/superseded");
    assert_eq!(
        std::fs::read_dir(&sup).unwrap().count(),
        2,
        "payload and steps"
    );
    let o = import(d.path(), &allowed, &b3);
    let e = failed(&o, "AIRLOCK-E-LEDGER-OLDER", 10);
    assert!(e.contains("not after"), "{e}");
}

/// Item 9: `keygen`'s default comment is user@host, as ssh-keygen's; a
/// passphrase file others can read is used with a warning naming the fix.
#[test]
fn item09_keygen_comment_and_readable_passphrase_file() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let pass = d.path().join("pass.txt");
    std::fs::write(&pass, "correct horse\n").unwrap();
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o644)).unwrap();
    let k = d.path().join("k");
    let o = airlock()
        .arg("keygen")
        .arg("-f")
        .arg(&k)
        .arg("--passphrase-file")
        .arg(&pass)
        .env("USER", "alice")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let e = stderr(&o);
    assert!(e.contains("has mode 644"), "no warning: {e}");
    assert!(e.contains(&format!("chmod 600 {}", pass.display())), "{e}");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let line = std::fs::read_to_string(d.path().join("k.pub")).unwrap();
    assert!(
        line.trim_end()
            .ends_with(&format!(" alice@{}", host.trim())),
        "{line}"
    );
    // At 0600: no warning; -C still sets the comment.
    std::fs::set_permissions(&pass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = airlock()
        .arg("keygen")
        .arg("-f")
        .arg(d.path().join("k2"))
        .arg("--passphrase-file")
        .arg(&pass)
        .args(["-C", "ops"])
        .output()
        .unwrap();
    assert!(
        o.status.success() && !stderr(&o).contains("mode"),
        "{}",
        stderr(&o)
    );
    let line = std::fs::read_to_string(d.path().join("k2.pub")).unwrap();
    assert!(line.trim_end().ends_with(" ops"), "{line}");
}

/// Item 3: a `.pub` given as `--identity` is named a public key, and the
/// private key beside it is the file to give; no "chmod 600 key.pub".
#[test]
fn item03_public_key_as_identity() {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let k = key(d.path(), "importer_ed25519");
    let pubf = d.path().join("importer_ed25519.pub");
    std::fs::set_permissions(&pubf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let o = airlock()
        .current_dir(root())
        .args([
            "verify",
            "fixtures/bundles/golden_clear_users.airlock.zip",
            "--trust",
            "keys/allowed_signers",
            "--at",
            FIXTURE_TIME,
            "--identity",
        ])
        .arg(&pubf)
        .output()
        .unwrap();
    let e = failed(&o, "AIRLOCK-E-KEY-READ", o.status.code().unwrap_or(-1));
    assert!(e.contains("is a public key (ssh-ed25519"), "{e}");
    assert!(e.contains(&format!("--identity {}", k.display())), "{e}");
    assert!(!e.contains("chmod"), "{e}");
}

/// Item 2: a typo in airlock.toml names the key, the line and the keys
/// allowed, without -v.
#[test]
fn item02_config_typo_names_key_line_and_keys() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("airlock.toml");
    std::fs::write(&c, "# site\ntrust = \"t\"\n\n\nenterprize = \"octo\"\n").unwrap();
    let o = airlock()
        .arg("log")
        .arg("--config")
        .arg(&c)
        .output()
        .unwrap();
    let e = failed(
        &o,
        "AIRLOCK-E-CONFIG-INVALID",
        o.status.code().unwrap_or(-1),
    );
    assert!(e.contains("line 5 (enterprize = \"octo\")"), "{e}");
    assert!(
        e.contains("unknown field `enterprize`, expected one of"),
        "{e}"
    );
    assert!(e.contains("did you mean `enterprise`?"), "{e}");
}

/// Item 6: a browser's second download, `license-usage (1).json`, travels as
/// a payload name (`license-usage_1.json`), the original shown and kept in
/// the exporter's ledger; two files that become the same name are refused.
#[test]
fn item06_ordinary_names_travel_as_payload_names() {
    let (d, k) = keyed_dir();
    let u = d.path().join("license-usage (1).json");
    sample_usage_clear(&u, 5);
    let state = d.path().join("state");
    let o = airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, d.path(), &state)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["payload"][0]["name"], "payload/license-usage_1.json",
        "{v}"
    );
    assert_eq!(v["renamed"][0]["file"], "license-usage (1).json", "{v}");
    assert_eq!(
        v["renamed"][0]["payload_name"], "license-usage_1.json",
        "{v}"
    );
    // The exporter's ledger keeps the original name.
    let exported = ledger(&state)
        .iter()
        .find(|e| e["outcome"] == "exported")
        .unwrap()
        .clone();
    assert!(
        exported["detail"]
            .as_str()
            .unwrap()
            .contains("license-usage (1).json travels as license-usage_1.json"),
        "{exported}"
    );
    // Human output says it too.
    let o = airlock()
        .arg("export")
        .arg(&u)
        .key_out_state(&k, d.path().join("again.airlock.zip"), &state)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("license-usage (1).json: travels as license-usage_1.json"),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
    // Two files that become one payload name: refused, naming both.
    let u2 = d.path().join("license-usage [1].json");
    std::fs::copy(&u, &u2).unwrap();
    let o = airlock()
        .arg("export")
        .arg(&u)
        .arg(&u2)
        .args(["--kind", "file", "--key"])
        .arg(&k)
        .arg("--out")
        .arg(d.path().join("two.airlock.zip"))
        .arg("--state-dir")
        .arg(&state)
        .output()
        .unwrap();
    failed_saying(
        &o,
        "AIRLOCK-E-ARGS",
        2,
        &["license-usage [1].json", "license-usage (1).json"],
    );
    assert!(!d.path().join("two.airlock.zip").exists());
}

/// Regression: a file name too long for a payload name was refused with a
/// hint about allowed characters only; the hint now gives the limit, and a
/// name of exactly that length travels.
#[test]
fn item06_a_name_too_long_is_refused_with_its_limit() {
    let (d, k) = keyed_dir();
    let state = d.path().join("state");
    // payload/ + 120 bytes = 128, the member name's bound (docs/format.md).
    for (len, fits) in [(121, false), (120, true)] {
        let u = d.path().join(format!("{}.json", "a".repeat(len - 5)));
        sample_usage_clear(&u, 5);
        let out = d.path().join(format!("{len}.airlock.zip"));
        let o = airlock()
            .arg("export")
            .arg(&u)
            .args(["--kind", "file"])
            .key_out_state(&k, &out, &state)
            .output()
            .unwrap();
        if fits {
            assert!(o.status.success(), "{}", stderr(&o));
        } else {
            failed_saying(
                &o,
                "AIRLOCK-E-ARGS",
                2,
                &["129 bytes long, more than 128", "at most 120 bytes"],
            );
            assert!(!out.exists());
        }
    }
}
