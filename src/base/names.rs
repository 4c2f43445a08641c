//! File names as they are: bytes, up to 255 of them, not necessarily UTF-8,
//! possibly with control characters (decision 71). This module owns the three
//! things every other part needs to handle such a name safely:
//!
//! - showing it to a person or a log ([`escape`], [`shown`]): one line,
//!   no terminal control, reversible;
//! - putting it in JSON ([`insert`], [`insert_list`], [`serialize_lossy`],
//!   [`bytes_field`]):
//!   the usual string field, lossy, plus `FIELD_bytes` (standard base64 of
//!   the exact bytes) only when the name is not UTF-8;
//! - deriving a new name from it ([`derived_name`]) that still fits the
//!   255-byte limit of Linux file systems.
//!
//! ## Escaping
//! Valid UTF-8 text is shown as is, except: `\` as `\\`; newline, tab and
//! carriage return as `\n`, `\t`, `\r`; every other C0 control and DEL as
//! `\xNN` (ESC is `\x1b`); C1 controls, bidirectional and zero-width format
//! characters and the line and paragraph separators as `\u{NNNN}`. A byte
//! that is not part of valid UTF-8 is `\xNN` with NN ≥ 80, which valid text
//! never produces, so the escaped form maps back to exactly one name. No
//! quotes are added: callers quote where their sentence needs it.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use base64::Engine;
use sha2::{Digest, Sha256};

/// The longest file name (one path component) Linux file systems accept,
/// in bytes.
pub const NAME_MAX: usize = 255;

/// Hex digits of the SHA-256 of the original name in a shortened name: 64
/// bits, enough that two different long names in one folder do not meet by
/// chance (callers still never overwrite on a clash).
const HASH_HEX: usize = 16;

/// Separates the kept part of a shortened name from its hash.
const HASH_SEP: char = '~';

/// `name` escaped for human output and logs (rules in the module doc).
pub fn escape(name: impl AsRef<OsStr>) -> String {
    let bytes = name.as_ref().as_bytes();
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(&mut out, c);
        }
        for b in chunk.invalid() {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Free text for one line of human output or a log (an error's cause, which
/// may quote a name): control and format characters escaped as [`escape`]
/// does, but backslashes kept, since the text is not a name to map back.
pub fn one_line(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push(c),
            c => push_char(&mut out, c),
        }
    }
    out
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\0'..='\x1f' | '\x7f' => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if needs_unicode_escape(c) => out.push_str(&format!("\\u{{{:04x}}}", c as u32)),
        c => out.push(c),
    }
}

/// Characters that are valid text but can hide, reorder or break lines on
/// a terminal: C1 controls, bidirectional controls (the "Trojan Source"
/// set), zero-width characters, line and paragraph separators.
fn needs_unicode_escape(c: char) -> bool {
    matches!(c,
        '\u{80}'..='\u{9f}'
        | '\u{061c}'
        | '\u{200b}'..='\u{200f}'
        | '\u{2028}'..='\u{202e}'
        | '\u{2060}'..='\u{2069}'
        | '\u{feff}')
}

/// A name that formats as [`escape`] does, for `format!` arguments:
/// `outln!("bundle {}", names::shown(&path))`.
pub fn shown<T: AsRef<OsStr> + ?Sized>(name: &T) -> Shown<'_> {
    Shown(name.as_ref())
}

/// See [`shown`].
#[derive(Debug, Clone, Copy)]
pub struct Shown<'a>(&'a OsStr);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&escape(self.0))
    }
}

/// `name` as a JSON string: valid UTF-8 as is, anything else with U+FFFD
/// in place of the invalid bytes (the exact bytes go in `FIELD_bytes`).
pub fn lossy(name: impl AsRef<OsStr>) -> String {
    name.as_ref().to_string_lossy().into_owned()
}

/// Standard base64 of `name`'s bytes when it is not UTF-8, else `None`:
/// the value of a `FIELD_bytes` JSON field. For derived structs:
/// `#[serde(skip_serializing_if = "Option::is_none")] file_bytes: Option<String>`.
pub fn bytes_field(name: impl AsRef<OsStr>) -> Option<String> {
    let name = name.as_ref();
    match name.to_str() {
        Some(_) => None,
        None => Some(base64::engine::general_purpose::STANDARD.encode(name.as_bytes())),
    }
}

/// `#[serde(serialize_with = "names::serialize_lossy")]` for a path field:
/// the lossy string (serde's own impl fails on a path that is not UTF-8).
pub fn serialize_lossy<T, S>(name: &T, s: S) -> Result<S::Ok, S::Error>
where
    T: AsRef<OsStr> + ?Sized,
    S: serde::Serializer,
{
    s.serialize_str(&name.as_ref().to_string_lossy())
}

/// Set `obj[key]` to `name` as a lossy string and, when `name` is not UTF-8,
/// `obj[key + "_bytes"]` to its exact bytes in standard base64. Does nothing
/// when `obj` is not a JSON object.
pub fn insert(obj: &mut serde_json::Value, key: &str, name: impl AsRef<OsStr>) {
    let name = name.as_ref();
    if let Some(map) = obj.as_object_mut() {
        map.insert(key.to_string(), serde_json::Value::String(lossy(name)));
        if let Some(b) = bytes_field(name) {
            map.insert(format!("{key}_bytes"), serde_json::Value::String(b));
        }
    }
}

/// Set `obj[key]` to a list of names as lossy strings and, when any of them
/// is not UTF-8, `obj[key + "_bytes"]` to a list of the same length: each
/// name's bytes in standard base64, or `null` for a name that is UTF-8.
/// Does nothing when `obj` is not a JSON object.
pub fn insert_list<T: AsRef<OsStr>>(obj: &mut serde_json::Value, key: &str, names: &[T]) {
    let Some(map) = obj.as_object_mut() else {
        return;
    };
    let strings = names.iter().map(|n| lossy(n).into()).collect();
    map.insert(key.to_string(), serde_json::Value::Array(strings));
    let bytes: Vec<Option<String>> = names.iter().map(bytes_field).collect();
    if bytes.iter().any(Option::is_some) {
        let list = bytes
            .into_iter()
            .map(|b| b.map_or(serde_json::Value::Null, Into::into));
        map.insert(
            format!("{key}_bytes"),
            serde_json::Value::Array(list.collect()),
        );
    }
}

/// `base` followed by `suffix`, shortened to at most [`NAME_MAX`] bytes.
///
/// When `base` + `suffix` fits, that is the result. Otherwise the longest
/// prefix of `base` that leaves room is kept, cut at a character boundary
/// where `base` is UTF-8, followed by `~`, the first 16 hex digits of the
/// SHA-256 of all of `base`, and `suffix`: deterministic, so the same name
/// always gets the same derived name, and two long names that share their
/// first 200-odd bytes still get different ones. `suffix` should be short
/// ASCII (`.reason.json`, `.2.airlock.zip`); a suffix too long to fit is cut.
pub fn derived_name(base: &OsStr, suffix: &str) -> OsString {
    let b = base.as_bytes();
    let s = suffix.as_bytes();
    if b.len() + s.len() <= NAME_MAX {
        let mut v = b.to_vec();
        v.extend_from_slice(s);
        return OsString::from_vec(v);
    }
    let hash = hex::encode(Sha256::digest(b));
    let tag = format!("{HASH_SEP}{}", &hash[..HASH_HEX]);
    let room = NAME_MAX.saturating_sub(tag.len() + s.len());
    let keep = floor_boundary(b, room);
    let mut v = b[..keep].to_vec();
    v.extend_from_slice(tag.as_bytes());
    v.extend_from_slice(s);
    if v.len() > NAME_MAX {
        // Only with a suffix longer than ~238 bytes: cut it, never exceed.
        let cut = floor_boundary(&v, NAME_MAX);
        v.truncate(cut);
    }
    OsString::from_vec(v)
}

/// The largest `n <= max` such that `b[..n]` does not end inside a valid
/// UTF-8 character (bytes that are not valid UTF-8 may be cut anywhere).
fn floor_boundary(b: &[u8], max: usize) -> usize {
    if max >= b.len() {
        return b.len();
    }
    let mut pos = 0;
    for chunk in b.utf8_chunks() {
        for c in chunk.valid().chars() {
            let next = pos + c.len_utf8();
            if next > max {
                return pos;
            }
            pos = next;
        }
        for _ in chunk.invalid() {
            if pos + 1 > max {
                return pos;
            }
            pos += 1;
        }
    }
    pos
}

/// The name made of exactly these bytes.
pub fn from_bytes(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

/// True when `name` ends with `suffix`, compared as bytes: a name that is
/// not UTF-8 still matches (`.airlock.zip` after invalid bytes).
pub fn has_suffix(name: &OsStr, suffix: &str) -> bool {
    name.as_bytes().ends_with(suffix.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(b: &[u8]) -> OsString {
        OsString::from_vec(b.to_vec())
    }

    #[test]
    fn plain_names_are_unchanged() {
        assert_eq!(
            escape("usage-2024-05.airlock.zip"),
            "usage-2024-05.airlock.zip"
        );
        assert_eq!(escape("Grüße März.airlock.zip"), "Grüße März.airlock.zip");
        assert_eq!(escape("a b"), "a b");
    }

    #[test]
    fn controls_and_bad_bytes_are_escaped() {
        assert_eq!(escape("a\nb"), "a\\nb");
        assert_eq!(escape("a\tb\rc"), "a\\tb\\rc");
        assert_eq!(escape("\x1b[31mred"), "\\x1b[31mred");
        assert_eq!(escape("nul\0del\x7f"), "nul\\x00del\\x7f");
        assert_eq!(escape("back\\slash"), "back\\\\slash");
        assert_eq!(escape(os(b"caf\xe9.zip")), "caf\\xe9.zip");
        assert_eq!(escape(os(b"\xff\xfe")), "\\xff\\xfe");
        assert_eq!(escape("x\u{202e}piz.exe"), "x\\u{202e}piz.exe");
        assert_eq!(escape("c1\u{85}"), "c1\\u{0085}");
        assert_eq!(escape("ls\u{2028}ps"), "ls\\u{2028}ps");
        // A truncated multi-byte sequence: each byte shown.
        assert_eq!(escape(os(b"a\xc3")), "a\\xc3");
    }

    #[test]
    fn escaped_names_are_one_line_without_controls() {
        let all: Vec<u8> = (1u8..=255).collect();
        let e = escape(os(&all));
        assert!(e.chars().all(|c| !c.is_control()), "{e:?}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn escaping_is_injective() {
        // A literal backslash-x in a name differs from an invalid byte.
        assert_ne!(escape("\\xe9"), escape(os(b"\xe9")));
        assert_ne!(escape("\\n"), escape("\n"));
        // Valid U+00E9 differs from the invalid byte E9.
        assert_ne!(escape("é"), escape(os(b"\xe9")));
    }

    #[test]
    fn one_line_escapes_controls_only() {
        assert_eq!(
            one_line("cannot read a\nb: \x1b[2J"),
            "cannot read a\\nb: \\x1b[2J"
        );
        assert_eq!(one_line("C:\\dir é"), "C:\\dir é");
    }

    #[test]
    fn shown_formats_like_escape() {
        let p = std::path::PathBuf::from(os(b"dir/a\nb\xff"));
        assert_eq!(format!("{}", shown(&p)), "dir/a\\nb\\xff");
    }

    #[test]
    fn json_adds_bytes_only_when_not_utf8() {
        let mut v = serde_json::json!({"ok": true});
        insert(&mut v, "bundle", "plain\n.zip");
        assert_eq!(v["bundle"], "plain\n.zip");
        assert!(v.get("bundle_bytes").is_none());

        let mut v = serde_json::json!({});
        insert(&mut v, "bundle", os(b"caf\xe9.zip"));
        assert_eq!(v["bundle"], "caf\u{fffd}.zip");
        assert_eq!(v["bundle_bytes"], "Y2Fm6S56aXA=");
        let back = base64::engine::general_purpose::STANDARD
            .decode(v["bundle_bytes"].as_str().unwrap())
            .unwrap();
        assert_eq!(back, b"caf\xe9.zip");

        assert_eq!(bytes_field("a"), None);
    }

    #[test]
    fn json_lists_add_bytes_only_when_one_is_not_utf8() {
        let mut v = serde_json::json!({});
        insert_list(&mut v, "written", &["a", "b"]);
        assert_eq!(v, serde_json::json!({"written": ["a", "b"]}));

        let mut v = serde_json::json!({});
        insert_list(&mut v, "written", &[os(b"a"), os(b"\xff")]);
        assert_eq!(
            v,
            serde_json::json!({"written": ["a", "\u{fffd}"], "written_bytes": [null, "/w=="]})
        );
    }

    #[test]
    fn serialize_lossy_never_fails() {
        #[derive(serde::Serialize)]
        struct R {
            #[serde(serialize_with = "serialize_lossy")]
            path: std::path::PathBuf,
        }
        let r = R {
            path: os(b"x\xffy").into(),
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            "{\"path\":\"x\u{fffd}y\"}"
        );
    }

    #[test]
    fn derived_names_fit_and_are_kept_when_short() {
        assert_eq!(
            derived_name(OsStr::new("a.zip"), ".reason.json"),
            "a.zip.reason.json"
        );
        let exact = "n".repeat(NAME_MAX - 5);
        assert_eq!(derived_name(OsStr::new(&exact), ".json").len(), NAME_MAX);

        for len in [244, 250, 255] {
            let base = "b".repeat(len);
            let d = derived_name(OsStr::new(&base), ".reason.json");
            assert!(d.len() <= NAME_MAX, "{len}: {}", d.len());
            let s = d.to_str().unwrap();
            assert!(s.ends_with(".reason.json"));
            assert!(s.starts_with("bbbb"));
            assert!(s.contains('~'));
        }
    }

    #[test]
    fn derived_names_are_deterministic_and_distinct() {
        let a = format!("{}A", "x".repeat(250));
        let b = format!("{}B", "x".repeat(250));
        let da = derived_name(OsStr::new(&a), ".2.airlock.zip");
        assert_eq!(da, derived_name(OsStr::new(&a), ".2.airlock.zip"));
        assert_ne!(da, derived_name(OsStr::new(&b), ".2.airlock.zip"));
        // The hash is of the whole original name.
        let h = hex::encode(Sha256::digest(a.as_bytes()));
        assert!(da.to_str().unwrap().contains(&format!("~{}", &h[..16])));
    }

    #[test]
    fn derived_names_do_not_split_characters() {
        // 2-byte characters: an odd cut would split one.
        let base = "é".repeat(127); // 254 bytes
        let d = derived_name(OsStr::new(&base), ".reason.json");
        assert!(d.len() <= NAME_MAX);
        assert!(d.to_str().is_some(), "still UTF-8");
        // Invalid bytes are kept as bytes.
        let base = os(&[0xffu8; 250]);
        let d = derived_name(&base, ".reason.json");
        assert_eq!(d.len(), NAME_MAX);
        assert!(d.as_bytes().starts_with(&[0xff; 8]));
    }

    #[test]
    fn an_oversized_suffix_is_cut() {
        let d = derived_name(OsStr::new("name"), &"s".repeat(300));
        assert_eq!(d.len(), NAME_MAX);
    }

    #[test]
    fn suffix_test_works_on_bytes() {
        assert!(has_suffix(&os(b"\xff\xfe.airlock.zip"), ".airlock.zip"));
        assert!(!has_suffix(&os(b"\xff.airlock.zip.part"), ".airlock.zip"));
    }
}
