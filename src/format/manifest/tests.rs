use super::*;

pub fn sample() -> Manifest {
    Manifest {
        format: FormatName::AirlockBundle,
        version: FormatVersion::V1,
        bundle_id: BundleId::parse("0123456789abcdef0123456789abcdef").unwrap(),
        created: Timestamp::parse("2026-11-28T00:00:00Z").unwrap(),
        expires: Timestamp::parse("2026-12-28T00:00:00Z").unwrap(),
        tool: "airlock 0.1.0".into(),
        source: Source::instance(
            "ghes.example.com",
            Some("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into()),
        ),
        sequence: Sequence {
            key: Fingerprint::parse(&format!("SHA256:{}", "A".repeat(43))).unwrap(),
            number: 1,
        },
        payload: vec![PayloadEntry {
            name: "payload/license-usage.json".into(),
            size: 3,
            sha256: HexDigest::parse(&"0".repeat(64)).unwrap(),
            kind: PayloadKind::Usage,
            reference: None,
            encryption: None,
        }],
        recipients: vec![],
    }
}

/// A licence bundle's manifest (format version 3).
pub fn licence_sample() -> Manifest {
    let mut m = sample();
    m.version = FormatVersion::V3;
    m.source = Source::enterprise(EnterpriseSlug::parse("octo-corp").unwrap());
    let r = LicenceReference::parse("ABC123").unwrap();
    m.payload[0].name = r.member_name();
    m.payload[0].kind = PayloadKind::Licence;
    m.payload[0].reference = Some(r);
    m
}

#[test]
fn round_trip() {
    let m = sample();
    assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
}

/// The sample's JSON with one text replaced.
fn edited(from: &str, to: &str) -> String {
    let text = String::from_utf8(sample().to_bytes()).unwrap();
    assert!(text.contains(from), "{from}");
    text.replacen(from, to, 1)
}

#[test]
fn rejects_bad_fields() {
    for (from, to) in [
        (
            "00:00:00Z\",\n  \"expires",
            "00:00:00+00:00\",\n  \"expires",
        ),
        ("2026-12-28T00:00:00Z", "2026-11-28T00:00:00Z"),
        ("2026-12-28T00:00:00Z", "2027-12-28T00:00:00Z"),
        ("\"ghes-license-usage\"", "\"GHES-license-usage\""),
        (
            "\"ghes-license-usage\"",
            "\"file\", \"encryption\": \"age\"",
        ),
        ("0123456789abcdef", "0123456789ABCDEF"),
        ("\"SHA256:", "\"MD5:AAAAAAA"),
        ("\"tool\": \"airlock 0.1.0\"", "\"tool\": \"\""),
        ("\"number\": 1", "\"number\": 0"),
    ] {
        let bad = edited(from, to);
        assert_eq!(
            Manifest::parse(bad.as_bytes()).err().map(|e| e.code),
            Some(Code::ManifestInvalid),
            "{to}"
        );
    }
    let mut m = sample();
    m.payload.push(m.payload[0].clone());
    assert!(Manifest::parse(&m.to_bytes()).is_err());
    assert!(m.check().is_err());
    let v4 = edited("\"version\": 1", "\"version\": 4");
    assert_eq!(
        Manifest::parse(v4.as_bytes()).err().unwrap().code,
        Code::FormatVersion
    );
    let extra = String::from_utf8(sample().to_bytes())
        .unwrap()
        .replacen('{', "{\"evil\":1,", 1);
    assert_eq!(
        Manifest::parse(extra.as_bytes()).err().unwrap().code,
        Code::ManifestInvalid
    );
}

/// Regression (outside test): `null` optional fields, an empty
/// recipient list, a non-integer version and sequence numbers past 2^53
/// were accepted or misreported.
#[test]
fn strict_optional_fields_versions_and_sequences() {
    let text = String::from_utf8(sample().to_bytes()).unwrap();
    for (from, to) in [
        (
            "\"server_id\": \"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"",
            "\"server_id\": null",
        ),
        (
            "\"kind\": \"ghes-license-usage\"",
            "\"kind\": \"ghes-license-usage\", \"encryption\": null",
        ),
        ("\"payload\": [", "\"recipients\": [], \"payload\": ["),
        ("\"version\": 1", "\"version\": 1.0"),
        ("\"version\": 1", "\"version\": -1"),
        ("\"version\": 1", "\"version\": \"1\""),
        ("\"number\": 1", "\"number\": 9007199254740992"),
        ("\"number\": 1", "\"number\": 9223372036854775808"),
        ("\"number\": 1", "\"number\": 18446744073709551615"),
        ("\"number\": 1", "\"number\": 18446744073709551616"),
    ] {
        assert!(text.contains(from), "{from}");
        let bad = text.replacen(from, to, 1);
        let err = Manifest::parse(bad.as_bytes())
            .err()
            .unwrap_or_else(|| panic!("accepted {to}"));
        assert_eq!(err.code, Code::ManifestInvalid, "{to}: {err}");
    }
    let ok = text.replacen("\"number\": 1", "\"number\": 9007199254740991", 1);
    assert_eq!(
        Manifest::parse(ok.as_bytes()).unwrap().sequence.number,
        MAX_SEQUENCE
    );
}

fn hybrid(m: &mut Manifest) -> String {
    let r = crate::crypto::crypt::generate_hybrid_identity("x").1;
    m.payload[0].name = "payload/license-usage.json.age".into();
    m.payload[0].encryption = Some(Encryption::Age);
    m.recipients = vec![Recipient::MlKem768X25519(r.clone())];
    m.version = FormatVersion::V2;
    r
}

/// Format v2 is v1 plus post-quantum recipients, written exactly when
/// they are listed; mixing and non-canonical keys are refused.
#[test]
fn version_2_is_for_post_quantum_recipients_only() {
    let mut m = sample();
    let r = hybrid(&mut m);
    assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    assert_eq!(version_for(&m.recipients), FormatVersion::V2);
    assert_eq!(version_for(&[]), FormatVersion::V1);

    let code = |m: &Manifest| Manifest::parse(&m.to_bytes()).err().map(|e| e.code);
    let text = |m: &Manifest| String::from_utf8(m.to_bytes()).unwrap();
    // Version 1 with a hybrid recipient; version 2 without one.
    let mut v1 = m.clone();
    v1.version = FormatVersion::V1;
    assert_eq!(code(&v1), Some(Code::ManifestInvalid));
    let mut v2 = sample();
    v2.version = FormatVersion::V2;
    assert_eq!(code(&v2), Some(Code::ManifestInvalid));
    // Version 4 is a format this airlock does not know; version 3 is
    // a licence bundle's, not this.
    let v4 = text(&m).replacen("\"version\": 2", "\"version\": 4", 1);
    assert_eq!(
        Manifest::parse(v4.as_bytes()).err().map(|e| e.code),
        Some(Code::FormatVersion)
    );
    let v3 = text(&m).replacen("\"version\": 2", "\"version\": 3", 1);
    assert_eq!(
        Manifest::parse(v3.as_bytes()).err().map(|e| e.code),
        Some(Code::ManifestInvalid)
    );
    // Mixed with a classical recipient.
    let mut mixed = m.clone();
    mixed.recipients.push(Recipient::X25519(
        crate::crypto::crypt::generate_identity("x").1,
    ));
    assert_eq!(code(&mixed), Some(Code::ManifestInvalid));
    // A hybrid key listed as x25519, an uppercase or damaged one, a work factor.
    let listed = format!("\"type\": \"mlkem768x25519\",\n      \"recipient\": \"{r}\"");
    for to in [
        format!("\"type\": \"x25519\",\n      \"recipient\": \"{r}\""),
        listed.replace(&r, &r.to_ascii_uppercase()),
        listed.replace(&r, &r[..r.len() - 1]),
        format!("{listed}, \"work_factor\": 10"),
    ] {
        let t = text(&m);
        assert!(t.contains(&listed), "{t}");
        let bad = t.replacen(&listed, &to, 1);
        assert_eq!(
            Manifest::parse(bad.as_bytes()).err().map(|e| e.code),
            Some(Code::ManifestInvalid),
            "{to}"
        );
    }
    // At most MAX_HYBRID_RECIPIENTS.
    let mut many = m.clone();
    many.recipients = (0..=MAX_HYBRID_RECIPIENTS)
        .map(|_| Recipient::MlKem768X25519(crate::crypto::crypt::generate_hybrid_identity("x").1))
        .collect();
    assert_eq!(code(&many), Some(Code::ManifestInvalid));
    many.recipients.pop();
    assert!(Manifest::parse(&many.to_bytes()).is_ok());
}

/// Version 3 is a licence bundle and nothing else: one clear
/// `ghes-license` member named after its signed reference, from an
/// enterprise; a licence in another version, or version 3 without one,
/// is refused (decision 81).
#[test]
fn version_3_is_a_licence_bundle_and_only_that() {
    let m = licence_sample();
    assert_eq!(Manifest::parse(&m.to_bytes()).unwrap(), m);
    assert_eq!(m.kind(), BundleKind::Licence);
    assert_eq!(sample().kind(), BundleKind::Usage);
    assert_eq!(m.source.principal(), "octo-corp");
    assert_eq!(m.source.host(), "");
    let (e, r) = m.licence().unwrap();
    assert_eq!((e.as_str(), r.as_str()), ("octo-corp", "ABC123"));
    assert!(sample().licence().is_none());
    assert_eq!(
        version_for_payload(&m.payload, &m.recipients),
        FormatVersion::V3
    );
    let text = String::from_utf8(m.to_bytes()).unwrap();
    assert!(text.contains("\"source\": {\n    \"enterprise\": \"octo-corp\"\n  }"));
    assert!(text.contains("\"kind\": \"ghes-license\",\n      \"reference\": \"ABC123\""));
    let code = |m: &Manifest| Manifest::parse(&m.to_bytes()).err().map(|e| e.code);
    let mut bad = Vec::new();
    // A licence manifest claiming version 1 or 2.
    for v in [FormatVersion::V1, FormatVersion::V2] {
        let mut x = m.clone();
        x.version = v;
        bad.push(x);
    }
    // Version 3 without a licence: a usage bundle, or a file.
    let mut x = sample();
    x.version = FormatVersion::V3;
    bad.push(x);
    // The name disagrees with the signed reference.
    let mut x = m.clone();
    x.payload[0].name = "payload/github-enterprise-ABC124.ghl".into();
    bad.push(x);
    // No reference; a reference on a usage member.
    let mut x = m.clone();
    x.payload[0].reference = None;
    bad.push(x);
    let mut x = sample();
    x.payload[0].reference = LicenceReference::parse("ABC123");
    bad.push(x);
    // An instance source, both sources, a server id beside an enterprise.
    let mut x = m.clone();
    x.source = sample().source;
    bad.push(x);
    let mut x = m.clone();
    x.source.host_name = Some("octo-corp".into());
    bad.push(x);
    let mut x = m.clone();
    x.source.server_id = sample().source.server_id;
    bad.push(x);
    // An enterprise source on a usage bundle.
    let mut x = sample();
    x.source.enterprise = m.source.enterprise.clone();
    bad.push(x);
    let mut x = sample();
    x.source = m.source.clone();
    bad.push(x);
    // A second member; encrypted.
    let mut x = m.clone();
    let mut second = sample().payload[0].clone();
    second.kind = PayloadKind::File;
    x.payload.push(second);
    bad.push(x);
    let mut x = m.clone();
    x.payload[0].name.push_str(".age");
    x.payload[0].encryption = Some(Encryption::Age);
    x.recipients = vec![Recipient::X25519("age1x".into())];
    bad.push(x);
    for (i, x) in bad.iter().enumerate() {
        assert_eq!(code(x), Some(Code::ManifestInvalid), "case {i}");
        assert!(x.check().is_err(), "case {i}");
    }
    // Spellings the schema refuses: a capitalised slug, `null`, a
    // reference with a space.
    for (from, to) in [
        ("\"octo-corp\"", "\"Octo-Corp\""),
        ("\"reference\": \"ABC123\"", "\"reference\": null"),
        ("\"enterprise\": \"octo-corp\"", "\"enterprise\": null"),
    ] {
        let t = text.replacen(from, to, 1);
        assert_ne!(t, text);
        assert_eq!(
            Manifest::parse(t.as_bytes()).err().map(|e| e.code),
            Some(Code::ManifestInvalid),
            "{to}"
        );
    }
    let v4 = text.replacen("\"version\": 3", "\"version\": 4", 1);
    assert_eq!(
        Manifest::parse(v4.as_bytes()).err().map(|e| e.code),
        Some(Code::FormatVersion)
    );
}

#[test]
fn schema_lists_every_field() {
    // docs/manifest.schema.json must describe exactly what we write.
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/manifest.schema.json")).unwrap();
    let props = schema["properties"].as_object().unwrap();
    let mut m = sample();
    m.recipients.push(Recipient::X25519("age1x".into()));
    let v = serde_json::to_value(&m).unwrap();
    for k in v.as_object().unwrap().keys() {
        assert!(props.contains_key(k), "schema lacks {k}");
    }
    for k in props.keys() {
        assert!(v.get(k).is_some(), "schema has {k} that the manifest lacks");
    }
    // The source's and a payload entry's fields, over a usage and a
    // licence manifest (encrypted: `encryption` is written).
    let mut enc = sample();
    enc.payload[0].encryption = Some(Encryption::Age);
    let both = [enc, licence_sample()].map(|m| serde_json::to_value(m).unwrap());
    for (schema_at, value_at) in [
        ("/properties/source/properties", "/source"),
        ("/properties/payload/items/properties", "/payload/0"),
    ] {
        let want: HashSet<&String> = schema
            .pointer(schema_at)
            .and_then(|p| p.as_object())
            .unwrap()
            .keys()
            .collect();
        let got: HashSet<&String> = both
            .iter()
            .flat_map(|v| v.pointer(value_at).unwrap().as_object().unwrap().keys())
            .collect();
        assert_eq!(want, got, "{schema_at}");
    }
    let enums = |at: &str| schema.pointer(at).unwrap().clone();
    assert_eq!(
        enums("/properties/version/enum"),
        serde_json::json!([1, 2, 3])
    );
    assert_eq!(
        enums("/properties/payload/items/properties/kind/enum"),
        serde_json::json!(["ghes-license-usage", "file", "ghes-license"])
    );
}
