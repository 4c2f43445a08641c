//! Trust policy: OpenSSH `allowed_signers` files and revoked-key lists, the
//! same files `ssh-keygen -Y verify -f … -r …` takes.
//!
//! The rule (docs/format.md §6.1): every line means to airlock exactly what
//! it means to OpenSSH 9.2's `ssh-keygen -Y verify`, or the whole file is
//! refused with `AIRLOCK-E-TRUST-FILE` and the line number. So airlock never
//! accepts a signature that ssh-keygen refuses because of these files; it
//! refuses some files ssh-keygen reads (malformed lines anywhere, odd
//! quoting), which OpenSSH would skip or stop at.
//!
//! The parsing follows OpenSSH's code, not its manual: `strdelimw` for the
//! principals field, `sshkey_read` for keys, `sshkey_advance_past_options`
//! and `sshsigopt_parse` for options, `match_pattern_list` for principal and
//! namespace lists, `parse_absolute_time` for times, `sshkey_in_file` and
//! `ssh_krl_from_blob` for revoked keys.
//!
//! A principal names the source instance (its GHES `host_name`) a key may
//! speak for. `namespaces=` must admit `airlock-bundle` when present; the
//! `valid-after`/`valid-before` window is checked against the bundle's signed
//! creation time (see docs/format.md §6 for why not "now").

mod keys;
mod krl;

use std::collections::HashSet;
use std::io::Read;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::base::error::{Code, Error, Result};
use crate::crypto::sshsig::{PublicKey, BUNDLE_NAMESPACE};
use keys::{key_type, near_key_type, Key, KeyType};

mod signers;
pub use signers::*;

/// Largest allowed_signers or revoked-keys file airlock reads.
const MAX_TRUST_FILE: u64 = 16 << 20;

/// One usable line of an allowed_signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    /// The 1-based line number in the file (0 for a store built in code).
    pub(crate) line: usize,
    /// The principals pattern list, as OpenSSH's `strdelimw` returns it
    /// (quotes removed, nothing trimmed).
    pub(crate) principals: String,
    /// The `namespaces=` pattern list, unquoted, if the line has one.
    pub(crate) namespaces: Option<String>,
    /// `valid-after=`: bundles made before this instant are refused.
    pub(crate) valid_after: Option<SystemTime>,
    /// `valid-before=`: bundles made after this instant are refused.
    pub(crate) valid_before: Option<SystemTime>,
    /// The trusted key.
    pub(crate) key: PublicKey,
}

/// Revoked keys: public key blobs listed explicitly, and SHA-1 / SHA-256
/// hashes of blobs (binary KRL fingerprint sections).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revoked {
    /// SSH wire blobs of revoked keys.
    keys: HashSet<Vec<u8>>,
    /// SHA-1 digests of revoked keys' blobs.
    sha1: HashSet<[u8; 20]>,
    /// SHA-256 digests of revoked keys' blobs.
    sha256: HashSet<[u8; 32]>,
}

impl Revoked {
    /// Revoke one key by its blob.
    pub fn insert(&mut self, key: &PublicKey) {
        self.keys.insert(key.blob());
    }

    /// OpenSSH `is_key_revoked` for a plain key: its SHA-1 or SHA-256 blob
    /// hash, or the blob itself, is listed. (A SHA-1 collision could only
    /// make another key look revoked, a refusal, never admit one.)
    pub fn contains(&self, key: &PublicKey) -> bool {
        let blob = key.blob();
        self.keys.contains(&blob)
            || self.sha1.contains(&<[u8; 20]>::from(Sha1::digest(&blob)))
            || self
                .sha256
                .contains(&<[u8; 32]>::from(Sha256::digest(&blob)))
    }

    /// True when nothing is revoked.
    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.sha1.is_empty() && self.sha256.is_empty()
    }
}

/// The trust store: allowed signers plus revoked keys.
#[derive(Debug, Clone, Default)]
pub struct TrustStore {
    /// The usable lines of the allowed_signers file, in file order.
    pub(crate) signers: Vec<AllowedSigner>,
    /// Keys that are refused whatever `signers` says.
    pub(crate) revoked: Revoked,
    /// Where the signers came from, for messages.
    pub source: String,
}

/// A problem on one line: `PATH:LINE: …`.
fn line_err(path: &str, line: usize, msg: impl std::fmt::Display) -> Error {
    Error::new(Code::TrustFile, format!("{path}:{line}: {msg}"))
}

/// A problem with the whole file: `PATH: …`.
fn file_err(path: &str, msg: impl std::fmt::Display) -> Error {
    Error::new(Code::TrustFile, format!("{path}: {msg}"))
}

/// Text for a message: quoted, non-ASCII and control characters escaped,
/// long text shortened. Never prints raw bytes from the file.
pub(super) fn show(s: &str) -> String {
    keys::show_bytes(s.as_bytes())
}

const WS: [char; 2] = [' ', '\t'];

/// One line of a trust file, checked to be plain text.
struct TextLine<'a> {
    number: usize,
    text: &'a str,
    /// The line ended in CR LF (the CR is not in `text`).
    crlf: bool,
}

/// Split a trust file into lines, refusing what is not plain text: a UTF-8
/// byte order mark, NUL bytes, invalid UTF-8 and control characters other
/// than tab (a CR is allowed only right before the LF).
fn text_lines<'a>(path: &str, data: &'a [u8]) -> Result<Vec<TextLine<'a>>> {
    if data.starts_with(b"\xef\xbb\xbf") {
        return Err(line_err(
            path,
            1,
            "the file starts with a UTF-8 byte order mark (BOM), which OpenSSH reads as part of the first line; \
             it was probably saved by Notepad: save it as UTF-8 without BOM",
        ));
    }
    let mut out = Vec::new();
    let mut pieces: Vec<&[u8]> = data.split(|&b| b == b'\n').collect();
    if pieces.last().is_some_and(|l| l.is_empty()) {
        pieces.pop();
    }
    for (i, raw) in pieces.into_iter().enumerate() {
        let number = i + 1;
        let (raw, crlf) = match raw.strip_suffix(b"\r") {
            Some(r) => (r, true),
            None => (raw, false),
        };
        if let Some(col) = raw.iter().position(|&b| b == 0) {
            return Err(line_err(
                path,
                number,
                format!("NUL byte at column {}: this is not a text file", col + 1),
            ));
        }
        let text = std::str::from_utf8(raw).map_err(|e| {
            let at = e.valid_up_to();
            line_err(
                path,
                number,
                format!(
                    "not UTF-8 text (byte 0x{:02x} at column {})",
                    raw[at],
                    at + 1
                ),
            )
        })?;
        if let Some((col, c)) = text
            .char_indices()
            .find(|&(_, c)| c.is_control() && c != '\t')
        {
            let what = if c == '\r' {
                "a carriage return (CR) inside the line".to_string()
            } else {
                format!("the control character {}", c.escape_default())
            };
            return Err(line_err(
                path,
                number,
                format!("{what} at column {}", col + 1),
            ));
        }
        out.push(TextLine { number, text, crlf });
    }
    Ok(out)
}

/// Read a trust file, at most `MAX_TRUST_FILE` bytes.
fn read_file(p: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(p).map_err(|e| Error::io_read(p, e))?;
    let mut data = Vec::new();
    f.take(MAX_TRUST_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::io_read(p, e))?;
    if data.len() as u64 > MAX_TRUST_FILE {
        return Err(file_err(
            &p.display().to_string(),
            format!("larger than {} MiB", MAX_TRUST_FILE >> 20),
        ));
    }
    Ok(data)
}

// --- times -------------------------------------------------------------------

/// Parse `YYYYMMDD`, `YYYYMMDDHHMM` or `YYYYMMDDHHMMSS`, optionally followed
/// by `Z` or `UTC` (any case), as OpenSSH's `parse_absolute_time`. Times are
/// always taken as UTC: see docs/format.md §6 (ssh-keygen uses the local zone
/// without a suffix). Refused where OpenSSH refuses (the epoch itself and
/// earlier) and also for impossible dates (31 February, second 60), which
/// OpenSSH would roll over into the next month or minute.
pub fn parse_ssh_time(s: &str) -> Option<SystemTime> {
    let l = s.len();
    // Suffixes are ASCII: slice only at character boundaries (a multi-byte
    // character at the end used to panic here).
    let digits = if l > 1 && s.is_char_boundary(l - 1) && s[l - 1..].eq_ignore_ascii_case("z") {
        &s[..l - 1]
    } else if l > 3 && s.is_char_boundary(l - 3) && s[l - 3..].eq_ignore_ascii_case("utc") {
        &s[..l - 3]
    } else {
        s
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) || ![8, 12, 14].contains(&digits.len()) {
        return None;
    }
    let n = |a: usize, b: usize| {
        digits
            .get(a..b)
            .map_or(0, |v| v.parse::<u32>().unwrap_or(0))
    };
    let (year, month, day) = (n(0, 4), n(4, 6), n(6, 8));
    let (hour, minute, second) = (n(8, 10), n(10, 12), n(12, 14));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let mdays = [
        31,
        if leap { 29 } else { 28 },
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    if !(1..=12).contains(&month)
        || day < 1
        || day > mdays[month as usize - 1]
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = days * 86400 + hour as i64 * 3600 + minute as i64 * 60 + second as i64;
    if secs <= 0 {
        return None;
    }
    Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
}

/// Days from 1970-01-01 to a valid date (Howard Hinnant's days_from_civil).
fn days_from_civil(year: u32, month: u32, day: u32) -> i64 {
    let y = if month <= 2 {
        year as i64 - 1
    } else {
        year as i64
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146097 + doe - 719468
}

// --- revoked keys ------------------------------------------------------------

/// Why a revoked-keys line is not a public key.
fn not_a_key(s: &str) -> String {
    let first = &s[..s.find(WS).unwrap_or(s.len())];
    let lower = first.to_ascii_lowercase();
    if ["hash:", "key:", "sha1:", "sha256:", "id:", "serial:"]
        .iter()
        .any(|p| lower.starts_with(p))
    {
        return format!(
            "{} is KRL specification text, which ssh-keygen -r does not read: compile the file into a KRL \
             with `ssh-keygen -k -f revoked.krl SPECFILE` and give revoked.krl",
            show(first)
        );
    }
    if let Some(c) = near_key_type(first) {
        return format!(
            "unknown key type {}: key types are case-sensitive, write {c}",
            show(first)
        );
    }
    if looks_like_option(first) || first.contains('=') {
        return "a revoked-keys file takes no options: list bare public keys (KEYTYPE BASE64 [COMMENT])".into();
    }
    if s.split(WS).skip(1).any(|w| key_type(w).is_some()) {
        return format!(
            "a revoked-keys file lists bare public keys (KEYTYPE BASE64 [COMMENT]); this line has {} before the key \
             (an allowed_signers line?)",
            show(first)
        );
    }
    format!(
        "not a public key: expected KEYTYPE BASE64 [COMMENT], e.g. ssh-ed25519 AAAA…, found {}",
        show(first)
    )
}

/// Parse a revoked-keys file: a binary KRL (`ssh-keygen -k`) if it starts
/// with the KRL magic, otherwise public keys one per line as OpenSSH's
/// `sshkey_in_file` reads them. No line is ever ignored: anything but a
/// blank line, a `#` comment or a public key is an error.
pub fn parse_revoked(path: &str, data: impl AsRef<[u8]>) -> Result<Revoked> {
    let data = data.as_ref();
    if data.starts_with(krl::MAGIC) {
        return krl::parse(data).map_err(|e| file_err(path, format!("bad binary KRL: {e}")));
    }
    if data.starts_with(b"SSHKRL") {
        return Err(file_err(
            path,
            "looks like a damaged binary KRL (the KRL magic is incomplete)",
        ));
    }
    let mut out = Revoked::default();
    for l in text_lines(path, data)? {
        let s = l.text.trim_start_matches(WS);
        if s.starts_with('#') {
            continue;
        }
        if s.is_empty() {
            if l.crlf {
                return Err(line_err(
                    path,
                    l.number,
                    "a blank line ending in CR LF: ssh-keygen -r refuses this file; save it with Unix (LF) line endings",
                ));
            }
            continue;
        }
        match read_key_field(s) {
            Some(Ok((Key::Usable(k), _))) => out.insert(&k),
            // OpenSSH skips RSA keys below 1024 bits here (SSH_ERR_KEY_LENGTH).
            Some(Ok((Key::Other | Key::ShortRsa, _))) => {}
            Some(Err(e)) => return Err(line_err(path, l.number, e)),
            None => return Err(line_err(path, l.number, not_a_key(s))),
        }
    }
    Ok(out)
}

impl TrustStore {
    /// Read an allowed_signers file and, if given, a revoked-keys file (one
    /// public key per line, or a binary KRL), as `ssh-keygen -Y verify -f
    /// -r` reads them.
    pub fn load(allowed: &Path, revoked: Option<&Path>) -> Result<TrustStore> {
        // Escaped once: every message about the file quotes it (decision 71).
        let name = crate::base::names::escape(allowed);
        let signers = parse_allowed_signers(&name, read_file(allowed)?)?;
        let revoked = match revoked {
            Some(p) => parse_revoked(&crate::base::names::escape(p), read_file(p)?)?,
            None => Revoked::default(),
        };
        Ok(TrustStore {
            signers,
            revoked,
            source: name,
        })
    }

    /// A store that trusts exactly `key`, for any principal, namespace and
    /// time, and revokes nothing (export's read-back of what that key just
    /// signed). `source` names it in messages.
    pub fn only(key: PublicKey, source: &str) -> TrustStore {
        TrustStore {
            signers: vec![AllowedSigner {
                line: 0,
                principals: "*".into(),
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key,
            }],
            revoked: Revoked::default(),
            source: source.into(),
        }
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
        let lines: Vec<&AllowedSigner> = self
            .for_principal(key, principal, &fp)?
            .into_iter()
            .filter(|s| {
                s.namespaces
                    .as_deref()
                    .is_none_or(|ns| match_pattern_list(BUNDLE_NAMESPACE, ns))
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
            match self.outside_window(s, &fp, created) {
                Some(e) => last = Some(e),
                None => return Ok(s),
            }
        }
        Err(last
            .unwrap_or_else(|| Error::new(Code::SigWindow, "no trust line admits the signing key")))
    }

    /// The lines of `key` (whose fingerprint is `fp`) whose principals match
    /// `principal`; an error if the key has no line, or none for it.
    fn for_principal(
        &self,
        key: &PublicKey,
        principal: &str,
        fp: &str,
    ) -> Result<Vec<&AllowedSigner>> {
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
            let seen: Vec<String> = self
                .signers
                .iter()
                .filter(|s| s.key == *key)
                .map(|s| format!("line {}: {}", s.line, show(&s.principals)))
                .collect();
            return Err(Error::new(
                Code::SigPrincipal,
                format!(
                    "signing key {fp} is trusted in {} but not for {principal:?} ({})",
                    self.source,
                    seen.join("; ")
                ),
            )
            .with_hint(format!(
                "the principals of the key's line must name the GHES host {principal:?} (or match it, e.g. *.example.com); \
                 fix them in {}, or the exporter signed with the key of another instance",
                self.source
            )));
        }
        Ok(lines)
    }

    /// Why line `s` does not admit a bundle made at `created` (its
    /// valid-after / valid-before window), or `None` if it does.
    fn outside_window(&self, s: &AllowedSigner, fp: &str, created: SystemTime) -> Option<Error> {
        let made = humantime::format_rfc3339_seconds(created);
        if s.valid_after.is_some_and(|t| created < t) {
            let when = fmt_time(s.valid_after);
            return Some(
                Error::new(
                    Code::SigWindow,
                    format!(
                        "signing key {fp} is valid only after {when} ({}:{}, valid-after) but the bundle was made {made}",
                        self.source, s.line
                    ),
                )
                .with_hint(format!(
                    "the importer's trust line says the key was not in service yet; if it was (valid-after is meant \
                     to be the day of the key ceremony, not a future date), correct valid-after on line {} of {} \
                     to a date on or before {made}; otherwise re-export with the key in service",
                    s.line, self.source
                )),
            );
        }
        if s.valid_before.is_some_and(|t| created > t) {
            let when = fmt_time(s.valid_before);
            return Some(
                Error::new(
                    Code::SigWindow,
                    format!(
                        "signing key {fp} was valid only before {when} ({}:{}, valid-before) but the bundle was made {made}",
                        self.source, s.line
                    ),
                )
                .with_hint(format!(
                    "the key was retired before the bundle was made: re-export with the current key; if the key \
                     is meant to be still in service, extend valid-before on line {} of {}",
                    s.line, self.source
                )),
            );
        }
        None
    }
}

fn fmt_time(t: Option<SystemTime>) -> String {
    humantime::format_rfc3339_seconds(t.unwrap_or(UNIX_EPOCH + Duration::ZERO)).to_string()
}

/// OpenSSH `match_pattern`: `*` and `?` wildcards over bytes, case-sensitive.
fn match_pattern(s: &str, pat: &str) -> bool {
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

/// OpenSSH `match_pattern_list(s, list, 0)` == 1: the list is split at
/// commas with nothing trimmed; `!pattern` that matches vetoes the whole
/// list (OpenSSH returns -1); otherwise some plain pattern must match.
/// Case-sensitive. A pattern of 1023 bytes or more makes the list match
/// nothing, as in OpenSSH (its pattern buffer is 1024 bytes).
pub fn match_pattern_list(s: &str, list: &str) -> bool {
    let mut matched = false;
    if list.is_empty() {
        return false;
    }
    let list = list.strip_suffix(',').unwrap_or(list);
    for p in list.split(',') {
        let (neg, p) = match p.strip_prefix('!') {
            Some(n) => (true, n),
            None => (false, p),
        };
        if p.len() >= 1023 {
            return false;
        }
        if match_pattern(s, p) {
            if neg {
                return false;
            }
            matched = true;
        }
    }
    matched
}

#[cfg(test)]
mod tests;
