//! The `allowed_signers` file, parsed line by line as ssh-keygen reads it.

use super::*;

/// Options of one allowed_signers line (OpenSSH `struct sshsigopt`).
#[derive(Default)]
struct SigOpts {
    ca: bool,
    namespaces: Option<String>,
    valid_after: Option<SystemTime>,
    valid_before: Option<SystemTime>,
}

/// The option names OpenSSH knows, for messages.
pub(super) fn looks_like_option(s: &str) -> bool {
    let l = s.to_ascii_lowercase();
    l.starts_with("cert-authority")
        || l.starts_with("namespaces=")
        || l.starts_with("valid-after=")
        || l.starts_with("valid-before=")
}

fn strip_prefix_ci<'a>(s: &'a str, p: &str) -> Option<&'a str> {
    match s.get(..p.len()) {
        Some(h) if h.eq_ignore_ascii_case(p) => Some(&s[p.len()..]),
        _ => None,
    }
}

/// OpenSSH `opt_dequote`: a value in double quotes, `\"` for a quote.
fn dequote<'a>(name: &str, s: &'a str) -> std::result::Result<(String, &'a str), String> {
    let Some(body) = s.strip_prefix('"') else {
        return Err(format!(
            "the value of {name}= must be in double quotes, e.g. {name}=\"…\""
        ));
    };
    let mut v = String::new();
    let mut it = body.char_indices().peekable();
    while let Some((i, c)) = it.next() {
        match c {
            '\\' if it.peek().map(|&(_, n)| n) == Some('"') => {
                it.next();
                v.push('"');
            }
            '"' => return Ok((v, &body[i + 1..])),
            c => v.push(c),
        }
    }
    Err(format!("the value of {name}= has no closing quote"))
}

/// OpenSSH `sshsigopt_parse`, except that empty options (a leading comma or
/// two commas in a row), which OpenSSH skips, are refused.
fn parse_options(opts: &str) -> std::result::Result<SigOpts, String> {
    let mut o = SigOpts::default();
    let mut s = opts;
    loop {
        let (name, r) = parse_option(&mut o, s, opts)?;
        s = r;
        if s.is_empty() {
            break;
        }
        let Some(r) = s.strip_prefix(',') else {
            return Err(format!(
                "unexpected text {} after the {name} option (options are separated by commas)",
                show(s)
            ));
        };
        if r.is_empty() {
            return Err("the options end with a comma".into());
        }
        s = r;
    }
    if let (Some(a), Some(b)) = (o.valid_after, o.valid_before) {
        if b <= a {
            return Err("valid-before is not after valid-after".into());
        }
    }
    Ok(o)
}

/// One option at the start of `s` (of the options `opts`) into `o`: its
/// name and the text after it.
fn parse_option<'a>(
    o: &mut SigOpts,
    s: &'a str,
    opts: &str,
) -> std::result::Result<(&'static str, &'a str), String> {
    if let Some(r) = strip_prefix_ci(s, "cert-authority") {
        o.ca = true;
        Ok(("cert-authority", r))
    } else if let Some(r) = strip_prefix_ci(s, "namespaces=") {
        let name = "namespaces";
        if o.namespaces.is_some() {
            return Err("namespaces= is given twice (OpenSSH refuses the line)".into());
        }
        let (v, r) = dequote(name, r)?;
        o.namespaces = Some(v);
        Ok((name, r))
    } else if let Some(r) = strip_prefix_ci(s, "valid-after=") {
        let name = "valid-after";
        if o.valid_after.is_some() {
            return Err("valid-after= is given twice (OpenSSH refuses the line)".into());
        }
        let (v, r) = dequote(name, r)?;
        o.valid_after = Some(parse_ssh_time(&v).ok_or_else(|| bad_time(name, &v))?);
        Ok((name, r))
    } else if let Some(r) = strip_prefix_ci(s, "valid-before=") {
        let name = "valid-before";
        if o.valid_before.is_some() {
            return Err("valid-before= is given twice (OpenSSH refuses the line)".into());
        }
        let (v, r) = dequote(name, r)?;
        o.valid_before = Some(parse_ssh_time(&v).ok_or_else(|| bad_time(name, &v))?);
        Ok((name, r))
    } else if s.starts_with(',') || s.is_empty() {
        Err(format!(
            "empty option in {} (a comma at the start, or two commas in a row)",
            show(opts)
        ))
    } else {
        let end = s.find([',', '=']).unwrap_or(s.len());
        Err(format!(
            "unknown option {} (OpenSSH knows cert-authority, namespaces=, valid-after=, valid-before=)",
            show(&s[..end])
        ))
    }
}

fn bad_time(name: &str, v: &str) -> String {
    format!(
        "invalid {name} time {}: write YYYYMMDD[HHMM[SS]] with an optional Z, e.g. 20260101Z",
        show(v)
    )
}

/// OpenSSH `sshkey_advance_past_options`: the options end at the first
/// space or tab outside double quotes (`\"` does not toggle quoting).
fn options_end(s: &str) -> std::result::Result<usize, String> {
    let b = s.as_bytes();
    let mut quoted = false;
    let mut i = 0;
    while i < b.len() && (quoted || (b[i] != b' ' && b[i] != b'\t')) {
        if b[i] == b'\\' && b.get(i + 1) == Some(&b'"') {
            i += 1;
        } else if b[i] == b'"' {
            quoted = !quoted;
        }
        i += 1;
    }
    if quoted {
        return Err("a double quote in the options is not closed".into());
    }
    Ok(i)
}

/// OpenSSH `sshkey_read` at the start of `s`: `None` if `s` does not start
/// with a key type name followed by a space or tab (so OpenSSH would read it
/// as options); otherwise the key, or why it is refused, and the comment.
pub(super) fn read_key_field(s: &str) -> Option<std::result::Result<(Key, &str), String>> {
    let Some(i) = s.find(WS) else {
        return key_type(s).map(|_| Err(format!("the {s} key has no base64 data after it")));
    };
    let name = &s[..i];
    let kt = key_type(name)?;
    let rest = s[i..].trim_start_matches(WS);
    let j = rest.find(WS).unwrap_or(rest.len());
    let (b64, comment) = (&rest[..j], rest[j..].trim_start_matches(WS));
    Some(match kt {
        KeyType::Cert => Err(format!(
            "{name} is a certificate; airlock accepts no certificates (list the plain public key)"
        )),
        KeyType::Alias(c) => Err(format!(
            "{name} is a signature algorithm, not a key type: write {c}"
        )),
        _ => keys::read_key(kt, name, b64).map(|k| (k, comment)),
    })
}

/// One allowed_signers line (leading blanks removed, not a comment):
/// `Some` for a line airlock can use, `None` for a valid line that can never
/// match an airlock signature (another key type, `cert-authority`).
fn parse_signer_line(line: usize, s: &str) -> std::result::Result<Option<AllowedSigner>, String> {
    let (principals, rest) = split_principals(s)?;
    check_principals(&principals, s)?;
    if rest.is_empty() {
        return Err("no key after the principals".into());
    }
    let (opts, (key, comment)) = options_and_key(rest, &principals)?;
    if let Some(w) = comment.split(WS).next().filter(|w| looks_like_option(w)) {
        return Err(format!(
            "{} after the key is a comment to OpenSSH, not an option: options go between the principals and the key",
            show(w)
        ));
    }
    let key = match key {
        Key::Usable(k) => k,
        Key::Other => return Ok(None),
        Key::ShortRsa => {
            return Err("the RSA key is shorter than 1024 bits; OpenSSH refuses it".into())
        }
    };
    if opts.ca {
        // A CA key vouches only for certificates, which airlock never accepts.
        return Ok(None);
    }
    Ok(Some(AllowedSigner {
        line,
        principals,
        namespaces: opts.namespaces,
        valid_after: opts.valid_after,
        valid_before: opts.valid_before,
        key,
    }))
}

/// The principals field of a line and the rest after it (blanks skipped),
/// as OpenSSH's `strdelimw` splits them: the token ends at the first space
/// or tab; a double quote removes itself and the token then ends at the
/// next double quote.
fn split_principals(s: &str) -> std::result::Result<(String, &str), String> {
    match s.find([' ', '\t', '"']) {
        None => Err(if key_type(s).is_some() {
            "the line has no principals before the key".to_string()
        } else {
            "the line has only one field; expected PRINCIPALS [OPTIONS] KEYTYPE BASE64 [COMMENT]"
                .to_string()
        }),
        Some(i) if s.as_bytes()[i] == b'"' => {
            let quoted = &s[i + 1..];
            let j = quoted
                .find('"')
                .ok_or("a double quote in the principals is not closed")?;
            let after = &quoted[j + 1..];
            if !(after.is_empty() || after.starts_with(WS)) {
                return Err(format!(
                    "text {} follows the closing quote of the principals without a space",
                    show(after.split(WS).next().unwrap_or(""))
                ));
            }
            Ok((
                format!("{}{}", &s[..i], &quoted[..j]),
                after.trim_start_matches(WS),
            ))
        }
        Some(i) => Ok((s[..i].to_string(), s[i..].trim_start_matches(WS))),
    }
}

/// Refuse principals OpenSSH would take but the writer did not mean: empty,
/// an option or a key type where the host names belong. `s` is the line.
fn check_principals(principals: &str, s: &str) -> std::result::Result<(), String> {
    if principals.is_empty() {
        return Err("the principals are empty".into());
    }
    if looks_like_option(principals) {
        return Err(format!(
            "the line has no principals: it starts with the option {}, which OpenSSH would take as the principal; \
             write the host name(s) first, e.g. ghes.example.com {} ssh-ed25519 AAAA…",
            show(principals),
            // The options as written (the line is printable text by now).
            s.split(WS)
                .next()
                .filter(|o| o.len() <= 80)
                .unwrap_or("namespaces=\"airlock-bundle\"")
        ));
    }
    if key_type(principals).is_some()
        || near_key_type(principals).is_some_and(|n| n.eq_ignore_ascii_case(principals))
    {
        return Err(format!(
            "the line has no principals before the key: it starts with the key type {}; \
             write the host name(s) first, e.g. ghes.example.com {} AAAA…",
            show(principals),
            near_key_type(principals).unwrap_or("ssh-ed25519")
        ));
    }
    Ok(())
}

/// What follows the principals: the key, or options then the key. Returns
/// the options (default when there are none), the key and its comment.
fn options_and_key<'s>(
    rest: &'s str,
    principals: &str,
) -> std::result::Result<(SigOpts, (Key, &'s str)), String> {
    if let Some(k) = read_key_field(rest) {
        return Ok((SigOpts::default(), k?));
    }
    let field = &rest[..rest.find(WS).unwrap_or(rest.len())];
    if let Some(c) = near_key_type(field) {
        return Err(format!(
            "unknown key type {}: key types are case-sensitive, write {c}",
            show(field)
        ));
    }
    let end = options_end(rest)?;
    let (opts, after) = (&rest[..end], rest[end..].trim_start_matches(WS));
    if after.is_empty() {
        return Err(format!("no key after {}", show(opts)));
    }
    let k = match read_key_field(after) {
        Some(k) => k?,
        None => return Err(not_a_key_after_options(after, opts)),
    };
    let o = parse_options(opts).map_err(|e| {
        if principals.ends_with(',') && !looks_like_option(opts) {
            format!("{e}; principals are separated by commas without spaces")
        } else {
            e
        }
    })?;
    Ok((o, k))
}

/// Why `after`, which follows the options `opts`, is not a key.
fn not_a_key_after_options(after: &str, opts: &str) -> String {
    let next = &after[..after.find(WS).unwrap_or(after.len())];
    if looks_like_option(next) {
        format!(
            "options are separated by commas, not spaces: {} follows {} after a space",
            show(next),
            show(opts)
        )
    } else if let Some(c) = near_key_type(next) {
        format!(
            "unknown key type {}: key types are case-sensitive, write {c}",
            show(next)
        )
    } else {
        format!(
            "expected a key (KEYTYPE BASE64, e.g. ssh-ed25519 AAAA…) after {}, found {}",
            show(opts),
            show(next)
        )
    }
}

/// Parse an allowed_signers file (see the module documentation). Valid
/// lines for other key types and `cert-authority` lines are left out: they
/// can never match an airlock signature.
pub fn parse_allowed_signers(path: &str, data: impl AsRef<[u8]>) -> Result<Vec<AllowedSigner>> {
    let mut out = Vec::new();
    for l in text_lines(path, data.as_ref())? {
        let s = l.text.trim_start_matches(WS);
        if s.is_empty() || s.starts_with('#') {
            continue;
        }
        if let Some(e) = parse_signer_line(l.number, s).map_err(|e| line_err(path, l.number, e))? {
            out.push(e);
        }
    }
    Ok(out)
}
