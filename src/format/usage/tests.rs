use super::*;

const ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

#[test]
fn recognises_both_forms() {
    let enc = format!(
        r#"{{"instance":{{"server_id":"{ID}","host_name":"ghes.example.com","version":"3.15.2","extra":1}},"users":"QUJD"}}"#
    );
    match sniff(enc.as_bytes()) {
        Sniff::Usage(u) => {
            assert_eq!(u.host_name, "ghes.example.com");
            assert_eq!(u.users, Users::Encrypted);
            assert_eq!(u.version.as_deref(), Some("3.15.2"));
        }
        s => panic!("{s:?}"),
    }
    let clear = format!(
        r#"{{"users":[{{"login":"a"}},{{"login":"b"}}],"instance":{{"server_id":"{ID}","host_name":"h"}}}}"#
    );
    match sniff(clear.as_bytes()) {
        Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 2 }),
        s => panic!("{s:?}"),
    }
}

#[test]
fn other_and_invalid() {
    assert!(matches!(sniff(&b"hello"[..]), Sniff::Other));
    assert!(matches!(sniff(&b"{\"a\":1}"[..]), Sniff::Other));
    assert!(matches!(sniff(&b"[1,2]"[..]), Sniff::Other));
    let bad_id = r#"{"instance":{"server_id":"nope","host_name":"h"}}"#;
    assert!(matches!(sniff(bad_id.as_bytes()), Sniff::Invalid(_)));
    let truncated = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"users":[1,2"#);
    assert!(matches!(sniff(truncated.as_bytes()), Sniff::Invalid(_)));
    let trailing = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}}}} x"#);
    assert!(matches!(sniff(trailing.as_bytes()), Sniff::Invalid(_)));
}

#[test]
fn scanner_handles_escapes_nesting_and_odd_layout() {
    let doc = format!(
        "  {{ \"a\\\"b\" : [1, {{\"x\": [true, null, -1.5e3]}}, \"s\\\\\"],\n \"users\" : [ {{\"emails\":[{{\"primary\":true}}]}} , {{}} ] ,\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\",\"features\":[{{\"n\":\"\\u0041\"}}]}} }}\n"
    );
    match sniff(doc.as_bytes()) {
        Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 2 }),
        s => panic!("{s:?} for {doc}"),
    }
    // Unbalanced or truncated structures after `instance` are invalid.
    for bad in [
        format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"x\":[1,2}}"),
        format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"users\":\"abc"),
        format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"users\":5}}"),
        format!(
            "{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"instance\":{{}}}}"
        ),
    ] {
        assert!(matches!(sniff(bad.as_bytes()), Sniff::Invalid(_)), "{bad}");
    }
    let deep = format!(
        "{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\"}},\"x\":{}{}}}",
        "[".repeat(1000),
        "]".repeat(1000)
    );
    assert!(matches!(sniff(deep.as_bytes()), Sniff::Invalid(_)));
}

#[test]
fn sniffer_thread_matches_direct() {
    let doc = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"users":"QUJD"}}"#);
    let mut s = Sniffer::spawn().unwrap();
    for c in doc.as_bytes().chunks(3) {
        s.feed(c);
    }
    assert!(matches!(s.finish().unwrap(), Sniff::Usage(_)));
}

/// The block and word scans find exactly the first special byte: every
/// byte value at every position of buffers of lengths around the word
/// and block sizes (up to two blocks and a tail), alone and before
/// another special byte.
#[test]
fn plain_prefix_finds_the_first_special_byte() {
    let naive = |b: &[u8]| b.iter().position(|&c| is_special(c)).unwrap_or(b.len());
    for c in 0..=255u8 {
        assert_eq!(
            is_special(c),
            !(0x20..0x80).contains(&c) || c == b'"' || c == b'\\',
            "{c:#x}"
        );
    }
    for len in (0..=17).chain(30..=34).chain(62..=66).chain(126..=140) {
        let plain = vec![b'A'; len];
        assert_eq!(plain_prefix(&plain), len);
        for at in 0..len {
            for c in 0..=255u8 {
                let mut b = plain.clone();
                b[at] = c;
                assert_eq!(plain_prefix(&b), naive(&b), "{c:#x} at {at} of {len}");
                if at + 1 < len {
                    // A second special byte after the first.
                    b[len - 1] = 0x00;
                    assert_eq!(plain_prefix(&b), naive(&b), "{c:#x} at {at} of {len}");
                }
            }
        }
    }
}

/// Hands out 1, 2, 3, 1, 2, 3… bytes per read, so that every multi-byte
/// token (UTF-8 sequences, escapes, literals, the BOM) straddles reads.
struct Trickle<'a> {
    data: &'a [u8],
    n: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        let k = (self.n % 3 + 1).min(out.len()).min(self.data.len());
        self.n += 1;
        out[..k].copy_from_slice(&self.data[..k]);
        self.data = &self.data[k..];
        Ok(k)
    }
}

/// The verdict on `doc`, read whole and trickled (which must agree).
fn verdict(doc: &[u8]) -> Sniff {
    let whole = sniff(doc);
    for skip in 0..3 {
        let trickled = sniff(Trickle { data: doc, n: skip });
        assert_eq!(
            format!("{whole:?}"),
            format!("{trickled:?}"),
            "{}",
            String::from_utf8_lossy(doc)
        );
    }
    whole
}

/// The verdict from `sniff`, trickled reads and a `Sniffer` fed in
/// chunks of 1, 2, … 7 bytes: all must agree.
fn verdict_threaded(doc: &[u8]) -> Sniff {
    let whole = verdict(doc);
    let mut s = Sniffer::spawn().unwrap();
    let (mut rest, mut n) = (doc, 0);
    while !rest.is_empty() {
        let k = (n % 7 + 1).min(rest.len());
        s.feed(&rest[..k]);
        rest = &rest[k..];
        n += 1;
    }
    let threaded = s.finish().unwrap();
    assert_eq!(format!("{whole:?}"), format!("{threaded:?}"));
    whole
}

fn head() -> String {
    format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"x":"#)
}

/// A usage file with `value` as a field after `instance`.
fn after(value: &[u8]) -> Vec<u8> {
    let mut d = head().into_bytes();
    d.extend_from_slice(value);
    d.push(b'}');
    d
}

/// The same, with `value` as a field before `instance`.
fn before(value: &[u8]) -> Vec<u8> {
    let mut d = b"{\"x\":".to_vec();
    d.extend_from_slice(value);
    d.extend_from_slice(
        format!(r#","instance":{{"server_id":"{ID}","host_name":"h"}}}}"#).as_bytes(),
    );
    d
}

fn invalid_reason(doc: &[u8]) -> String {
    match verdict_threaded(doc) {
        Sniff::Invalid(why) => why,
        s => panic!("{s:?} for {}", String::from_utf8_lossy(doc)),
    }
}

/// `value` (after `instance`) is refused for `what`, at byte `at` of the
/// value; the same value before `instance` makes the file opaque.
fn refused(value: &[u8], what: &str, at: usize) {
    let why = invalid_reason(&after(value));
    let want = format!("not valid JSON: {what} at byte {}", head().len() + at);
    assert_eq!(why, want, "{}", String::from_utf8_lossy(value));
    assert!(
        matches!(verdict(&before(value)), Sniff::Other),
        "{}",
        String::from_utf8_lossy(value)
    );
}

#[test]
fn invalid_literals_are_refused() {
    for v in [
        "tru", "nul", "fals", "falsey", "truex", "true_", "nulll", "True", "NaN", "x",
    ] {
        refused(v.as_bytes(), "invalid literal", 0);
    }
    refused(b"[1,tru]", "invalid literal", 3);
    refused(b"{\"a\":nul}", "invalid literal", 5);
    // Accepted: each literal, followed by a delimiter.
    for v in ["true", "false", "null", "[true,false,null]", "{\"a\":true}"] {
        assert!(
            matches!(verdict(&after(v.as_bytes())), Sniff::Usage(_)),
            "{v}"
        );
    }
}

#[test]
fn invalid_numbers_are_refused() {
    for v in [
        "01",
        "-01",
        "00",
        "1.",
        "-",
        "--1",
        "1e",
        "1e+",
        "1E-",
        "+1",
        ".5",
        "-.5",
        "0x10",
        "1.5.2",
        "1e5e5",
        "1.e3",
        "0b1",
        "1_000",
        "Infinity",
        "-Infinity",
    ] {
        let why = invalid_reason(&after(v.as_bytes()));
        let lit = v
            .trim_start_matches('-')
            .starts_with(|c: char| c.is_ascii_alphabetic());
        let want = if lit && !v.starts_with('-') {
            "invalid literal"
        } else {
            "invalid number"
        };
        assert_eq!(
            why,
            format!("not valid JSON: {want} at byte {}", head().len()),
            "{v}"
        );
        assert!(
            matches!(verdict(&before(v.as_bytes())), Sniff::Other),
            "{v}"
        );
    }
    refused(b"[0,01]", "invalid number", 3);
}

#[test]
fn invalid_escapes_are_refused() {
    for (v, at) in [
        (&br#""\x""#[..], 1),
        (br#""\u12""#, 1),
        (br#""\u12"#, 1),
        (br#""\uZZZZ""#, 1),
        (br#""\u00G0""#, 1),
        (br#""ab\'""#, 3),
        (br#""\a""#, 1),
        (br#""\U0041""#, 1),
        (b"\"\\\x00\"", 1),
        (b"\"\\\xc3\xa9\"", 1),
    ] {
        refused(v, "invalid escape", at);
    }
}

#[test]
fn lone_surrogates_are_refused() {
    for (v, at) in [
        (&br#""\ud800""#[..], 1),
        (br#""\uDBFF x""#, 1),
        (br#""a\udc00""#, 2),
        (br#""\ud800\n""#, 1),
        (br#""\ud800\u0041""#, 1),
        (br#""\ud800\ud800""#, 1),
        (br#""\udfff\ud800""#, 1),
    ] {
        refused(v, "lone UTF-16 surrogate in a \\u escape", at);
    }
    // serde_json agrees.
    assert!(serde_json::from_slice::<serde_json::Value>(br#""\ud800""#).is_err());
    assert!(serde_json::from_slice::<serde_json::Value>(br#""\udc00""#).is_err());
    // A pair is a character.
    assert!(matches!(
        verdict(&after(br#""\ud834\udd1e \uD83D\uDE00""#)),
        Sniff::Usage(_)
    ));
}

#[test]
fn raw_control_characters_in_strings_are_refused() {
    for c in 0u8..0x20 {
        let v = [b'"', b'a', c, b'"'];
        refused(
            &v,
            &format!("raw control character U+{c:04X} in a string"),
            2,
        );
    }
    // Also in keys, and in the instance.
    let key = after(b"{\"a\tb\":1}");
    assert!(invalid_reason(&key).contains("raw control character U+0009"));
    let inst =
        format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\",\"n\":\"a\nb\"}}}}");
    assert!(invalid_reason(inst.as_bytes()).contains("raw control character U+000A"));
    // DEL is not a control character in JSON.
    assert!(matches!(verdict(&after(b"\"\x7f\"")), Sniff::Usage(_)));
}

#[test]
fn invalid_utf8_is_refused() {
    for (v, at) in [
        (&b"\"\x80\""[..], 1),        // stray continuation byte
        (b"\"ab\xbf\"", 3),           // stray continuation byte
        (b"\"\xc3\"", 1),             // truncated, then the quote
        (b"\"\xe2\x82\"", 1),         // truncated
        (b"\"\xf0\x9f\x98\"", 1),     // truncated
        (b"\"\xc0\x80\"", 1),         // overlong NUL
        (b"\"\xc1\xbf\"", 1),         // overlong
        (b"\"\xe0\x80\xaf\"", 1),     // overlong '/'
        (b"\"\xf0\x8f\xbf\xbf\"", 1), // overlong U+FFFF
        (b"\"\xed\xa0\x80\"", 1),     // UTF-8 encoded surrogate U+D800
        (b"\"\xed\xbf\xbf\"", 1),     // U+DFFF
        (b"\"\xf4\x90\x80\x80\"", 1), // U+110000
        (b"\"\xf5\x80\x80\x80\"", 1), // beyond
        (b"\"\xff\"", 1),
        (b"\"\xfe\"", 1),
        (b"\"ok \xc3\xa9 \xe2\x82\xac \xc3(\"", 11), // after valid ones
        (b"\"\xc3\xa9", 3),                          // valid, then EOF: unterminated
    ] {
        if v.ends_with(b"\xa9") {
            // The string runs into the closing brace and the end.
            let why = invalid_reason(&after(v));
            assert!(why.contains("unterminated string"), "{why}");
            continue;
        }
        refused(v, "invalid UTF-8", at);
    }
    // A sequence cut by the end of input.
    let mut d = head().into_bytes();
    d.extend_from_slice(b"\"\xe2\x82");
    assert_eq!(
        invalid_reason(&d),
        format!("not valid JSON: invalid UTF-8 at byte {}", head().len() + 1)
    );
    // Outside strings, any non-ASCII byte is unexpected.
    let why = invalid_reason(&after(b"\xc3\xa9"));
    assert!(why.contains("unexpected byte 0xC3"), "{why}");
    let why = invalid_reason(&after(b"[1,\xe2\x80\x83 2]"));
    assert!(why.contains("unexpected byte 0xE2"), "{why}");
    // In keys and in the instance too.
    assert!(invalid_reason(&after(b"{\"\xc0\xaf\":1}")).contains("invalid UTF-8"));
    let mut inst = format!("{{\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h\",\"n\":\"")
        .into_bytes();
    inst.extend_from_slice(b"\xed\xa0\x80\"}}");
    assert!(invalid_reason(&inst).contains("invalid UTF-8"));
}

#[test]
fn utf8_split_across_reads_is_accepted() {
    // Every length of sequence, at every alignment against 1–3 byte reads
    // (verdict() reads each document three ways), in values and keys.
    let text = "é€𝄞\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}\u{d7ff}\u{e000}";
    for pad in 0..4 {
        let p = "a".repeat(pad);
        let v = format!(r#"{{"{p}{text}":"{p}{text}","users":"{text}"}}"#);
        assert!(
            matches!(verdict_threaded(&after(v.as_bytes())), Sniff::Usage(_)),
            "{v}"
        );
        let users = format!(
            r#"{{"users":[{{"n":"{p}{text}"}}],"instance":{{"server_id":"{ID}","host_name":"h","v":"{p}{text}"}}}}"#
        );
        match verdict_threaded(users.as_bytes()) {
            Sniff::Usage(u) => assert_eq!(u.users, Users::Clear { count: 1 }),
            s => panic!("{s:?}"),
        }
    }
}

#[test]
fn every_escape_and_number_form_is_accepted() {
    let doc = format!(
        concat!(
            "\t\r\n {{ \"instance\" : {{\"server_id\":\"{}\",\"host_name\":\"h\",",
            "\"version\":\"3.15.2\\u0020\",\"e\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u001f\\u00e9\\u20AC\\uFFFF\\ud834\\udd1e\"}},",
            "\"esc\\u0041pe\\n\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0041\\uD7FF\\uE000\",",
            "\"n\":[0,-0,1,-1,10,1234567890,0.0,-0.5,3.25,1e5,1E5,1e+5,1e-5,1E+05,0e0,-0E-0,",
            "1.5e300,123456789012345678901234567890,0.000001,2.5E-3],",
            "\"l\":[true,false,null,{{}},[],\"\",{{\"\":[[]]}}],",
            "\"u\\u0073ers\" :\"QUJD+/==\"\r\n}}\n\n"
        ),
        ID
    );
    assert!(
        serde_json::from_str::<serde_json::Value>(&doc).is_ok(),
        "{doc}"
    );
    match verdict_threaded(doc.as_bytes()) {
        Sniff::Usage(u) => {
            assert_eq!(u.users, Users::Encrypted); // the escaped key is `users`
            assert_eq!(u.version.as_deref(), Some("3.15.2 "));
        }
        s => panic!("{s:?}"),
    }
    // An escaped `instance` key is `instance`, and a second one is refused.
    let dup =
        format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"inst\u0061nce":{{}}}}"#);
    assert!(invalid_reason(dup.as_bytes()).contains("duplicate field `instance`"));
}

#[test]
fn whitespace_bom_and_trailing_data() {
    let ok = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}}}}"#);
    assert!(matches!(verdict(ok.as_bytes()), Sniff::Usage(_)));
    assert!(matches!(
        verdict(format!(" \t\r\n{ok} \t\r\n").as_bytes()),
        Sniff::Usage(_)
    ));
    // Only space, tab, LF and CR are whitespace.
    for ws in [&b"\x0c"[..], b"\x0b", b"\xc2\xa0", b"\xe2\x80\x83", b"\x00"] {
        let mut d = head().into_bytes();
        d.extend_from_slice(ws);
        d.extend_from_slice(b"1}");
        assert!(invalid_reason(&d).starts_with("not valid JSON: unexpected byte"));
        let mut d = ok.clone().into_bytes();
        d.extend_from_slice(ws);
        assert!(invalid_reason(&d).contains("trailing data"));
    }
    for t in [&b"x"[..], b"{}", b"\x00", b"\n\n}"] {
        let mut d = ok.clone().into_bytes();
        d.extend_from_slice(t);
        assert!(invalid_reason(&d).contains("trailing data after the object"));
    }
    // A byte order mark: a usage file behind it is refused, anything else
    // behind it is opaque.
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(ok.as_bytes());
    assert_eq!(
        invalid_reason(&bom),
        "not valid JSON: byte order mark (U+FEFF) at byte 0; GHES writes none"
    );
    assert!(matches!(verdict(b"\xef\xbb\xbf{\"a\":1}"), Sniff::Other));
    assert!(matches!(verdict(b"\xef\xbb{\"a\":1}"), Sniff::Other));
    assert!(matches!(verdict(b"\xef\xbb\xbf"), Sniff::Other));
    assert!(matches!(verdict(b""), Sniff::Other));
}

#[test]
fn structure_rules() {
    // Long keys are valid JSON: validated, not kept.
    let long = format!("{{\"{}\":1}}", "k".repeat(100_000));
    assert!(matches!(verdict(&after(long.as_bytes())), Sniff::Usage(_)));
    // `instance` must be an object; user records must be objects.
    let arr = format!(r#"{{"instance":["{ID}","h"]}}"#);
    assert_eq!(invalid_reason(arr.as_bytes()), "instance is not an object");
    assert!(invalid_reason(&after(b"1,\"users\":[{},1]")).contains("user record"));
    assert!(invalid_reason(&after(b"1,\"users\":{}")).contains("neither"));
    // The first problem is named.
    assert!(invalid_reason(&after(b"1,\"users\":[tru]")).contains("user record"));
    assert!(invalid_reason(&after(b"1,\"users\":[{},]")).contains("user record"));
    assert!(invalid_reason(&after(b"1,\"users\":{\"a\":tru}")).contains("neither"));
    assert!(invalid_reason(&after(b"1,\"users\":[{\"a\":tru}]")).contains("invalid literal"));
    // Missing separators and stray ones.
    for v in [
        &b"[1 2]"[..],
        b"[1,]",
        b"[,1]",
        b"{\"a\" 1}",
        b"{\"a\":1,}",
        b"{,}",
        b"{\"a\":1 \"b\":2}",
        b"{1:2}",
        b"[}",
        b"{]",
        b"",
    ] {
        assert!(
            invalid_reason(&after(v)).starts_with("not valid JSON:"),
            "{}",
            String::from_utf8_lossy(v)
        );
    }
    let missing_colon = format!(r#"{{"instance":{{"server_id":"{ID}","host_name":"h"}},"a" 1}}"#);
    assert!(invalid_reason(missing_colon.as_bytes()).contains("expected ':'"));
}

/// A deterministic xorshift64* generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Whether serde_json's reading of a document makes it a usage file
/// (`sniff` must then say `Usage`): `None` when the raw text could hold
/// duplicate keys, which serde_json's `Value` silently merges.
fn usage_per_serde(v: &serde_json::Value, raw: &[u8]) -> Option<bool> {
    for k in ["instance", "users", "server_id", "host_name", "version"] {
        let needle = format!("\"{k}\"");
        if raw
            .windows(needle.len())
            .filter(|w| *w == needle.as_bytes())
            .count()
            > 1
        {
            return None;
        }
    }
    let Some(top) = v.as_object() else {
        return Some(false);
    };
    let Some(inst) = top.get("instance").and_then(|i| i.as_object()) else {
        return Some(false);
    };
    let id_ok = inst
        .get("server_id")
        .and_then(|s| s.as_str())
        .is_some_and(is_uuid);
    let host_ok = inst
        .get("host_name")
        .and_then(|s| s.as_str())
        .is_some_and(is_host_name);
    let users_ok = match top.get("users") {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::String(_)) => true,
        Some(serde_json::Value::Array(a)) => a.iter().all(|u| u.is_object()),
        Some(_) => false,
    };
    Some(id_ok && host_ok && users_ok)
}

/// Random byte mutations of small valid usage files, differential
/// against serde_json: what serde_json rejects is never a usage file;
/// what it accepts is never called invalid JSON, and is a usage file when
/// its envelope is right.
#[test]
fn mutations_agree_with_serde_json() {
    let seeds = [
        format!(
            concat!(
                "{{\"instance\":{{\"server_id\":\"{}\",\"host_name\":\"ghes.example.com\",",
                "\"version\":\"3.15.2\",\"f\":[{{\"n\":\"d\\u00e9p\\n\",\"on\":true}}],\"z\":null}},",
                "\"k\":[0,-1.5e3,2E-2,10,0.25],\"s\":\"é€𝄞\\ud834\\udd1e\\\"\\\\\\/\",",
                "\"users\":[{{\"login\":\"a\",\"id\":1,\"ghas\":false}},{{\"e\":[{{\"p\":true}}]}}]}}"
            ),
            ID
        ),
        format!(
            "{{\"users\":\"QUJDRA==\\n+/9\",\"instance\":{{\"server_id\":\"{ID}\",\"host_name\":\"h-1\"}},\"n\":-0.0e+1}}\n"
        ),
    ];
    const INTERESTING: &[u8] =
        b"\"\\{}[],:0123456789.eE+-tfnrlsu \t\n\r\x00\x1f\x7f\x80\xbf\xc3\xa9\xe2\xed\xa0\xf0\xf4\x90\xff";
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut usage, mut invalid, mut other, mut serde_ok) = (0, 0, 0, 0);
    for (i, seed) in seeds.iter().enumerate() {
        assert!(
            matches!(verdict(seed.as_bytes()), Sniff::Usage(_)),
            "{seed}"
        );
        for case in 0..2500 {
            let mut d = seed.as_bytes().to_vec();
            for _ in 0..1 + rng.below(3) {
                let byte = if rng.below(2) == 0 {
                    INTERESTING[rng.below(INTERESTING.len())]
                } else {
                    rng.next() as u8
                };
                let at = rng.below(d.len() + 1);
                match rng.below(3) {
                    0 if at < d.len() => d[at] = byte,
                    1 if at < d.len() => {
                        d.remove(at);
                    }
                    _ => d.insert(at, byte),
                }
            }
            let got = if case % 50 == 0 {
                verdict_threaded(&d)
            } else {
                verdict(&d)
            };
            let show = || format!("seed {i} case {case}: {}", String::from_utf8_lossy(&d));
            match serde_json::from_slice::<serde_json::Value>(&d) {
                Err(e) => {
                    // serde_json refuses numbers beyond f64; JSON does not.
                    if !e.to_string().contains("number out of range") {
                        assert!(!matches!(got, Sniff::Usage(_)), "{e}: {}", show());
                    }
                }
                Ok(v) => {
                    serde_ok += 1;
                    if let Sniff::Invalid(why) = &got {
                        assert!(!why.starts_with("not valid JSON"), "{why}: {}", show());
                    }
                    if usage_per_serde(&v, &d) == Some(true) {
                        assert!(matches!(got, Sniff::Usage(_)), "{got:?}: {}", show());
                    }
                }
            }
            match got {
                Sniff::Usage(_) => usage += 1,
                Sniff::Invalid(_) => invalid += 1,
                Sniff::Other => other += 1,
            }
        }
    }
    // The mutations reach every verdict.
    assert!(
        usage > 100 && invalid > 1000 && other > 100 && serde_ok > 200,
        "usage {usage}, invalid {invalid}, other {other}, serde_json ok {serde_ok}"
    );
}

/// Throughput of `sniff` on a 256 MiB encrypted-users document (and on
/// the same blob with a `\n` escape every 60 characters, as Ruby's
/// `Base64.encode64` writes, and on users in clear):
/// `cargo test --release --lib usage::tests::throughput -- --ignored --nocapture`
#[test]
#[ignore]
fn throughput() {
    fn time(what: &str, doc: &[u8]) {
        let mut best = f64::MAX;
        for _ in 0..3 {
            let t = std::time::Instant::now();
            assert!(matches!(sniff(doc), Sniff::Usage(_)), "{what}");
            best = best.min(t.elapsed().as_secs_f64());
        }
        eprintln!(
            "sniff, {what}: {} bytes in {best:.3} s = {:.0} MB/s",
            doc.len(),
            doc.len() as f64 / best / 1e6
        );
    }
    let doc = crate::sample::usage_encrypted(
        crate::sample::SAMPLE_HOST,
        crate::sample::SAMPLE_SERVER_ID,
        256 << 20,
    );
    time("encrypted users", &doc);
    let mut best = f64::MAX;
    for _ in 0..3 {
        let t = std::time::Instant::now();
        let mut sn = Sniffer::spawn().unwrap();
        for c in doc.chunks(1 << 20) {
            sn.feed(c);
        }
        assert!(matches!(sn.finish().unwrap(), Sniff::Usage(_)));
        best = best.min(t.elapsed().as_secs_f64());
    }
    eprintln!(
        "Sniffer, encrypted users, 1 MiB chunks: {best:.3} s = {:.0} MB/s",
        doc.len() as f64 / best / 1e6
    );
    let users = doc.windows(9).position(|w| w == b"\"users\":\"").unwrap() + 9;
    let mut wrapped = doc[..users].to_vec();
    let body_end = doc.len() - 3; // "}\n
    for line in doc[users..body_end].chunks(60) {
        wrapped.extend_from_slice(line);
        wrapped.extend_from_slice(b"\\n");
    }
    wrapped.extend_from_slice(&doc[body_end..]);
    time("encrypted users, \\n every 60 bytes", &wrapped);
    let clear = crate::sample::usage_clear(
        crate::sample::SAMPLE_HOST,
        crate::sample::SAMPLE_SERVER_ID,
        1_000_000,
    );
    time("1,000,000 users in clear", &clear);
}
