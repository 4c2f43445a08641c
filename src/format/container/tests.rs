use super::*;

fn build(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut w = Writer::new(io::Cursor::new(Vec::new()));
    for (n, d) in members {
        w.add_bytes(n, d).unwrap();
    }
    w.finish().unwrap().into_inner()
}

fn open(bytes: &[u8]) -> Result<Reader> {
    let mut f = tempfile::tempfile().unwrap();
    f.write_all(bytes).unwrap();
    Reader::open(f)
}

#[test]
fn round_trip() {
    let z = build(&[("payload/a.json", b"{}"), ("manifest.json", b"hello")]);
    let mut r = open(&z).unwrap();
    assert_eq!(r.entries().len(), 2);
    let e = r
        .entries()
        .iter()
        .find(|e| e.name == "manifest.json")
        .unwrap()
        .clone();
    assert_eq!(r.read_small(&e, 100).unwrap(), b"hello");
}

#[test]
fn every_byte_matters() {
    let z = build(&[
        ("payload/a.json", b"{\"x\":1}"),
        ("manifest.json", b"hello"),
    ]);
    for i in 0..z.len() {
        let mut m = z.clone();
        m[i] ^= 0x01;
        let ok = match open(&m) {
            Err(_) => false,
            Ok(mut r) => {
                let entries = r.entries().to_vec();
                entries.iter().all(|e| r.read_small(e, 1000).is_ok())
            }
        };
        assert!(!ok, "flipping byte {i} went unnoticed");
    }
}

#[test]
fn rejects_prepended_and_appended() {
    let z = build(&[("manifest.json", b"x")]);
    let mut pre = b"junk".to_vec();
    pre.extend_from_slice(&z);
    assert!(open(&pre).is_err());
    let mut post = z.clone();
    post.extend_from_slice(b"junk");
    assert!(open(&post).is_err());
}

#[test]
fn rejects_duplicates_and_bad_names() {
    let z = build(&[("payload/a", b"1"), ("payload/A", b"2")]);
    assert_eq!(open(&z).err().unwrap().code, Code::ZipDuplicate);
    for bad in [
        "../x",
        "/etc/passwd",
        "payload/../x",
        "payload/.hidden",
        "payload/a b",
        "x",
        "payload/",
    ] {
        assert!(check_name_syntax(bad).is_err(), "{bad}");
    }
    assert!(check_name_syntax("payload/license-usage.json").is_ok());
}
