//! The `Link` header's next page (RFC 8288).

/// The URL of the first link whose relation types include `next` in a
/// `Link` header, parsed per RFC 8288 §3: link-values separated by commas
/// (not those inside `<…>` or a quoted string), parameters after `;`, the
/// `rel` value quoted or a bare token, a space-separated list of relation
/// types compared case-insensitively, and only a link's first `rel` counted.
pub(super) fn next_link(link: &str) -> Option<String> {
    link_values(link)
        .into_iter()
        .find(|(_, rels)| rels.iter().any(|r| r.eq_ignore_ascii_case("next")))
        .map(|(url, _)| url)
}

/// Each link-value of a `Link` header: its target and its relation types.
/// A malformed link-value is skipped up to the next comma outside quotes.
fn link_values(h: &str) -> Vec<(String, Vec<String>)> {
    let b = h.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        ows(b, &mut i);
        if i < b.len() && b[i] == b',' {
            i += 1;
            continue;
        }
        if i >= b.len() {
            break;
        }
        let Some(end) = (b[i] == b'<').then(|| h[i..].find('>')).flatten() else {
            i = skip_value(b, i);
            continue;
        };
        let url = h[i + 1..i + end].trim().to_string();
        i += end + 1;
        let mut rels: Option<Vec<String>> = None;
        loop {
            ows(b, &mut i);
            if i >= b.len() || b[i] == b',' {
                break;
            }
            if b[i] != b';' {
                i = skip_value(b, i);
                break;
            }
            i += 1;
            ows(b, &mut i);
            let start = i;
            while i < b.len() && !matches!(b[i], b'=' | b';' | b',' | b' ' | b'\t') {
                i += 1;
            }
            let name = h[start..i].to_ascii_lowercase();
            ows(b, &mut i);
            let value = param_value(h, &mut i);
            // RFC 8288 §3.3: occurrences after the first are ignored.
            if name == "rel" && rels.is_none() {
                rels = Some(value.split_ascii_whitespace().map(String::from).collect());
            }
        }
        out.push((url, rels.unwrap_or_default()));
    }
    out
}

/// A link parameter's value at `i` (after its name): `=` then a quoted
/// string or a token; empty without `=`. `i` ends after it.
fn param_value(h: &str, i: &mut usize) -> String {
    let b = h.as_bytes();
    let mut value = String::new();
    if *i < b.len() && b[*i] == b'=' {
        *i += 1;
        ows(b, i);
        if *i < b.len() && b[*i] == b'"' {
            *i += 1;
            while *i < b.len() && b[*i] != b'"' {
                if b[*i] == b'\\' && *i + 1 < b.len() {
                    *i += 1;
                }
                let c = h[*i..].chars().next().unwrap_or(' ');
                value.push(c);
                *i += c.len_utf8();
            }
            *i += 1;
        } else {
            let start = *i;
            while *i < b.len() && !matches!(b[*i], b';' | b',' | b' ' | b'\t') {
                *i += 1;
            }
            value = h[start..*i].to_string();
        }
    }
    value
}

/// Skip optional whitespace (spaces and tabs) at `i`.
fn ows(b: &[u8], i: &mut usize) {
    while *i < b.len() && matches!(b[*i], b' ' | b'\t') {
        *i += 1;
    }
}

/// The index after the link-value starting at `i`: at the next comma
/// outside a quoted string and `<…>`.
fn skip_value(b: &[u8], mut i: usize) -> usize {
    let (mut quoted, mut angled) = (false, false);
    while i < b.len() {
        match b[i] {
            b'\\' if quoted => i += 1,
            b'"' if !angled => quoted = !quoted,
            b'<' if !quoted => angled = true,
            b'>' if !quoted => angled = false,
            b',' if !quoted && !angled => return i + 1,
            _ => {}
        }
        i += 1;
    }
    i
}
