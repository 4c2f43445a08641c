//! Regression tests for the trust-file findings: each mirrors a behaviour of
//! OpenSSH 9.2 observed with ssh-keygen (tests/trust_differential.rs runs the
//! real ssh-keygen against the same kinds of file).

use super::*;
use base64::Engine;
use ed25519_dalek::SigningKey;

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGPg8IMR1VjX9Rt8+Lsyp8HtW9pRbwx3u8rVpw4vSGjW";

const RSA1024: &str = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDBS2hZdfKgZGJxVrl6c+DgNAK8OQTqJFPmiPHMOBjzLfo/1Mq2setdy/eLnssB+ZH7N6BJuvS1o37Lmgt0Gd0YXj/uv2vhxWvDf6iIi8hmqzw6CjhBDbs+JlhR1nhQFTnxQNc2l5BXovKWVflGJGVNg7Z+IPosrbQFetFtmwRuxQ==";
const P256: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBD53sZD17x0xV7xV/IrmwtadK4gUbIY4YHly7kzc6mTTZYRv8Lx5cklQjtelZfxIiEZXN2MZk0ZMQ2JlUajKOBo=";
const P384: &str = "ecdsa-sha2-nistp384 AAAAE2VjZHNhLXNoYTItbmlzdHAzODQAAAAIbmlzdHAzODQAAABhBEz+QwWDfHoifpLaVr9w3AuTrdWYW0wJwcNiPbm/kSsoHW8J5ocXxfuj9O5kTKQBjf1+Tz+OZzYrJmOZ9eqimtKv7w3HGS5p9X6AGk4JpLM/DM9Pxsgy5lxSAERXWIjlYg==";
const P521: &str = "ecdsa-sha2-nistp521 AAAAE2VjZHNhLXNoYTItbmlzdHA1MjEAAAAIbmlzdHA1MjEAAACFBAA0SkLpX0lOVbbR0Xm1CFezuOWurJYxPURXliSaXnE95vZhppnuXr8LeJfV6rG2hldLpY3qeomGb7wdixBRoTiklABcZBmH3ejM9vvM9gJ6DFlSSrrx/f4My755R6gLEdxWVJU7Dz53Jmvs+6nuR+LOwXyq2lP75j3Xf7xLZpsrQ0zy4w==";
const DSA: &str = "ssh-dss AAAAB3NzaC1kc3MAAACBAINXT95buAR8UmalmEOPGrIwIrbsFpIfWISjbPbaZ2a4UOHl+rAmUTkBSExnph2eucXyLwXEhTkz6rjQmvyGDS9j8jri8gCut8xdPIkmads9LkGzPxC5i1sFdaAc3wU/lFZAjSN+iEtxNkNlMViNgjcVEat+8mq40DRBg3dPmKWtAAAAFQCqCPvjldnAizrO5ZIVzv4ZmkVHCQAAAIEAgn/myFHjjQ1Ph+c3l+JrGxUH9w9KTe5YBBDu0B+CL5yLcSmVgXAeomycJqo+3DpUHaoPZ2LTiCNPx6lbBxzwe54oKiyjG7lh9OfxwFxfgCG6PqMLPmVCvCyDKxZSsZWIuIc46EouhvIA6jOydulntgj+OiNmhoRg+hxOpXczOjEAAACAelRxsAXa98TlB0P7GD/3Xj9P9psb1rReZ3IWjQMKJwxrZOt9+ioEe8MJAmDHWdmNQt0vXqNOmZExOkbPxaxaQYOOVxcXwrASbvSfk3vHrPhJuuuj4OBK/C17BPEEHkzCVJr8xlk8UHw3irRY1uzgWYbXGdYyse5+r1uuPpPOShc=";

fn pk(seed: u8) -> PublicKey {
    PublicKey::ed25519(
        SigningKey::from_bytes(&[seed; 32])
            .verifying_key()
            .to_bytes(),
    )
}

fn key() -> PublicKey {
    let b64 = KEY.split(' ').nth(1).unwrap();
    PublicKey::from_openssh_parts("ssh-ed25519", b64).unwrap()
}

fn signers(text: &str) -> Vec<AllowedSigner> {
    parse_allowed_signers("t", text).unwrap_or_else(|e| panic!("{text:?}: {}", e.cause))
}

/// The error message for a refused file.
fn refused(text: &str) -> String {
    match parse_allowed_signers("t", text) {
        Ok(s) => panic!("{text:?} was accepted: {s:?}"),
        Err(e) => {
            assert_eq!(e.code, Code::TrustFile);
            e.cause
        }
    }
}

fn store(text: &str) -> TrustStore {
    TrustStore {
        signers: signers(text),
        revoked: Revoked::default(),
        source: "t".into(),
    }
}

fn at(s: &str) -> SystemTime {
    humantime::parse_rfc3339(s).unwrap()
}

/// Does the one-line file admit KEY for `host` at 2026-06-01?
fn admits(line: &str, host: &str) -> bool {
    store(&format!("{line}\n"))
        .check(&key(), host, at("2026-06-01T00:00:00Z"))
        .is_ok()
}

#[test]
fn parses_options_and_quotes() {
    let text = format!(
        "# comment\n\n\"ghes.example.com,other host\" namespaces=\"airlock-bundle,file\",valid-after=\"20260101Z\",valid-before=\"202701011200\" {KEY} c\n\
         * cert-authority {KEY}\n\
         x {P256}\n"
    );
    let s = signers(&text);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].line, 3);
    assert_eq!(s[0].principals, "ghes.example.com,other host");
    assert_eq!(s[0].namespaces.as_deref(), Some("airlock-bundle,file"));
    assert_eq!(s[0].valid_after.unwrap(), at("2026-01-01T00:00:00Z"));
    assert_eq!(s[0].valid_before.unwrap(), at("2027-01-01T12:00:00Z"));
}

#[test]
fn negated_namespace_refuses() {
    // Finding: `!airlock-bundle,*` admitted the key; OpenSSH's matching
    // negation returns -1, which is "no".
    assert!(!admits(
        &format!("host namespaces=\"!airlock-bundle,*\" {KEY}"),
        "host"
    ));
    assert!(admits(
        &format!("host namespaces=\"!file,*\" {KEY}"),
        "host"
    ));
    assert!(admits(&format!("host namespaces=\"*\" {KEY}"), "host"));
    assert!(!admits(&format!("host namespaces=\"\" {KEY}"), "host"));
}

#[test]
fn namespace_list_is_not_trimmed() {
    // Finding: `file, airlock-bundle` admitted the key; the pattern is
    // " airlock-bundle" with its space.
    assert!(!admits(
        &format!("host namespaces=\"file, airlock-bundle\" {KEY}"),
        "host"
    ));
    assert!(admits(
        &format!("host namespaces=\"file,airlock-bundle\" {KEY}"),
        "host"
    ));
    // Case-sensitive.
    assert!(!admits(
        &format!("host namespaces=\"Airlock-Bundle\" {KEY}"),
        "host"
    ));
}

#[test]
fn duplicate_options_are_refused() {
    for opts in [
        "namespaces=\"file\",namespaces=\"airlock-bundle\"",
        "valid-after=\"20200101\",valid-after=\"20210101\"",
        "valid-before=\"20300101\",valid-before=\"20310101\"",
        "namespaces=\"airlock-bundle\",NAMESPACES=\"file\"",
    ] {
        let m = refused(&format!("host {opts} {KEY}\n"));
        assert!(m.starts_with("t:1: ") && m.contains("given twice"), "{m}");
    }
}

#[test]
fn option_names_are_case_insensitive_values_are_quoted() {
    // OpenSSH's opt_match uses strncasecmp.
    assert!(admits(
        &format!("host NAMESPACES=\"airlock-bundle\",Valid-After=\"20200101\" {KEY}"),
        "host"
    ));
    assert!(refused(&format!("host namespaces=airlock-bundle {KEY}\n")).contains("double quotes"));
    assert!(refused(&format!("host namespaces=\"airlock-bundle {KEY}\n")).contains("not closed"));
    assert!(refused(&format!("host bogus=\"1\" {KEY}\n")).contains("unknown option"));
    assert!(refused(&format!("host cert-authority=\"1\" {KEY}\n")).contains("unexpected text"));
    // Empty options: OpenSSH skips them, airlock refuses (stricter).
    assert!(
        refused(&format!("host ,namespaces=\"airlock-bundle\" {KEY}\n")).contains("empty option")
    );
    assert!(refused(&format!(
        "host namespaces=\"airlock-bundle\",,valid-after=\"20200101\" {KEY}\n"
    ))
    .contains("empty option"));
    assert!(
        refused(&format!("host namespaces=\"airlock-bundle\", {KEY}\n"))
            .contains("end with a comma")
    );
    // `\"` inside a value is a quote.
    let s = signers(&format!(
        "host namespaces=\"a\\\"b,airlock-bundle\" {KEY}\n"
    ));
    assert_eq!(s[0].namespaces.as_deref(), Some("a\"b,airlock-bundle"));
}

#[test]
fn space_between_options_is_explained() {
    let m = refused(&format!(
        "host namespaces=\"airlock-bundle\" valid-after=\"20260101\" {KEY}\n"
    ));
    assert!(m.contains("separated by commas, not spaces"), "{m}");
}

#[test]
fn options_after_the_key_are_refused() {
    // OpenSSH reads them as a comment, which silently widens the line.
    let m = refused(&format!("host {KEY} namespaces=\"file\"\n"));
    assert!(m.contains("comment to OpenSSH"), "{m}");
    assert!(signers(&format!("host {KEY} namespaces are nice\n")).len() == 1);
}

#[test]
fn principal_lists_are_not_trimmed() {
    // Finding: a space after a comma was trimmed. `other, host` is the
    // principals "other," followed by the options "host" to OpenSSH.
    assert!(refused(&format!("other, host {KEY}\n"))
        .contains("principals are separated by commas without spaces"));
    // Quoted, the space belongs to the pattern " host", which matches nothing.
    assert!(!admits(&format!("\"other, host\" {KEY}"), "host"));
    assert!(admits(&format!("\"other,host\" {KEY}"), "host"));
    assert!(admits(&format!("other,\"host\" {KEY}"), "host"));
    // strdelimw: the token ends at the closing quote.
    let s = signers(&format!("a\"b c\" {KEY}\n"));
    assert_eq!(s[0].principals, "ab c");
    assert!(refused(&format!("\"a\"b {KEY}\n")).contains("closing quote"));
    assert!(refused(&format!("\"\" {KEY}\n")).contains("empty"));
}

#[test]
fn principal_negation_and_case() {
    assert!(!admits(&format!("!host,* {KEY}"), "host"));
    assert!(admits(&format!("!other,* {KEY}"), "host"));
    assert!(!admits(&format!("*,!h* {KEY}"), "host"));
    assert!(!admits(&format!("HOST {KEY}"), "host"));
    assert!(admits(&format!("h?st {KEY}"), "host"));
}

#[test]
fn no_principals_before_the_key() {
    let m = refused(&format!("{KEY} comment\n"));
    assert!(
        m.starts_with("t:1: the line has no principals before the key"),
        "{m}"
    );
    let m = refused(&format!("{KEY}\n"));
    assert!(m.contains("no principals before the key"), "{m}");
}

#[test]
fn key_type_names_are_case_sensitive() {
    let b64 = KEY.split(' ').nth(1).unwrap();
    let m = refused(&format!("host SSH-ED25519 {b64}\n"));
    assert!(m.contains("case-sensitive, write ssh-ed25519"), "{m}");
    let m = refused(&format!("host ED25519 {b64}\n"));
    assert!(m.contains("write ssh-ed25519"), "{m}");
}

#[test]
fn corrupted_keys_are_refused_without_raw_bytes() {
    assert!(refused("host ssh-ed25519 !!!\n").contains("base64"));
    // A blob whose inner type is binary: escaped in the message.
    let mut blob = vec![0, 0, 0, 4, 0x1b, b'[', b'2', 0xff];
    blob.extend_from_slice(&[0, 0, 0, 32]);
    blob.extend_from_slice(&[7; 32]);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let m = refused(&format!("host ssh-ed25519 {b64}\n"));
    assert!(m.contains("\\x1b[2\\xff"), "{m}");
    assert!(!m.contains('\x1b'));
    // Trailing bytes, wrong length.
    let mut long = pk(1).blob();
    long.push(0);
    let b64 = base64::engine::general_purpose::STANDARD.encode(&long);
    assert!(refused(&format!("host ssh-ed25519 {b64}\n")).contains("corrupted"));
    // A key of one type filed under another.
    let b64 = KEY.split(' ').nth(1).unwrap();
    assert!(refused(&format!("host ssh-rsa {b64}\n")).contains("is not ssh-rsa"));
}

#[test]
fn other_key_types_are_skipped_only_when_valid() {
    for k in [RSA1024, P256, P384, P521, DSA] {
        assert!(signers(&format!("host {k} other\n")).is_empty(), "{k}");
    }
    // An ECDSA point off the curve: OpenSSH refuses the key.
    let (t, b64) = P256.split_once(' ').unwrap();
    let mut blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    *blob.last_mut().unwrap() ^= 1;
    let bad = base64::engine::general_purpose::STANDARD.encode(&blob);
    assert!(refused(&format!("host {t} {bad}\n")).contains("not a valid public key"));
    // On the curve but x ≥ order − 1: `ssh-keygen -l` refuses it too.
    let big_x = "AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBP////8AAAAA//////////+85vqtpxeehPO5ysL8YyVUSE8MD9pDTvCoCEWJFPMocV16VF4Zisfu4x3/6GG10j8=";
    assert!(refused(&format!("host {t} {big_x}\n")).contains("not a valid public key"));
    // Short RSA, certificates, signature-algorithm names.
    let mut short = Vec::new();
    for part in [&b"ssh-rsa"[..], &[1, 0, 1], &[0x40; 64]] {
        short.extend_from_slice(&(part.len() as u32).to_be_bytes());
        short.extend_from_slice(part);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&short);
    assert!(refused(&format!("host ssh-rsa {b64}\n")).contains("1024"));
    assert!(refused("host ssh-ed25519-cert-v01@openssh.com AAAA\n").contains("certificate"));
    let rsa_b64 = RSA1024.split(' ').nth(1).unwrap();
    assert!(refused(&format!("host rsa-sha2-256 {rsa_b64}\n")).contains("write ssh-rsa"));
}

#[test]
fn malformed_line_anywhere_is_an_error_with_its_number() {
    let text = format!("host {KEY}\n# fine\nother garbage\n");
    let m = refused(&text);
    assert!(m.starts_with("t:3: "), "{m}");
    assert!(refused("host\n").starts_with("t:1: "));
}

#[test]
fn bom_nul_utf8_and_control_characters() {
    let m = refused(&format!("\u{feff}host {KEY}\n"));
    assert!(
        m.starts_with("t:1: ") && m.contains("Notepad") && m.contains("without BOM"),
        "{m}"
    );
    let e = parse_allowed_signers("t", b"# a\nhost\0 x\n").unwrap_err();
    assert!(e.cause.starts_with("t:2: NUL"), "{}", e.cause);
    let e = parse_allowed_signers("t", b"# a\n# b\nh\xffost x\n").unwrap_err();
    assert!(e.cause.starts_with("t:3: not UTF-8"), "{}", e.cause);
    assert!(refused(&format!("host\x1b[31m {KEY}\n")).contains("\\u{1b}"));
    assert!(refused(&format!("host {KEY}\rx\n")).contains("carriage return"));
}

#[test]
fn crlf_line_endings_mean_what_they_mean_to_ssh_keygen() {
    // ssh-keygen reads CR LF lines (the CR is whitespace to it).
    let s = signers(&format!(
        "# c\r\n\r\nhost namespaces=\"airlock-bundle\" {KEY} c\r\nother {KEY}\r\n"
    ));
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].namespaces.as_deref(), Some("airlock-bundle"));
    assert_eq!(s[1].principals, "other");
}

#[test]
fn times() {
    for (t, want) in [
        ("20260101", Some("2026-01-01T00:00:00Z")),
        ("20260101Z", Some("2026-01-01T00:00:00Z")),
        ("20260101z", Some("2026-01-01T00:00:00Z")),
        ("20260101UTC", Some("2026-01-01T00:00:00Z")),
        ("20260101utc", Some("2026-01-01T00:00:00Z")),
        ("202601011230", Some("2026-01-01T12:30:00Z")),
        ("20260101123059Z", Some("2026-01-01T12:30:59Z")),
        ("20240229", Some("2024-02-29T00:00:00Z")),
        ("19700101000001Z", Some("1970-01-01T00:00:01Z")),
        ("19700101Z", None),
        ("19691231", None),
        ("20250229", None),
        ("20260230", None),
        ("20260101236000", None),
        ("20260101235960", None),
        ("2026010", None),
        ("+0260101", None),
        ("2026-1-01", None),
        ("Z", None),
        ("", None),
        ("20260101ZZ", None),
        // Regression (found by the allowed_signers fuzz target): a
        // multi-byte character at the end panicked on a non-boundary slice.
        ("\u{feff}", None),
        ("é", None),
        ("2026010é", None),
        ("20260101€", None),
        ("20260101Zé", None),
    ] {
        assert_eq!(parse_ssh_time(t), want.map(at), "{t}");
    }
    assert!(refused(&format!("host valid-before=\"é\" {KEY}\n")).contains("valid-before"));
    assert!(refused(&format!(
        "host valid-after=\"20270101\",valid-before=\"20260101\" {KEY}\n"
    ))
    .contains("not after"));
    assert!(refused(&format!(
        "host valid-after=\"20260101\",valid-before=\"20260101\" {KEY}\n"
    ))
    .contains("not after"));
    assert!(
        refused(&format!("host valid-after=\"19700101Z\" {KEY}\n")).contains("invalid valid-after")
    );
}

#[test]
fn window_is_inclusive_like_openssh() {
    let s = store(&format!(
        "host valid-after=\"20260101Z\",valid-before=\"20270101Z\" {KEY}\n"
    ));
    let k = key();
    assert!(s.check(&k, "host", at("2026-01-01T00:00:00Z")).is_ok());
    assert!(s.check(&k, "host", at("2027-01-01T00:00:00Z")).is_ok());
    assert_eq!(
        s.check(&k, "host", at("2025-12-31T23:59:59Z"))
            .unwrap_err()
            .code,
        Code::SigWindow
    );
    assert_eq!(
        s.check(&k, "host", at("2027-01-01T00:00:01Z"))
            .unwrap_err()
            .code,
        Code::SigWindow
    );
}

#[test]
fn cert_authority_lines_never_match() {
    assert!(!admits(&format!("host cert-authority {KEY}"), "host"));
    assert!(!admits(
        &format!("host CERT-AUTHORITY,namespaces=\"airlock-bundle\" {KEY}"),
        "host"
    ));
}

#[test]
fn patterns() {
    assert!(match_pattern_list("ghes.example.com", "*.example.com"));
    assert!(!match_pattern_list(
        "ghes.example.com",
        "*.example.com,!ghes.*"
    ));
    assert!(match_pattern_list("a", "b,a"));
    assert!(!match_pattern_list("ab", "a"));
    assert!(match_pattern_list("abc", "a?c"));
    assert!(match_pattern("aaaaaaaaaaaaaaaaaaaaaaab", "*a*a*a*a*a*b"));
    // No trimming; empty patterns; trailing comma.
    assert!(!match_pattern_list("a", " a"));
    assert!(match_pattern_list("a", "a,"));
    assert!(!match_pattern_list("a", ""));
    assert!(!match_pattern_list("a", ","));
    assert!(match_pattern_list("", ","));
    // A matching negation anywhere vetoes.
    assert!(!match_pattern_list("a", "a,!a"));
    assert!(!match_pattern_list("a", "!*,a"));
    // OpenSSH's 1024-byte pattern buffer.
    let long = "x".repeat(1023);
    assert!(!match_pattern_list("a", &format!("a,{long}")));
    assert!(match_pattern_list("a", &format!("a,{}", "x".repeat(1022))));
}

// --- revoked keys ------------------------------------------------------------

fn revoked(text: &[u8]) -> Revoked {
    parse_revoked("r", text)
        .unwrap_or_else(|e| panic!("{:?}: {}", String::from_utf8_lossy(text), e.cause))
}

fn revoked_err(text: &[u8]) -> String {
    match parse_revoked("r", text) {
        Ok(r) => panic!("{:?} was accepted: {r:?}", String::from_utf8_lossy(text)),
        Err(e) => {
            assert_eq!(e.code, Code::TrustFile);
            e.cause
        }
    }
}

#[test]
fn revoked_plain_list() {
    let r = revoked(format!("# c\n\n  {KEY} old\n{P256}\n{RSA1024}\n\t{DSA}\n").as_bytes());
    assert!(r.contains(&key()));
    assert!(!r.contains(&pk(1)));
    assert_eq!(r.keys.len(), 1);
    assert!(revoked(b"").is_empty());
    assert!(revoked(format!("{KEY}\r\n# c\r\n").as_bytes()).contains(&key()));
}

#[test]
fn revoked_lines_are_never_silently_ignored() {
    // Finding: each of these was skipped, so the "revoked" key kept working.
    let b64 = KEY.split(' ').nth(1).unwrap();
    for (line, want) in [
        (format!("host {KEY}"), "allowed_signers line"),
        (
            format!("host namespaces=\"x\" {KEY}"),
            "allowed_signers line",
        ),
        (format!("namespaces=\"x\" {KEY}"), "no options"),
        (format!("SSH-ED25519 {b64}"), "case-sensitive"),
        (format!("ED25519 {b64}"), "write ssh-ed25519"),
        (
            format!("hash: {}", key().fingerprint()),
            "ssh-keygen -k -f revoked.krl",
        ),
        (format!("key: {KEY}"), "ssh-keygen -k"),
        (format!("sha1: {KEY}"), "ssh-keygen -k"),
        ("id: someone".to_string(), "ssh-keygen -k"),
        ("serial: 1-10".to_string(), "ssh-keygen -k"),
        ("ssh-ed25519".to_string(), "no base64"),
        ("ssh-ed25519 AAAA".to_string(), "corrupted"),
        (
            "ssh-ed25519-cert-v01@openssh.com AAAA".to_string(),
            "certificate",
        ),
    ] {
        let m = revoked_err(format!("# ok\n{KEY}\n{line}\n").as_bytes());
        assert!(m.starts_with("r:3: "), "{line}: {m}");
        assert!(m.contains(want), "{line}: {m}");
    }
    // ssh-keygen -r refuses a blank CR LF line (it is not blank to it).
    assert!(revoked_err(format!("{KEY}\r\n\r\n").as_bytes()).contains("CR LF"));
    assert!(revoked_err(format!("\u{feff}{KEY}\n").as_bytes()).contains("Notepad"));
    assert!(revoked_err(b"SSHKRL\n").contains("damaged binary KRL"));
}

#[test]
fn revoked_sk_application_with_nul_is_refused() {
    // OpenSSH drops one trailing NUL from the application, so this names the
    // key "ssh:"; airlock refuses rather than read another key.
    let mut blob = Vec::new();
    for part in [&b"sk-ssh-ed25519@openssh.com"[..], &[9; 32], b"ssh:\0"] {
        blob.extend_from_slice(&(part.len() as u32).to_be_bytes());
        blob.extend_from_slice(part);
    }
    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    assert!(revoked_err(format!("sk-ssh-ed25519@openssh.com {b64}\n").as_bytes()).contains("NUL"));
}

/// A KRL header (version 1) followed by `sections`.
fn krl(sections: &[u8]) -> Vec<u8> {
    let mut v = krl::MAGIC.to_vec();
    v.extend_from_slice(&1u32.to_be_bytes());
    v.extend_from_slice(&[0; 24]);
    v.extend_from_slice(&[0, 0, 0, 0]); // reserved
    v.extend_from_slice(&[0, 0, 0, 0]); // comment
    v.extend_from_slice(sections);
    v
}

fn string(b: &[u8]) -> Vec<u8> {
    let mut v = (b.len() as u32).to_be_bytes().to_vec();
    v.extend_from_slice(b);
    v
}

fn section(t: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![t];
    v.extend(string(body));
    v
}

#[test]
fn krl_sections() {
    let k = key();
    let blob = k.blob();
    let explicit = krl(&section(2, &string(&blob)));
    assert!(revoked(&explicit).contains(&k));
    assert!(!revoked(&explicit).contains(&pk(1)));
    let sha256 = krl(&section(5, &string(&Sha256::digest(&blob))));
    assert!(revoked(&sha256).contains(&k));
    let sha1 = krl(&section(3, &string(&sha1::Sha1::digest(&blob))));
    assert!(revoked(&sha1).contains(&k));
    assert!(revoked(&krl(&[])).is_empty());
    // Malformed: a whole-file error, no line number.
    for (bad, want) in [
        (krl(&section(3, &string(&[0; 19]))), "19-byte hash"),
        (krl(&section(9, &[])), "unknown section type 9"),
        (krl(&[2, 0, 0]), "truncated"),
        (krl(&section(2, &[0, 0, 0, 5, 1])), "truncated"),
        (
            {
                let mut v = krl(&[]);
                v[11] = 2;
                v
            },
            "version 2",
        ),
        (krl::MAGIC.to_vec(), "header"),
    ] {
        let m = revoked_err(&bad);
        assert!(m.starts_with("r: bad binary KRL: "), "{m}");
        assert!(m.contains(want), "{m}");
    }
}

#[test]
fn krl_certificate_sections_are_checked_and_ignored() {
    let ca = pk(5).blob();
    let mut body = string(&ca);
    body.extend(string(b""));
    let mut ok = body.clone();
    ok.extend(section(0x20, &[0, 0, 0, 0, 0, 0, 0, 7]));
    ok.extend(section(
        0x21,
        &[0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 9],
    ));
    ok.extend(section(
        0x22,
        &[&[0, 0, 0, 0, 0, 0, 0, 1][..], &string(&[3, 0xff])].concat(),
    ));
    ok.extend(section(0x23, &string(b"someone")));
    let r = revoked(&krl(&section(1, &ok)));
    assert!(r.is_empty());
    // Wildcard CA.
    let mut wild = string(b"");
    wild.extend(string(b""));
    wild.extend(section(0x23, &string(b"x")));
    assert!(revoked(&krl(&section(1, &wild))).is_empty());
    for (sub, want) in [
        (section(0x20, &[0; 8]), "serial 0"),
        (section(0x20, &[0; 7]), "truncated"),
        (
            section(
                0x21,
                &[&[0, 0, 0, 0, 0, 0, 0, 9][..], &[0, 0, 0, 0, 0, 0, 0, 1]].concat(),
            ),
            "range",
        ),
        (section(0x21, &[0; 17]), "range"),
        (
            section(0x22, &[&[0; 8][..], &string(&[1])].concat()),
            "serial 0",
        ),
        (
            section(0x22, &[&[0xff; 8][..], &string(&[3])].concat()),
            "wraps",
        ),
        (
            section(0x22, &[&[0; 8][..], &string(&[0x80])].concat()),
            "negative",
        ),
        (section(0x23, &string(b"a\0b")), "NUL"),
        (section(0x24, &[]), "unknown certificate section"),
    ] {
        let mut b = body.clone();
        b.extend(sub);
        let m = revoked_err(&krl(&section(1, &b)));
        assert!(m.contains(want), "{want}: {m}");
    }
    let mut bad_ca = string(b"ssh-ed25519");
    bad_ca.extend(string(b""));
    assert!(revoked_err(&krl(&section(1, &bad_ca))).contains("certificate authority key"));
}

#[test]
fn krl_signatures_are_verified() {
    let sk = SigningKey::from_bytes(&[8; 32]);
    let signer = PublicKey::ed25519(sk.verifying_key().to_bytes());
    let body = krl(&section(2, &string(&key().blob())));
    let sign = |body: &[u8], signer: &PublicKey| {
        let mut v = body.to_vec();
        v.push(4);
        v.extend(string(&signer.blob()));
        let sig = ed25519_dalek::Signer::sign(&sk, &v);
        let mut sigblob = string(b"ssh-ed25519");
        sigblob.extend(string(&sig.to_bytes()));
        v.extend(string(&sigblob));
        v
    };
    let good = sign(&body, &signer);
    assert!(revoked(&good).contains(&key()));
    let mut bad = good.clone();
    let n = bad.len();
    bad[n - 1] ^= 1;
    assert!(revoked_err(&bad).contains("does not verify"));
    // A section after the signature.
    let mut after = good.clone();
    after.extend(section(2, &string(&pk(2).blob())));
    assert!(revoked_err(&after).contains("follows the KRL signature"));
    // A KRL that revokes its own signer revokes everything, to OpenSSH.
    let selfrevoked = sign(&krl(&section(2, &string(&signer.blob()))), &signer);
    assert!(revoked_err(&selfrevoked).contains("every key that signed"));
}

#[test]
fn whole_file_errors_have_no_line_number() {
    let d = tempfile::tempdir().unwrap();
    let a = d.path().join("allowed");
    std::fs::write(&a, format!("host {KEY}\n")).unwrap();
    let r = d.path().join("revoked.krl");
    std::fs::write(&r, krl(&section(9, &[]))).unwrap();
    let e = TrustStore::load(&a, Some(&r)).unwrap_err();
    assert_eq!(e.code, Code::TrustFile);
    assert!(
        e.cause
            .starts_with(&format!("{}: bad binary KRL", r.display())),
        "{}",
        e.cause
    );
    assert!(!e.cause.contains(":0:"));
}

#[test]
fn store_checks_revocation_first() {
    let mut s = store(&format!("host {KEY}\n"));
    assert!(s.check(&key(), "host", at("2026-06-01T00:00:00Z")).is_ok());
    s.revoked = revoked(&krl(&section(5, &string(&Sha256::digest(key().blob())))));
    assert_eq!(
        s.check(&key(), "host", at("2026-06-01T00:00:00Z"))
            .unwrap_err()
            .code,
        Code::SigRevoked
    );
}

/// Regression (#16, item 3): a key whose window is the problem gets a hint
/// pointing at the importer's trust line, not "re-export with a current key".
#[test]
fn window_error_points_at_the_trust_line() {
    let s = store(&format!(
        "# ceremony\nhost namespaces=\"airlock-bundle\",valid-after=\"20261201Z\" {KEY}\n"
    ));
    let e = s
        .check(&key(), "host", at("2026-11-28T12:00:00Z"))
        .unwrap_err();
    assert_eq!(e.code, Code::SigWindow);
    assert!(e.cause.contains("t:2, valid-after"), "{}", e.cause);
    assert!(
        e.hint().contains("correct valid-after on line 2 of t"),
        "{}",
        e.hint()
    );
    assert!(!e.hint().contains("current key"), "{}", e.hint());
    let s = store(&format!("host valid-before=\"20260101Z\" {KEY}\n"));
    let e = s
        .check(&key(), "host", at("2026-11-28T12:00:00Z"))
        .unwrap_err();
    assert!(
        e.hint().contains("re-export with the current key"),
        "{}",
        e.hint()
    );
    assert!(
        e.hint().contains("extend valid-before on line 1 of t"),
        "{}",
        e.hint()
    );
}

/// Regression (#16, item 4): options where the principals belong (the line
/// lacks its host name) are refused with that diagnosis, not read as a
/// principal named `namespaces=airlock-bundle`.
#[test]
fn options_in_place_of_principals_are_named() {
    let m = refused(&format!("namespaces=\"airlock-bundle\" {KEY}\n"));
    assert!(m.contains("t:1: the line has no principals"), "{m}");
    assert!(m.contains("write the host name(s) first"), "{m}");
    let m = refused(&format!("valid-after=\"20260101Z\" {KEY}\n"));
    assert!(m.contains("no principals"), "{m}");
}

/// Regression (#16, item 4): a key trusted for another host names the
/// lines and principals it is trusted with.
#[test]
fn principal_error_lists_the_key_lines() {
    let s = store(&format!("ghes-a.example.com {KEY}\n"));
    let e = s
        .check(&key(), "ghes.example.com", at("2026-06-01T00:00:00Z"))
        .unwrap_err();
    assert_eq!(e.code, Code::SigPrincipal);
    assert!(
        e.cause.contains("line 1: \"ghes-a.example.com\""),
        "{}",
        e.cause
    );
}
