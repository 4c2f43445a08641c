//! Differential test of the trust files against OpenSSH: for each of a corpus
//! of allowed_signers and revoked-keys files, airlock's verdict on one fresh
//! bundle is compared with
//!
//!     TZ=UTC ssh-keygen -Y verify -f ALLOWED -I HOST -n airlock-bundle \
//!         -s SIG [-r REVOKED] -Overify-time=CREATED < manifest.json
//!
//! The rule (docs/format.md §6.1): airlock accepts ⇒ ssh-keygen accepts;
//! ssh-keygen refuses ⇒ airlock refuses; airlock refuses more only with
//! AIRLOCK-E-TRUST-FILE, and only in the cases marked `Stricter` here. Every
//! other case must agree exactly.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use base64::Engine;
use common::*;
use ed25519_dalek::{Signer, SigningKey};

const HOST: &str = airlock::sample::SAMPLE_HOST;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Both accept.
    Accept,
    /// Both refuse.
    Refuse,
    /// ssh-keygen accepts; airlock refuses the file (AIRLOCK-E-TRUST-FILE).
    Stricter,
}
use Expect::*;

struct Case {
    name: String,
    allowed: Vec<u8>,
    revoked: Option<Vec<u8>>,
    expect: Expect,
}

/// `YYYYMMDDHHMMSS` for ssh-keygen, with a suffix (`Z`, `z`, `UTC`, or none).
fn ssh_time(t: SystemTime, suffix: &str) -> String {
    let s = humantime::format_rfc3339_seconds(t).to_string();
    let digits: String = s.chars().filter(|c| c.is_ascii_digit()).collect();
    format!("{digits}{suffix}")
}

fn keygen(dir: &Path, args: &[&str]) -> std::process::Output {
    let out = tool("ssh-keygen")
        .args(args)
        .current_dir(dir)
        .env("TZ", "UTC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A binary KRL made by `ssh-keygen -k` from `inputs` (public key files or
/// KRL specification files, written into `dir`).
fn krl(dir: &Path, name: &str, extra: &[&str], inputs: &[(&str, String)]) -> Vec<u8> {
    let mut args = vec!["-k", "-f", name];
    args.extend_from_slice(extra);
    for (f, text) in inputs {
        std::fs::write(dir.join(f), text).unwrap();
        args.push(f);
    }
    keygen(dir, &args);
    std::fs::read(dir.join(name)).unwrap()
}

fn string(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

/// A KRL revoking `blob` explicitly and signed by an Ed25519 key, made by
/// hand (`ssh-keygen -k` cannot sign KRLs); `corrupt` flips a signature bit.
fn signed_krl(blob: &[u8], corrupt: bool) -> Vec<u8> {
    let sk = SigningKey::from_bytes(&[42; 32]);
    let signer = airlock::sshsig::PublicKey::ed25519(sk.verifying_key().to_bytes());
    let mut v = b"SSHKRL\n\0".to_vec();
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(&[0; 24]);
    v.extend(string(b""));
    v.extend(string(b"hand-made"));
    v.push(2);
    v.extend(string(&string(blob)));
    v.push(4);
    v.extend(string(&signer.blob()));
    let mut sig = sk.sign(&v).to_bytes();
    if corrupt {
        sig[10] ^= 1;
    }
    let mut sigblob = string(b"ssh-ed25519");
    sigblob.extend(string(&sig));
    v.extend(string(&sigblob));
    v
}

struct World {
    dir: PathBuf,
    bundle: PathBuf,
    manifest: PathBuf,
    sig: PathBuf,
    created: SystemTime,
    created_text: String,
}

fn world(dir: &Path) -> World {
    let exporter = key(dir, "exporter_ed25519");
    let usage = sample_usage(dir);
    let bundle = export(dir, &exporter, &[&usage], &dir.join("b.airlock.zip"), &[]);
    let manifest_bytes = unzip_member(&bundle, "manifest.json");
    let manifest = dir.join("manifest.json");
    std::fs::write(&manifest, &manifest_bytes).unwrap();
    let sig = dir.join("manifest.sig");
    std::fs::write(&sig, unzip_member(&bundle, &sig_member(&bundle))).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest_bytes).unwrap();
    let created_text = m["created"].as_str().unwrap().to_string();
    assert_eq!(m["source"]["host_name"], HOST);
    World {
        dir: dir.to_path_buf(),
        bundle,
        manifest,
        sig,
        created: humantime::parse_rfc3339(&created_text).unwrap(),
        created_text,
    }
}

/// airlock's verdict: `Ok(())` or the error code.
fn airlock_verdict(w: &World, allowed: &Path, revoked: Option<&Path>) -> Result<(), String> {
    let mut c = airlock();
    c.arg("verify")
        .arg(&w.bundle)
        .arg("--trust")
        .arg(allowed)
        .arg("--at")
        .arg(&w.created_text);
    if let Some(r) = revoked {
        c.arg("--revoked").arg(r);
    }
    let out = c.output().unwrap();
    if out.status.success() {
        return Ok(());
    }
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    let code = err
        .find("AIRLOCK-E-")
        .map(|i| {
            err[i..]
                .chars()
                .take_while(|c| c.is_ascii_uppercase() || *c == '-')
                .collect::<String>()
        })
        .unwrap_or_else(|| format!("no code in {err:?}"));
    Err(format!("{code}: {}", err.trim()))
}

fn ssh_keygen_accepts(w: &World, allowed: &Path, revoked: Option<&Path>) -> bool {
    let mut c = tool("ssh-keygen");
    c.args(["-Y", "verify", "-f"])
        .arg(allowed)
        .args(["-I", HOST, "-n", "airlock-bundle", "-s"])
        .arg(&w.sig)
        .env("TZ", "UTC")
        .stdin(std::fs::File::open(&w.manifest).unwrap())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(r) = revoked {
        c.arg("-r").arg(r);
    }
    c.arg(format!("-Overify-time={}", ssh_time(w.created, "")));
    c.status().unwrap().success()
}

fn corpus(w: &World) -> Vec<Case> {
    let d = &w.dir;
    let k = read_pub(&d.join("exporter_ed25519.pub"));
    let k = k.split(' ').take(2).collect::<Vec<_>>().join(" ");
    let b64 = k.split(' ').nth(1).unwrap().to_string();
    let outsider = read_pub(&root().join("keys/outsider_ed25519.pub"));
    std::fs::write(d.join("outsider.pub"), format!("{outsider}\n")).unwrap();
    let rsa = read_pub(&ssh_keygen_rsa(d, "rsa"));
    let ecdsa = read_pub(&ssh_keygen_typed(d, "ecdsa", "ecdsa"));
    let ours = format!("{HOST} {k}\n");
    let day = Duration::from_secs(86400);
    let (c, past, future) = (w.created, w.created - day, w.created + day);
    let year = ssh_time(c, "")[..4].parse::<u32>().unwrap();
    let fp =
        String::from_utf8(keygen(d, &["-l", "-E", "sha256", "-f", "exporter_ed25519.pub"]).stdout)
            .unwrap();
    let fp = fp.split_whitespace().nth(1).unwrap().to_string();
    let ofp =
        String::from_utf8(keygen(d, &["-l", "-E", "sha256", "-f", "outsider.pub"]).stdout).unwrap();
    let ofp = ofp.split_whitespace().nth(1).unwrap().to_string();
    let blob = base64::engine::general_purpose::STANDARD
        .decode(&b64)
        .unwrap();
    let outsider_blob = base64::engine::general_purpose::STANDARD
        .decode(outsider.split(' ').nth(1).unwrap())
        .unwrap();

    let mut cases = Vec::new();
    let mut allowed = |name: &str, text: String, expect: Expect| {
        cases.push(Case {
            name: name.into(),
            allowed: text.into_bytes(),
            revoked: None,
            expect,
        })
    };
    // Plain lines, namespaces.
    allowed("plain", ours.clone(), Accept);
    allowed(
        "namespaces",
        format!("{HOST} namespaces=\"airlock-bundle\" {k}\n"),
        Accept,
    );
    allowed(
        "namespaces negated",
        format!("{HOST} namespaces=\"!airlock-bundle,*\" {k}\n"),
        Refuse,
    );
    allowed(
        "namespaces other negated",
        format!("{HOST} namespaces=\"!file,*\" {k}\n"),
        Accept,
    );
    allowed(
        "namespaces space after comma",
        format!("{HOST} namespaces=\"file, airlock-bundle\" {k}\n"),
        Refuse,
    );
    allowed(
        "namespaces list",
        format!("{HOST} namespaces=\"file,airlock-bundle\" {k}\n"),
        Accept,
    );
    allowed(
        "namespaces wildcard",
        format!("{HOST} namespaces=\"airlock-*\" {k}\n"),
        Accept,
    );
    allowed(
        "namespaces case",
        format!("{HOST} namespaces=\"Airlock-Bundle\" {k}\n"),
        Refuse,
    );
    allowed(
        "namespaces other only",
        format!("{HOST} namespaces=\"file\" {k}\n"),
        Refuse,
    );
    allowed(
        "namespaces empty",
        format!("{HOST} namespaces=\"\" {k}\n"),
        Refuse,
    );
    allowed(
        "namespaces unquoted",
        format!("{HOST} namespaces=airlock-bundle {k}\n"),
        Refuse,
    );
    allowed(
        "namespaces escaped quote",
        format!("{HOST} namespaces=\"x\\\"y,airlock-bundle\" {k}\n"),
        Accept,
    );
    allowed(
        "namespaces duplicated",
        format!("{HOST} namespaces=\"file\",namespaces=\"airlock-bundle\" {k}\n"),
        Refuse,
    );
    allowed(
        "option name case",
        format!("{HOST} NAMESPACES=\"airlock-bundle\" {k}\n"),
        Accept,
    );
    allowed(
        "unknown option",
        format!("{HOST} bogus=\"1\" {k}\n"),
        Refuse,
    );
    allowed(
        "options space separated",
        format!(
            "{HOST} namespaces=\"airlock-bundle\" valid-after=\"{}\" {k}\n",
            ssh_time(past, "Z")
        ),
        Refuse,
    );
    allowed(
        "options space separated, then good line",
        format!(
            "{HOST} namespaces=\"airlock-bundle\" valid-after=\"{}\" {k}\n{ours}",
            ssh_time(past, "Z")
        ),
        Stricter,
    );
    allowed(
        "options leading comma",
        format!("{HOST} ,namespaces=\"airlock-bundle\" {k}\n"),
        Stricter,
    );
    allowed(
        "options double comma",
        format!(
            "{HOST} namespaces=\"airlock-bundle\",,valid-after=\"{}\" {k}\n",
            ssh_time(past, "Z")
        ),
        Stricter,
    );
    allowed(
        "options trailing comma",
        format!("{HOST} namespaces=\"airlock-bundle\", {k}\n"),
        Refuse,
    );
    allowed(
        "options after the key",
        format!("{HOST} {k} namespaces=\"file\"\n"),
        Stricter,
    );
    // Principals.
    allowed(
        "principals space after comma",
        format!("other.example.com, {HOST} {k}\n"),
        Refuse,
    );
    allowed(
        "principals quoted space after comma",
        format!("\"other.example.com, {HOST}\" {k}\n"),
        Refuse,
    );
    allowed(
        "principals list",
        format!("other.example.com,{HOST} {k}\n"),
        Accept,
    );
    allowed(
        "principals quoted list",
        format!("\"other.example.com,{HOST}\" {k}\n"),
        Accept,
    );
    allowed(
        "principals partly quoted",
        format!("other.example.com,\"{HOST}\" {k}\n"),
        Accept,
    );
    allowed(
        "principals trailing comma",
        format!("{HOST}, {k}\n"),
        Accept,
    );
    allowed(
        "principals trailing comma, tab",
        format!("{HOST},\t{k}\n"),
        Accept,
    );
    allowed("principals negated", format!("!{HOST},* {k}\n"), Refuse);
    allowed(
        "principals negated other",
        format!("*,!other.example.com {k}\n"),
        Accept,
    );
    allowed(
        "principals wildcard",
        format!("*.example.com {k}\n"),
        Accept,
    );
    allowed(
        "principals question mark",
        format!("ghes.example.co? {k}\n"),
        Accept,
    );
    allowed(
        "principals case",
        format!("{} {k}\n", HOST.to_uppercase()),
        Refuse,
    );
    allowed(
        "principals other host",
        format!("other.example.com {k}\n"),
        Refuse,
    );
    allowed(
        "principals quote then key",
        format!("\"{HOST}\"{k}\n"),
        Stricter,
    );
    allowed("no principals", format!("{k} exporter\n"), Refuse);
    allowed(
        "no principals, then good line",
        format!("{k} exporter\n{ours}"),
        Stricter,
    );
    // Layout, encoding.
    allowed(
        "CRLF",
        format!("# trust\r\n\r\n{HOST} namespaces=\"airlock-bundle\" {k} c\r\n"),
        Accept,
    );
    allowed("CRLF no comment", format!("{HOST} {k}\r\n"), Accept);
    allowed("BOM", format!("\u{feff}{ours}"), Refuse);
    allowed(
        "BOM on a comment line",
        format!("\u{feff}# trust\n{ours}"),
        Stricter,
    );
    allowed(
        "comments blanks tabs",
        format!("# trust\n\n   \n\t# x\n  {HOST}\t\t{k}\tcomment here\n"),
        Accept,
    );
    allowed(
        "control character in comment",
        format!("{HOST} {k} \x1b[31mred\n"),
        Stricter,
    );
    allowed("NUL in a comment line", format!("# a\0b\n{ours}"), Stricter);
    allowed("empty file", String::new(), Refuse);
    allowed(
        "garbage line before",
        format!("this is not a line\n{ours}"),
        Stricter,
    );
    allowed(
        "garbage line after",
        format!("{ours}{HOST} ssh-ed25519 AAAA\n"),
        Stricter,
    );
    allowed(
        "key type in capitals",
        format!("{HOST} SSH-ED25519 {b64}\n"),
        Refuse,
    );
    allowed(
        "short key type name",
        format!("{HOST} ED25519 {b64}\n"),
        Refuse,
    );
    allowed(
        "corrupted key",
        format!("{HOST} ssh-ed25519 {}\n", b64.replace('A', "B")),
        Refuse,
    );
    // Key types, cert-authority.
    allowed(
        "cert-authority only",
        format!("{HOST} cert-authority {k}\n"),
        Refuse,
    );
    allowed(
        "cert-authority and plain",
        format!("* cert-authority {k}\n{ours}"),
        Accept,
    );
    allowed(
        "other key types and ours",
        format!("{HOST} {rsa}\n{HOST} {ecdsa}\n{ours}"),
        Accept,
    );
    allowed(
        "other key types only",
        format!("{HOST} {rsa}\n{HOST} {ecdsa}\n"),
        Refuse,
    );
    allowed(
        "another ed25519 key",
        format!("{HOST} {outsider}\n"),
        Refuse,
    );
    // Validity windows.
    allowed(
        "valid-after past",
        format!("{HOST} valid-after=\"{}\" {k}\n", ssh_time(past, "Z")),
        Accept,
    );
    allowed(
        "valid-after future",
        format!("{HOST} valid-after=\"{}\" {k}\n", ssh_time(future, "Z")),
        Refuse,
    );
    allowed(
        "valid-before past",
        format!("{HOST} valid-before=\"{}\" {k}\n", ssh_time(past, "Z")),
        Refuse,
    );
    allowed(
        "window around",
        format!(
            "{HOST} valid-after=\"{}\",valid-before=\"{}\" {k}\n",
            ssh_time(past, "z"),
            ssh_time(future, "UTC")
        ),
        Accept,
    );
    allowed(
        "window inclusive",
        format!(
            "{HOST} valid-after=\"{}\",valid-before=\"{}\" {k}\n",
            ssh_time(c, "Z"),
            ssh_time(c + Duration::from_secs(1), "")
        ),
        Accept,
    );
    allowed(
        "valid-before at created",
        format!("{HOST} valid-before=\"{}\" {k}\n", ssh_time(c, "")),
        Accept,
    );
    allowed(
        "valid-after day precision",
        format!("{HOST} valid-after=\"{}\" {k}\n", &ssh_time(past, "")[..8]),
        Accept,
    );
    allowed(
        "window reversed",
        format!(
            "{HOST} valid-after=\"{}\",valid-before=\"{}\" {k}\n",
            ssh_time(future, "Z"),
            ssh_time(past, "Z")
        ),
        Refuse,
    );
    allowed(
        "valid-after duplicated",
        format!(
            "{HOST} valid-after=\"{0}\",valid-after=\"{0}\" {k}\n",
            ssh_time(past, "Z")
        ),
        Refuse,
    );
    allowed(
        "valid-after dashed",
        format!("{HOST} valid-after=\"{}-01-01\" {k}\n", year - 1),
        Refuse,
    );
    allowed(
        "valid-after 30 February",
        format!("{HOST} valid-after=\"{}0230\" {k}\n", year - 1),
        Stricter,
    );
    allowed(
        "valid-after epoch",
        format!("{HOST} valid-after=\"19700101Z\" {k}\n"),
        Refuse,
    );
    allowed(
        "two lines, one in window",
        format!(
            "{HOST} valid-before=\"{}\" {k}\n{HOST} valid-after=\"{}\" {k}\n",
            ssh_time(past, "Z"),
            ssh_time(past, "Z")
        ),
        Accept,
    );

    // Revoked-keys files, with the plain allowed_signers line.
    let mut revoked = |name: &str, r: Vec<u8>, expect: Expect| {
        cases.push(Case {
            name: format!("revoked: {name}"),
            allowed: ours.clone().into_bytes(),
            revoked: Some(r),
            expect,
        })
    };
    revoked("our key", format!("{k} exporter\n").into_bytes(), Refuse);
    revoked(
        "our key CRLF",
        format!("# r\r\n{k}\r\n").into_bytes(),
        Refuse,
    );
    revoked(
        "another key",
        format!("# r\n\n{outsider}\n").into_bytes(),
        Accept,
    );
    revoked(
        "other key types",
        format!("{rsa}\n{ecdsa}\n  {outsider}\n").into_bytes(),
        Accept,
    );
    revoked("empty", Vec::new(), Accept);
    revoked("comments only", b"# nothing\n\n   \n".to_vec(), Accept);
    revoked(
        "allowed_signers line for our key",
        format!("{HOST} {k}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "allowed_signers line for another key",
        format!("{HOST} {outsider}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "options",
        format!("namespaces=\"x\" {outsider}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "key type in capitals",
        format!("SSH-ED25519 {b64}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "KRL spec hash",
        format!("hash: {fp}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "KRL spec of another key",
        format!("hash: {ofp}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "KRL spec key",
        format!("key: {outsider}\n").into_bytes(),
        Refuse,
    );
    revoked(
        "blank CRLF line",
        format!("{outsider}\r\n\r\n").into_bytes(),
        Refuse,
    );
    revoked("BOM", format!("\u{feff}{outsider}\n").into_bytes(), Refuse);
    revoked(
        "bad line after another key",
        format!("{outsider}\nnot a key\n").into_bytes(),
        Refuse,
    );
    revoked(
        "corrupted key",
        format!("ssh-ed25519 {}\n", b64.replace('A', "B")).into_bytes(),
        Refuse,
    );
    revoked(
        "comment with control character",
        format!("{outsider} \x1b[31m\n").into_bytes(),
        Stricter,
    );
    revoked(
        "KRL by key",
        krl(d, "krl-key", &[], &[("k.pub", format!("{k}\n"))]),
        Refuse,
    );
    revoked(
        "KRL of another key",
        krl(
            d,
            "krl-other",
            &["-z", "7"],
            &[("o.pub", format!("{outsider}\n"))],
        ),
        Accept,
    );
    revoked(
        "KRL by sha256",
        krl(
            d,
            "krl-sha256",
            &[],
            &[("spec-sha256", format!("hash: {fp}\n"))],
        ),
        Refuse,
    );
    revoked(
        "KRL by sha1",
        krl(d, "krl-sha1", &[], &[("spec-sha1", format!("sha1: {k}\n"))]),
        Refuse,
    );
    revoked(
        "KRL by key spec",
        krl(
            d,
            "krl-keyspec",
            &[],
            &[("spec-key", format!("key: {k}\n"))],
        ),
        Refuse,
    );
    revoked("KRL empty", krl(d, "krl-empty", &[], &[]), Accept);
    revoked(
        "KRL of certificates",
        krl(
            d,
            "krl-certs",
            &["-s", "ecdsa.pub"],
            &[(
                "spec-certs",
                "serial: 1-10\nserial: 20\nid: someone\n".into(),
            )],
        ),
        Accept,
    );
    revoked(
        "KRL mixed",
        krl(
            d,
            "krl-mixed",
            &[],
            &[
                ("m.pub", format!("{outsider}\n{rsa}\n")),
                ("spec-mixed", format!("hash: {fp}\n")),
            ],
        ),
        Refuse,
    );
    let mut truncated = krl(d, "krl-trunc", &[], &[("t.pub", format!("{outsider}\n"))]);
    truncated.pop();
    revoked("KRL truncated", truncated, Refuse);
    revoked("KRL signed", signed_krl(&outsider_blob, false), Accept);
    revoked(
        "KRL signed, revoking ours",
        signed_krl(&blob, false),
        Refuse,
    );
    revoked(
        "KRL bad signature",
        signed_krl(&outsider_blob, true),
        Refuse,
    );
    cases
}

fn ssh_keygen_typed(dir: &Path, t: &str, name: &str) -> PathBuf {
    keygen(dir, &["-q", "-t", t, "-N", "", "-C", name, "-f", name]);
    dir.join(format!("{name}.pub"))
}

fn ssh_keygen_rsa(dir: &Path, name: &str) -> PathBuf {
    keygen(
        dir,
        &[
            "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", name, "-f", name,
        ],
    );
    dir.join(format!("{name}.pub"))
}

#[test]
fn airlock_reads_trust_files_as_ssh_keygen_does_or_refuses_them() {
    let d = tempfile::tempdir().unwrap();
    let w = world(d.path());
    let cases = corpus(&w);
    let (mut agree, mut stricter, mut failures) = (0, 0, Vec::new());
    // Distinct trust files (an allowed_signers text and a revoked text count
    // separately).
    let mut files = std::collections::HashSet::new();
    for (i, c) in cases.iter().enumerate() {
        let allowed = d.path().join(format!("allowed-{i}"));
        std::fs::write(&allowed, &c.allowed).unwrap();
        files.insert((false, c.allowed.clone()));
        let revoked = c.revoked.as_ref().map(|r| {
            let p = d.path().join(format!("revoked-{i}"));
            std::fs::write(&p, r).unwrap();
            files.insert((true, r.clone()));
            p
        });
        let theirs = ssh_keygen_accepts(&w, &allowed, revoked.as_deref());
        let ours = airlock_verdict(&w, &allowed, revoked.as_deref());
        // The safety rule first, whatever the expectation.
        if ours.is_ok() && !theirs {
            failures.push(format!("{}: airlock accepts, ssh-keygen refuses", c.name));
            continue;
        }
        let got = match (&ours, theirs) {
            (Ok(()), true) => Accept,
            (Err(_), false) => Refuse,
            (Err(e), true) if e.starts_with("AIRLOCK-E-TRUST-FILE") => Stricter,
            (Err(e), true) => {
                failures.push(format!(
                    "{}: ssh-keygen accepts, airlock refuses without TRUST-FILE: {e}",
                    c.name
                ));
                continue;
            }
            (Ok(()), false) => unreachable!(),
        };
        if got != c.expect {
            failures.push(format!(
                "{}: expected {:?}, got {got:?} (airlock: {ours:?}, ssh-keygen accepts: {theirs})",
                c.name, c.expect
            ));
        }
        match got {
            Stricter => stricter += 1,
            _ => agree += 1,
        }
    }
    println!(
        "trust differential: {} cases, {} distinct trust files; {agree} agree exactly, {stricter} stricter (airlock AIRLOCK-E-TRUST-FILE, ssh-keygen accepts)",
        cases.len(),
        files.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(files.len() >= 40, "only {} trust files", files.len());
    assert!(agree >= 3 * stricter, "mostly exact agreement expected");
}
