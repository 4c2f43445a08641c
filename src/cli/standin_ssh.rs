//! The stand-in appliance's SSH face, for `airlock demo` and the tests
//! (`airlock standin-appliance STATE [SSH ARGS]`): as an sshd forced
//! command it answers `SSH_ORIGINAL_COMMAND`; given ssh's arguments it
//! plays the ssh command itself, with its host-key checks, over the
//! stand-in's state directory (`standin_appliance`). A program
//! of its own, so it lives in the binary (decision 92).

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;

use super::standin_appliance::{serve_command, DENY_LOGIN, HOST_KEY, TAG, UNREACHABLE};

/// ssh's options that take a value.
const SSH_VALUE_OPTIONS: &str = "BbcDEeFIiJLlmOopQRSWw";

/// ssh-style arguments: options, the destination, the remote words.
#[derive(Debug, Default)]
struct SshArgs {
    /// `-o` values as given: bytes (a known_hosts path need not be UTF-8).
    options: Vec<OsString>,
    port: Option<u16>,
    dest: String,
    remote: Vec<String>,
}

fn parse_ssh_args(args: &[OsString]) -> std::result::Result<SshArgs, String> {
    let mut a = SshArgs::default();
    let mut raw = args.iter();
    while let Some(word) = raw.next() {
        let w = word.to_string_lossy().into_owned();
        if w == "--" && a.dest.is_empty() {
            continue;
        }
        if !a.dest.is_empty() {
            if a.remote.is_empty() && w == "--" {
                continue;
            }
            a.remote.push(w);
            continue;
        }
        let Some(opt) = w.strip_prefix('-').and_then(|o| o.chars().next()) else {
            a.dest = w;
            continue;
        };
        if SSH_VALUE_OPTIONS.contains(opt) {
            use std::os::unix::ffi::OsStrExt;
            let inline = &word.as_bytes()[1 + opt.len_utf8()..];
            let v: OsString = if inline.is_empty() {
                raw.next()
                    .cloned()
                    .ok_or(format!("option -{opt} needs a value"))?
            } else {
                std::ffi::OsStr::from_bytes(inline).to_os_string()
            };
            match opt {
                'o' => a.options.push(v),
                'p' => {
                    let p = v.to_string_lossy();
                    a.port = Some(p.parse().map_err(|_| format!("bad port {p:?}"))?)
                }
                _ => {}
            }
        }
    }
    if a.dest.is_empty() {
        return Err("no destination".into());
    }
    Ok(a)
}

/// The value of `-o Key=value` (or `Key value`), the key matched without
/// case, as ssh does.
fn option<'a>(a: &'a SshArgs, key: &str) -> Option<&'a std::ffi::OsStr> {
    use std::os::unix::ffi::OsStrExt;
    a.options.iter().rev().find_map(|o| {
        let b = o.as_bytes();
        let at = b.iter().position(|&c| c == b'=' || c == b' ')?;
        let k = String::from_utf8_lossy(&b[..at]);
        let v = b[at + 1..].trim_ascii();
        k.trim()
            .eq_ignore_ascii_case(key)
            .then(|| std::ffi::OsStr::from_bytes(v))
    })
}

/// As `ssh -o StrictHostKeyChecking=yes` with the known_hosts file given:
/// `None` when the presented key ([`HOST_KEY`]) is pinned there for the
/// host, else ssh's message.
fn host_key_problem(state: &Path, a: &SshArgs) -> Option<String> {
    let key = std::fs::read_to_string(state.join(HOST_KEY)).ok()?;
    let key: Vec<&str> = key.split_whitespace().take(2).collect();
    let host = a.dest.rsplit('@').next().unwrap_or("");
    let port = a.port.unwrap_or(22);
    let pattern = if port == 22 {
        host.to_string()
    } else {
        format!("[{host}]:{port}")
    };
    let known = option(a, "UserKnownHostsFile")
        .and_then(|f| std::fs::read_to_string(f).ok())
        .unwrap_or_default();
    let mut other_key = false;
    for line in known.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 3 || !f[0].split(',').any(|h| h == pattern) {
            continue;
        }
        if f[1..3] == key[..] {
            return None;
        }
        other_key = true;
    }
    Some(if other_key {
        format!("@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\n@    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@@\nHost key for {pattern} has changed and you have requested strict checking. {TAG}\nHost key verification failed.\n")
    } else {
        format!("No {} host key is known for {pattern} and you have requested strict checking. {TAG}\nHost key verification failed.\n",
            key.first().map_or("ED25519", |k| if k.contains("ed25519") { "ED25519" } else { "RSA" }))
    })
}

/// The SSH face, on this process's standard streams: with no `args`, an
/// sshd forced command answering `SSH_ORIGINAL_COMMAND`; with ssh-style
/// `args` (`-o …`, `-p N`, `USER@HOST`, `--`, remote words), the SSH
/// command itself. The exit status (255 for what ssh itself would fail).
pub fn ssh_main(state: &Path, args: &[OsString]) -> i32 {
    let mut stdin = std::io::stdin().lock();
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    let command = if args.is_empty() {
        match std::env::var("SSH_ORIGINAL_COMMAND") {
            Ok(c) => c,
            Err(_) => {
                let _ = writeln!(
                    err,
                    "airlock stand-in appliance: no command (SSH_ORIGINAL_COMMAND is unset) {TAG}"
                );
                return 1;
            }
        }
    } else {
        let a = match parse_ssh_args(args) {
            Ok(a) => a,
            Err(why) => {
                let _ = writeln!(err, "airlock stand-in ssh: {why} {TAG}");
                return 255;
            }
        };
        let host = a.dest.rsplit('@').next().unwrap_or("").to_string();
        if state.join(UNREACHABLE).exists() {
            let _ = writeln!(
                err,
                "ssh: connect to host {host} port {}: Connection refused {TAG}",
                a.port.unwrap_or(22)
            );
            return 255;
        }
        if let Some(m) = host_key_problem(state, &a) {
            let _ = err.write_all(m.as_bytes());
            return 255;
        }
        if state.join(DENY_LOGIN).exists() {
            let _ = writeln!(err, "{}: Permission denied (publickey). {TAG}", a.dest);
            return 255;
        }
        a.remote.join(" ")
    };
    serve_command(state, &command, &mut stdin, &mut out, &mut err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_arguments_and_host_keys() {
        let args: Vec<OsString> = [
            "-i",
            "/k",
            "-oIdentitiesOnly=yes",
            "-o",
            "UserKnownHostsFile=/kh",
            "-p",
            "2222",
            "-T",
            "admin@127.0.0.1",
            "--",
            "ghe-license",
            "info",
            "-j",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        let a = parse_ssh_args(&args).unwrap();
        assert_eq!(a.port, Some(2222));
        assert_eq!(a.dest, "admin@127.0.0.1");
        assert_eq!(a.remote, ["ghe-license", "info", "-j"]);
        assert_eq!(
            option(&a, "userknownhostsfile"),
            Some(std::ffi::OsStr::new("/kh"))
        );

        let d = tempfile::tempdir().unwrap();
        let kh = d.path().join("kh");
        let mut a = a;
        a.options
            .push(format!("UserKnownHostsFile={}", kh.display()).into());
        assert!(host_key_problem(d.path(), &a).is_none(), "no key: no check");
        std::fs::write(d.path().join(HOST_KEY), "ssh-ed25519 AAAAkey stand-in\n").unwrap();
        assert!(host_key_problem(d.path(), &a)
            .unwrap()
            .contains("No ED25519 host key is known"));
        std::fs::write(&kh, "[127.0.0.1]:2222 ssh-ed25519 AAAAother\n").unwrap();
        assert!(host_key_problem(d.path(), &a)
            .unwrap()
            .contains("REMOTE HOST IDENTIFICATION HAS CHANGED"));
        std::fs::write(&kh, "x ssh-rsa B\n[127.0.0.1]:2222 ssh-ed25519 AAAAkey\n").unwrap();
        assert!(host_key_problem(d.path(), &a).is_none());
    }
}
