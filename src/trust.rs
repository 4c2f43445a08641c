//! Trust policy: OpenSSH `allowed_signers` files and revoked-key lists, the
//! same files `ssh-keygen -Y verify -f … -r …` takes.
//!
//! A principal names the source instance (its GHES `host_name`) a key may
//! speak for. `namespaces=` must admit `airlock-bundle` when present; the
//! `valid-after`/`valid-before` window is checked against the bundle's signed
//! creation time (see docs/format.md §6 for why not "now").

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::{Code, Error, Result};
use crate::sshsig::{PublicKey, BUNDLE_NAMESPACE};

/// One usable line of an allowed_signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub line: usize,
    pub principals: String,
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<SystemTime>,
    pub valid_before: Option<SystemTime>,
    pub key: PublicKey,
}

/// The trust store: allowed signers plus revoked keys.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    pub signers: Vec<AllowedSigner>,
    pub revoked: HashSet<PublicKey>,
    /// Where the signers came from, for messages.
    pub source: String,
}

fn trust_err(path: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::new(Code::TrustFile, format!("{path}:{line}: {msg}"))
}

/// Split off one whitespace-delimited field, honouring double quotes as
/// OpenSSH does for the principals and options fields.
fn next_field(s: &str) -> Option<(&str, &str)> {
    let s = s.trim_start();
    if s.is_empty() {
        return None;
    }
    let mut in_quote = false;
    for (i, c) in s.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ' ' | '\t' if !in_quote => return Some((&s[..i], &s[i..])),
            _ => {}
        }
    }
    Some((s, ""))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|r| r.strip_suffix('"'))
        .unwrap_or(s)
}

/// Parse `YYYYMMDD[Z]` or `YYYYMMDDHHMM[SS][Z]`. Times are taken as UTC: see
/// docs/format.md §6 (ssh-keygen uses the local zone without `Z`).
pub fn parse_ssh_time(s: &str) -> Option<SystemTime> {
    let s = s.strip_suffix('Z').unwrap_or(s);
    if !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (date, time) = match s.len() {
        8 => (s, "000000".to_string()),
        12 => (&s[..8], format!("{}00", &s[8..])),
        14 => (&s[..8], s[8..].to_string()),
        _ => return None,
    };
    let text = format!(
        "{}-{}-{}T{}:{}:{}Z",
        &date[..4],
        &date[4..6],
        &date[6..8],
        &time[..2],
        &time[2..4],
        &time[4..6]
    );
    humantime::parse_rfc3339(&text).ok()
}

fn parse_options(
    path: &str,
    line: usize,
    opts: &str,
    out: &mut AllowedSigner,
    ca: &mut bool,
) -> Result<()> {
    // Options are comma-separated; commas inside quotes belong to the value.
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    for (i, c) in opts.char_indices() {
        match c {
            '"' => in_quote = !in_quote,
            ',' if !in_quote => {
                parts.push(&opts[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if in_quote {
        return Err(trust_err(path, line, "unterminated quote in options"));
    }
    parts.push(&opts[start..]);
    for p in parts {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k.to_ascii_lowercase(), Some(unquote(v))),
            None => (p.to_ascii_lowercase(), None),
        };
        match (k.as_str(), v) {
            ("cert-authority", None) => *ca = true,
            ("namespaces", Some(v)) => {
                out.namespaces = Some(v.split(',').map(|s| s.trim().to_string()).collect())
            }
            ("valid-after", Some(v)) => {
                out.valid_after =
                    Some(parse_ssh_time(v).ok_or_else(|| {
                        trust_err(path, line, format!("bad valid-after time {v:?}"))
                    })?)
            }
            ("valid-before", Some(v)) => {
                out.valid_before =
                    Some(parse_ssh_time(v).ok_or_else(|| {
                        trust_err(path, line, format!("bad valid-before time {v:?}"))
                    })?)
            }
            _ => return Err(trust_err(path, line, format!("unknown option {p:?}"))),
        }
    }
    Ok(())
}

/// Parse an allowed_signers file. Lines for other key types are skipped (they
/// can never match an Ed25519 signature); `cert-authority` lines are skipped
/// because airlock does not accept certificates.
pub fn parse_allowed_signers(path: &str, text: &str) -> Result<Vec<AllowedSigner>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let (principals, rest) =
            next_field(l).ok_or_else(|| trust_err(path, line, "missing principals"))?;
        let (mut f, mut rest) =
            next_field(rest).ok_or_else(|| trust_err(path, line, "missing key"))?;
        let mut entry = AllowedSigner {
            line,
            principals: unquote(principals).to_string(),
            namespaces: None,
            valid_after: None,
            valid_before: None,
            key: PublicKey::ed25519([0; 32]),
        };
        let mut ca = false;
        let is_keytype =
            |s: &str| s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-");
        if !is_keytype(f) {
            parse_options(path, line, f, &mut entry, &mut ca)?;
            let (f2, r2) = next_field(rest).ok_or_else(|| trust_err(path, line, "missing key"))?;
            f = f2;
            rest = r2;
        }
        let (b64, _comment) =
            next_field(rest).ok_or_else(|| trust_err(path, line, "missing key data"))?;
        if !(f == "ssh-ed25519" || f == crate::sshsig::SK_ED25519) || ca {
            continue;
        }
        entry.key = PublicKey::from_openssh_parts(f, b64).map_err(|e| trust_err(path, line, e))?;
        out.push(entry);
    }
    Ok(out)
}

/// Parse a revoked-keys file: one OpenSSH public key per line (`#` comments).
pub fn parse_revoked(path: &str, text: &str) -> Result<HashSet<PublicKey>> {
    let mut out = HashSet::new();
    for (i, raw) in text.lines().enumerate() {
        let l = raw.trim();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let mut parts = l.split_whitespace();
        let (Some(t), Some(b)) = (parts.next(), parts.next()) else {
            return Err(trust_err(path, i + 1, "expected a public key line"));
        };
        if t != "ssh-ed25519" && t != crate::sshsig::SK_ED25519 {
            continue;
        }
        out.insert(PublicKey::from_openssh_parts(t, b).map_err(|e| trust_err(path, i + 1, e))?);
    }
    Ok(out)
}

impl TrustStore {
    pub fn load(allowed: &Path, revoked: Option<&Path>) -> Result<TrustStore> {
        let name = allowed.display().to_string();
        let text = std::fs::read(allowed).map_err(|e| Error::io_read(allowed, e))?;
        let text = String::from_utf8(text).map_err(|_| trust_err(&name, 0, "not UTF-8 text"))?;
        let signers = parse_allowed_signers(&name, &text)?;
        let revoked = match revoked {
            Some(p) => {
                let rn = p.display().to_string();
                let t = std::fs::read(p).map_err(|e| Error::io_read(p, e))?;
                if t.starts_with(b"SSHKRL") {
                    return Err(trust_err(
                        &rn,
                        0,
                        "binary KRLs are not supported; list revoked public keys one per line",
                    ));
                }
                let t = String::from_utf8(t).map_err(|_| trust_err(&rn, 0, "not UTF-8 text"))?;
                parse_revoked(&rn, &t)?
            }
            None => HashSet::new(),
        };
        Ok(TrustStore {
            signers,
            revoked,
            source: name,
        })
    }

    /// Decide whether `key` may sign bundles for `principal` made at `created`.
    /// Checks in order: revoked, known, principal, namespace, window.
    pub fn check(
        &self,
        key: &PublicKey,
        principal: &str,
        created: SystemTime,
    ) -> Result<&AllowedSigner> {
        let fp = key.fingerprint();
        if self.revoked.contains(key) {
            return Err(Error::new(
                Code::SigRevoked,
                format!("signing key {fp} is revoked"),
            ));
        }
        let lines: Vec<&AllowedSigner> = self.signers.iter().filter(|s| s.key == *key).collect();
        if lines.is_empty() {
            return Err(Error::new(
                Code::SigUntrusted,
                format!("signing key {fp} is not in {}", self.source),
            ));
        }
        let lines: Vec<&AllowedSigner> = lines
            .into_iter()
            .filter(|s| match_pattern_list(principal, &s.principals))
            .collect();
        if lines.is_empty() {
            return Err(Error::new(
                Code::SigPrincipal,
                format!(
                    "signing key {fp} is trusted in {} but not for {principal:?}",
                    self.source
                ),
            ));
        }
        let lines: Vec<&AllowedSigner> = lines
            .into_iter()
            .filter(|s| {
                s.namespaces
                    .as_ref()
                    .is_none_or(|ns| ns.iter().any(|n| match_pattern(BUNDLE_NAMESPACE, n)))
            })
            .collect();
        if lines.is_empty() {
            return Err(Error::new(
                Code::SigNamespace,
                format!(
                    "{} allows key {fp} only for other namespaces than {BUNDLE_NAMESPACE}",
                    self.source
                ),
            ));
        }
        let mut last = None;
        for s in lines {
            if s.valid_after.is_some_and(|t| created < t) {
                last = Some(format!(
                    "signing key {fp} is valid only after {} but the bundle was made {}",
                    fmt_time(s.valid_after),
                    humantime::format_rfc3339_seconds(created)
                ));
                continue;
            }
            if s.valid_before.is_some_and(|t| created > t) {
                last = Some(format!(
                    "signing key {fp} was valid only before {} but the bundle was made {}",
                    fmt_time(s.valid_before),
                    humantime::format_rfc3339_seconds(created)
                ));
                continue;
            }
            return Ok(s);
        }
        Err(Error::new(Code::SigWindow, last.unwrap_or_default()))
    }
}

fn fmt_time(t: Option<SystemTime>) -> String {
    humantime::format_rfc3339_seconds(t.unwrap_or(UNIX_EPOCH + Duration::ZERO)).to_string()
}

/// OpenSSH `match_pattern`: `*` and `?` wildcards, case-sensitive.
pub fn match_pattern(s: &str, pat: &str) -> bool {
    fn m(s: &[u8], p: &[u8]) -> bool {
        // Iterative glob with single backtrack point: linear enough for short
        // principals and free of exponential blow-up.
        let (mut si, mut pi) = (0, 0);
        let (mut star, mut mark) = (None, 0);
        while si < s.len() {
            if pi < p.len() && (p[pi] == b'?' || p[pi] == s[si]) {
                si += 1;
                pi += 1;
            } else if pi < p.len() && p[pi] == b'*' {
                star = Some(pi);
                mark = si;
                pi += 1;
            } else if let Some(st) = star {
                pi = st + 1;
                mark += 1;
                si = mark;
            } else {
                return false;
            }
        }
        while pi < p.len() && p[pi] == b'*' {
            pi += 1;
        }
        pi == p.len()
    }
    m(s.as_bytes(), pat.as_bytes())
}

/// OpenSSH `match_pattern_list`: comma-separated patterns; a matching `!`
/// pattern vetoes the whole list.
pub fn match_pattern_list(s: &str, list: &str) -> bool {
    let mut matched = false;
    for p in list.split(',') {
        let p = p.trim();
        if let Some(neg) = p.strip_prefix('!') {
            if match_pattern(s, neg) {
                return false;
            }
        } else if match_pattern(s, p) {
            matched = true;
        }
    }
    matched
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGPg8IMR1VjX9Rt8+Lsyp8HtW9pRbwx3u8rVpw4vSGjW";

    #[test]
    fn parses_options_and_quotes() {
        let text = format!(
            "# comment\n\nghes.example.com,\"other host\" namespaces=\"airlock-bundle,file\",valid-after=20260101Z,valid-before=\"202701011200\" {KEY} c\n\
             * cert-authority {KEY}\n\
             x ssh-rsa AAAA\n"
        );
        let s = parse_allowed_signers("t", &text).unwrap();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].principals, "ghes.example.com,\"other host\"");
        assert_eq!(s[0].namespaces.as_ref().unwrap().len(), 2);
        assert_eq!(
            s[0].valid_after.unwrap(),
            humantime::parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(
            s[0].valid_before.unwrap(),
            humantime::parse_rfc3339("2027-01-01T12:00:00Z").unwrap()
        );
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_allowed_signers("t", "host bogus=1 ssh-ed25519 AAAA").is_err());
        assert!(parse_allowed_signers("t", "host ssh-ed25519 !!!").is_err());
        assert!(parse_allowed_signers("t", "host").is_err());
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
    }
}
