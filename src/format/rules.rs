//! The format's fixed rules that the pipelines share: member names, the
//! I/O chunk, and the names airlock derives for what it writes.

use sha2::{Digest, Sha256};

use crate::crypto::sshsig::SshSig;
use crate::format::manifest::{BundleId, Fingerprint, Manifest, PayloadEntry, Timestamp};

/// The member name of a signature: its key's hex id.
pub fn signature_member_name(sig: &SshSig) -> String {
    format!("signatures/{}.sig", sig.public_key.id_hex())
}

/// A deterministic bundle id: the same inputs give the same id.
pub fn bundle_id(
    fp: &Fingerprint,
    seq: u64,
    created: Timestamp,
    payload: &[PayloadEntry],
) -> BundleId {
    let mut h = Sha256::new();
    h.update(b"airlock-bundle-id\0");
    h.update(fp.as_str().as_bytes());
    h.update(seq.to_be_bytes());
    h.update(created.to_string().as_bytes());
    for p in payload {
        h.update(p.name.as_bytes());
        h.update(b"\0");
        h.update(p.sha256.as_str().as_bytes());
    }
    BundleId::parse(&hex::encode(&h.finalize()[..16])).expect("32 lowercase hex digits")
}

/// The name a bundle gets in an output directory.
pub fn derived_name(m: &Manifest) -> String {
    // A licence bundle: ENTERPRISE_licence-REFERENCE_… (decision 81).
    let source = match m.licence() {
        Some((enterprise, reference)) => format!("{enterprise}_licence-{reference}"),
        None => m.source.host().to_string(),
    };
    format!(
        "{}_{}_{:06}.airlock.zip",
        source,
        m.created_compact(),
        m.sequence.number
    )
}

/// The name a payload member gets when written out: its name under
/// `payload/`, without `.age` once decrypted.
pub fn output_name(p: &PayloadEntry) -> &str {
    let name = p.name.strip_prefix("payload/").unwrap_or(&p.name);
    if p.encryption.is_some() {
        name.strip_suffix(".age").unwrap_or(name)
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::manifest::{HexDigest, PayloadKind};

    #[test]
    fn bundle_ids_are_deterministic() {
        let p = vec![PayloadEntry {
            name: "payload/a".into(),
            size: 1,
            sha256: HexDigest::parse(&"0".repeat(64)).unwrap(),
            kind: PayloadKind::File,
            reference: None,
            encryption: None,
        }];
        let fp = Fingerprint::parse(&format!("SHA256:{}", "x".repeat(43))).unwrap();
        let t = Timestamp::parse("2026-11-28T00:00:00Z").unwrap();
        let a = bundle_id(&fp, 1, t, &p);
        assert_eq!(a, bundle_id(&fp, 1, t, &p));
        assert_ne!(a, bundle_id(&fp, 2, t, &p));
        assert_eq!(a.len(), 32);
    }
}

/// A payload name (docs/format.md §5: letters, digits, `.`, `_`, `-`, not
/// starting with a dot) for a file name that has other characters, such as
/// a browser's second download `license-usage (1).json`: each run of other
/// characters (or bytes that are not UTF-8) becomes one `_`, a `_` before a
/// `.` or at either end is dropped, and leading dots go. `None` when nothing
/// usable is left. Names that are already valid come back unchanged.
pub fn payload_name(original: &[u8]) -> Option<String> {
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-');
    let mut out = String::with_capacity(original.len());
    let mut gap = false;
    for &b in original {
        if ok(b) {
            if gap && !out.is_empty() && b != b'.' {
                out.push('_');
            }
            gap = false;
            out.push(b as char);
        } else {
            gap = true;
        }
    }
    let out = out.trim_start_matches(['.', '_']).to_string();
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod payload_name_tests {
    use super::payload_name;

    #[test]
    fn ordinary_names_become_payload_names() {
        let n = |s: &[u8]| payload_name(s);
        assert_eq!(
            n(b"license-usage.json").as_deref(),
            Some("license-usage.json")
        );
        assert_eq!(
            n(b"license-usage (1).json").as_deref(),
            Some("license-usage_1.json")
        );
        assert_eq!(
            n(b"usage [copy] 2.json").as_deref(),
            Some("usage_copy_2.json")
        );
        assert_eq!(n(b"\xffusage\xfe.json").as_deref(), Some("usage.json"));
        assert_eq!(n(b".hidden file").as_deref(), Some("hidden_file"));
        assert_eq!(n(b"caf\xc3\xa9.json").as_deref(), Some("caf.json"));
        assert_eq!(n(b"  (  )  "), None);
        assert_eq!(n(b"..."), None);
    }
}
