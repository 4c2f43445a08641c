//! Every command's human and `--json` output, pinned byte for byte (after
//! masking times, temporary paths and random parts) in
//! tests/output-snapshots/: a fixed list of command lines, successes and
//! typical failures, run in order against fixed inputs (fixtures/, keys/,
//! a temporary state directory, the GitHub API and appliance stand-ins).
//! Regenerate with `OUTPUT_SNAPSHOTS=overwrite cargo test --test
//! output_snapshots` after an intended change, and review the diff.

mod common;

use std::path::{Path, PathBuf};

use common::http::{Response, Server};
use common::{airlock, airlock_bin, root};

/// Which outputs a command line is run for.
#[derive(Clone, Copy, PartialEq)]
enum Modes {
    /// Human, then `--json` (`{M}` in the arguments is `h`, then `j`).
    Both,
    /// Human only (a form that refuses `--json`, or pinned elsewhere).
    Human,
}

/// One command line: its name, its arguments (`{T}` the temporary
/// directory, `{M}` the mode's letter), whether it prints random keys, and
/// a GitHub API stand-in's replies, if it talks to one.
struct Step {
    name: &'static str,
    args: &'static str,
    modes: Modes,
    random: bool,
    api: Option<fn() -> Vec<Response>>,
}

const fn step(name: &'static str, args: &'static str) -> Step {
    Step {
        name,
        args,
        modes: Modes::Both,
        random: false,
        api: None,
    }
}

const fn human(name: &'static str, args: &'static str) -> Step {
    Step {
        modes: Modes::Human,
        ..step(name, args)
    }
}

const fn random(name: &'static str, args: &'static str) -> Step {
    Step {
        random: true,
        ..step(name, args)
    }
}

const fn api(name: &'static str, args: &'static str, r: fn() -> Vec<Response>) -> Step {
    Step {
        api: Some(r),
        ..step(name, args)
    }
}

const TRUST: &str = "--trust keys/allowed_signers --revoked keys/revoked_keys";
const AT: &str = "--at 2026-11-01T00:00:00Z";
const G: &str = "fixtures/bundles/golden_clear_users.airlock.zip";

fn steps() -> Vec<Step> {
    let s = |a: String| -> &'static str { Box::leak(a.into_boxed_str()) };
    vec![
        step("verify-golden", s(format!("verify {G} {TRUST} {AT}"))),
        step("verify-licence", s(format!("verify fixtures/bundles/golden_licence.airlock.zip --trust {{T}}/licence_trust {AT}"))),
        step("verify-untrusted", s(format!("verify fixtures/bundles/fail_untrusted_key.airlock.zip {TRUST} {AT}"))),
        step("verify-tampered", s(format!("verify fixtures/bundles/fail_tampered_payload.airlock.zip {TRUST} {AT}"))),
        step("verify-encrypted-no-identity", s(format!("verify fixtures/bundles/golden_enc_x25519.airlock.zip {TRUST} {AT}"))),
        step("verify-encrypted-identity", s(format!("verify fixtures/bundles/golden_enc_x25519.airlock.zip {TRUST} {AT} -i {{T}}/age_identity.txt"))),
        step("verify-expired", s(format!("verify fixtures/bundles/fail_expired.airlock.zip {TRUST} {AT}"))),
        step("verify-missing", s(format!("verify {{T}}/absent.zip {TRUST} {AT}"))),
        step("inspect-golden", s(format!("inspect {G}"))),
        step("inspect-licence", "inspect fixtures/bundles/golden_licence.airlock.zip"),
        step("inspect-not-a-zip", "inspect fixtures/bundles/fail_not_a_zip.airlock.zip"),
        step("extract-expired", s(format!("extract {G} {TRUST} --out {{T}}/{{M}}x"))),
        random("keygen", "keygen --out {T}/{M}key --comment snapshot"),
        random("keygen-exists", "keygen --out {T}/{M}key --comment snapshot"),
        random("keygen-age", "keygen --age --out {T}/{M}age.txt"),
        random("keygen-age-pq", "keygen --age --post-quantum --out {T}/{M}agepq.txt"),
        step("export", "export {T}/license-usage.json --key {T}/exporter_ed25519 --out {T}/{M}b.zip --state-dir {T}/{M}exp --reproducible"),
        step("export-exists", "export {T}/license-usage.json --key {T}/exporter_ed25519 --out {T}/{M}b.zip --state-dir {T}/{M}exp --reproducible"),
        step("export-no-input", "export {T}/absent.json --key {T}/exporter_ed25519 --out {T}/{M}c.zip --state-dir {T}/{M}exp"),
        step("export-renamed", "export {T}/license-usage (1).json --key {T}/exporter_ed25519 --out {T}/{M}r.zip --state-dir {T}/{M}exp --reproducible"),
        step("export-licence", "export fixtures/licence/github-enterprise-TEST123.ghl --enterprise octo-corp --key {T}/connected_ed25519 --out {T}/{M}l.zip --state-dir {T}/{M}state --reproducible"),
        step("extract", "extract {T}/{M}b.zip --trust {T}/allowed --out {T}/{M}x"),
        step("extract-again", "extract {T}/{M}b.zip --trust {T}/allowed --out {T}/{M}x"),
        step("sign", "sign {T}/{M}b.zip --key {T}/other-host_ed25519"),
        step("sign-again", "sign {T}/{M}b.zip --key {T}/other-host_ed25519"),
        step("import", "import {T}/{M}b.zip --trust {T}/allowed --state-dir {T}/{M}state --outbox {T}/{M}outbox"),
        step("import-again", "import {T}/{M}b.zip --trust {T}/allowed --state-dir {T}/{M}state --outbox {T}/{M}outbox"),
        step("import-untrusted", s(format!("import fixtures/bundles/fail_untrusted_key.airlock.zip {TRUST} --state-dir {{T}}/{{M}}state --outbox {{T}}/{{M}}outbox"))),
        step("import-licence", "import {T}/{M}l.zip --trust {T}/licence_trust --state-dir {T}/{M}state2 --outbox {T}/{M}outbox2"),
        step("watch-once", "watch {T}/{M}drop --once --settle 0s --trust {T}/allowed --state-dir {T}/{M}wstate --outbox {T}/{M}woutbox"),
        step("import-batch", "import {T}/{M}r.zip {T}/{M}b.zip fixtures/bundles/fail_untrusted_key.airlock.zip --trust {T}/allowed --state-dir {T}/{M}bstate --outbox {T}/{M}outbox3"),
        step("watch-refused", "watch {T}/{M}drop2 --once --settle 0s --trust {T}/allowed --state-dir {T}/{M}wstate --outbox {T}/{M}woutbox"),
        step("log", "log --state-dir {T}/{M}state"),
        step("log-verify", "log --verify --state-dir {T}/{M}state"),
        step("log-no-ledger", "log --state-dir {T}/{M}none"),
        step("fleet", "fleet --state-dir {T}/{M}state"),
        step("fleet-check", "fleet --check --state-dir {T}/{M}state"),
        human("fleet-plugin", "fleet --check-format plugin --state-dir {T}/hstate"),
        step("fleet-plugin-json", "fleet --check-format plugin --state-dir {T}/{M}state"),
        step("fleet-no-ledger", "fleet --state-dir {T}/{M}none"),
        step("report", "report --html {T}/{M}r.html --state-dir {T}/{M}state"),
        step("report-exists", "report --html {T}/{M}r.html --state-dir {T}/{M}state"),
        api("cloud-status", "cloud status --enterprise octo-corp --api-url {API} --state-dir {T}/{M}state", sync_status),
        api("cloud-status-check", "cloud status --check --enterprise octo-corp --api-url {API} --state-dir {T}/{M}state", sync_status),
        api("cloud-seats", "cloud seats --enterprise octo-corp --api-url {API} --state-dir {T}/{M}state", seats),
        api("cloud-status-404", "cloud status --enterprise octo-corp --api-url {API} --state-dir {T}/{M}state", not_found),
        step("cloud-no-enterprise", "cloud status --state-dir {T}/{M}state"),
        step("fleet-after-cloud", "fleet --state-dir {T}/{M}state"),
        step("licence-status", "licence status --appliance-host ghes.test --appliance-known-hosts {T}/known_hosts --appliance-ssh-command {SSH} --state-dir {T}/{M}state"),
        human("licence-status-plugin", "licence status --check-format plugin --appliance-host ghes.test --appliance-known-hosts {T}/known_hosts --appliance-ssh-command {SSH} --state-dir {T}/hstate"),
        step("completions", "completions bash"),
        step("man", "man"),
        step("man-dir", "man --dir {T}/{M}man"),
        step("usage-error", "verify"),
        step("unknown-option", "verify --no-such-option x"),
        step("help", "--help"),
    ]
}

/// A minute from now: after the hand-overs, so the sync confirms them.
fn sync_status() -> Vec<Response> {
    let soon = std::time::SystemTime::now() + std::time::Duration::from_secs(60);
    let soon = humantime::format_rfc3339_seconds(soon).to_string();
    let body = r#"{"server_instances":[
      {"server_id":"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d","hostname":"ghes.example.com","last_sync":{"date":"SOON","status":"success","error":""}},
      {"server_id":"11111111-2222-3333-4444-555555555555","hostname":"ghes-c.example.com","last_sync":{"date":"2026-01-01T00:00:00Z","status":"failed","error":"server_id does not match"}}
    ]}"#;
    vec![Response::new(200, &body.replace("SOON", &soon))]
}

fn seats() -> Vec<Response> {
    let body = r#"{"total_seats_consumed":3,"total_seats_purchased":2,"users":[
      {"github_com_login":"mona","github_com_user":true,"enterprise_server_user":true,"enterprise_server_user_ids":["ghes.example.com:1"],"enterprise_server_emails":["mona@example.com"],"license_type":"enterprise"},
      {"github_com_login":null,"github_com_user":false,"enterprise_server_user":true,"enterprise_server_user_ids":["ghes.example.com:7"],"enterprise_server_emails":["seven@example.com"],"license_type":"enterprise"}
    ]}"#;
    vec![Response::new(200, body)]
}

fn not_found() -> Vec<Response> {
    vec![Response::new(404, r#"{"message":"Not Found"}"#)]
}

/// The fixed inputs in the temporary directory `t`.
fn prepare(t: &Path) {
    for k in [
        "exporter_ed25519",
        "connected_ed25519",
        "other-host_ed25519",
        "age_identity.txt",
    ] {
        common::key(t, k);
    }
    let usage = common::sample_usage(t);
    std::fs::copy(&usage, t.join("license-usage (1).json")).unwrap();
    let pubs = [
        common::read_pub(&t.join("exporter_ed25519.pub")),
        common::read_pub(&t.join("other-host_ed25519.pub")),
    ];
    let trusted = common::allowed_signers(t, "*.example.com", &[&pubs[0], &pubs[1]]);
    std::fs::rename(trusted, t.join("allowed")).unwrap();
    std::fs::copy(
        root().join("keys/licence_allowed_signers"),
        t.join("licence_trust"),
    )
    .unwrap();
    std::fs::write(t.join("known_hosts"), "").unwrap();
    for m in ["h", "j"] {
        for d in ["outbox", "outbox2", "outbox3", "woutbox", "man", "x"] {
            std::fs::create_dir_all(t.join(format!("{m}{d}"))).unwrap();
        }
    }
    // Expires in 40 days and a half (the half keeps the days left at 40).
    let expire =
        std::time::SystemTime::now() + std::time::Duration::from_secs(40 * 86_400 + 43_200);
    let expire = humantime::format_rfc3339_seconds(expire).to_string();
    let appliance = t.join("appliance");
    std::fs::create_dir_all(&appliance).unwrap();
    std::fs::write(
        appliance.join(common::standin::ACTIVE_FILE),
        airlock::sample::appliance_licence("SNAP1", Some(50), &expire),
    )
    .unwrap();
}

/// Before `watch-once`: a bundle (the exported one) in the drop folder;
/// before `watch-refused`, one signed by an untrusted key.
fn fill_drop(t: &Path, name: &str, m: &str) {
    let (drop, from) = match name {
        "watch-once" => (format!("{m}drop"), t.join(format!("{m}b.zip"))),
        "watch-refused" => (
            format!("{m}drop2"),
            root().join("fixtures/bundles/fail_untrusted_key.airlock.zip"),
        ),
        _ => return,
    };
    let drop = t.join(drop);
    std::fs::create_dir_all(&drop).unwrap();
    std::fs::copy(from, drop.join("b.airlock.zip")).unwrap();
}

fn expand(args: &str, t: &Path, m: &str, api: &str) -> Vec<String> {
    let ssh = format!(
        "{} standin-appliance --state {}",
        airlock_bin().display(),
        t.join("appliance").display()
    );
    args.split(' ')
        .map(|w| {
            w.replace("{T}", &t.display().to_string())
                .replace("{M}", m)
                .replace("{API}", api)
        })
        .map(|w| if w == "{SSH}" { ssh.clone() } else { w })
        .collect()
}

/// `SOURCE_DATE_EPOCH` for the exports: an hour ago, so that the bundles
/// are fresh and the times (masked) do not matter.
/// One moment for the whole run: exports made a second apart would order
/// a batch differently from one run to the next.
fn an_hour_ago() -> String {
    static AT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    AT.get_or_init(|| {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        (now.unwrap().as_secs() - 3600).to_string()
    })
    .clone()
}

/// Run one command line; its record: arguments, exit status, stdout, stderr.
fn run(step: &Step, t: &Path, m: &str) -> String {
    let server = step.api.map(|r| Server::start(r()));
    let url = server.as_ref().map(|s| s.url.clone()).unwrap_or_default();
    let mut args = expand(step.args, t, m, &url);
    // `export-renamed`: its input's name holds a space.
    if step.name == "export-renamed" {
        args.splice(
            1..3,
            [t.join("license-usage (1).json").display().to_string()],
        );
    }
    if m == "j" {
        args.push("--json".into());
    }
    let out = airlock()
        .args(&args)
        .current_dir(root())
        .env("HOME", "/nonexistent/home")
        .env("GH_TOKEN", "ghp_snapshot_token")
        .env("SOURCE_DATE_EPOCH", an_hour_ago())
        .env("COLUMNS", "100")
        .output()
        .unwrap();
    let mut rec = format!(
        "$ airlock {}\nexit: {}\n--- stdout\n{}\n--- stderr\n{}\n",
        args.join(" "),
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    rec = rec.replace(&t.display().to_string(), "<T>");
    rec = rec.replace(&airlock_bin().display().to_string(), "<BIN>");
    if !url.is_empty() {
        rec = rec.replace(&url, "<API>");
    }
    mask(&rec, step.random)
}

/// Replace what differs from run to run: times, digests and ids of bundles
/// made now, durations, process ids; with `random`, keys and fingerprints.
fn mask(s: &str, random: bool) -> String {
    let mut out = String::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if let Some((n, tag)) = masked_at(&b[i..], random) {
            out.push_str(tag);
            i += n;
        } else {
            let c = s[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn run_of(b: &[u8], f: impl Fn(u8) -> bool) -> usize {
    b.iter().take_while(|c| f(**c)).count()
}

/// Whether a masked thing starts here (and `b` is at a word start for
/// the digit and hex forms): its length and its replacement.
fn masked_at(b: &[u8], random: bool) -> Option<(usize, &'static str)> {
    let digits = run_of(b, |c| c.is_ascii_digit());
    if digits == 4 && b.get(4) == Some(&b'-') && b.len() >= 19 && b[10] == b'T' {
        let frac = if b.get(19) == Some(&b'.') {
            1 + run_of(&b[20..], |c| c.is_ascii_digit())
        } else {
            0
        };
        let z = usize::from(b.get(19 + frac) == Some(&b'Z'));
        return Some((19 + frac + z, "<TIME>"));
    }
    if digits == 4 && b.len() >= 10 && b[4] == b'-' && b[7] == b'-' {
        return Some((10, "<DATE>"));
    }
    if digits == 8 && b.get(8) == Some(&b'T') && run_of(&b[9..], |c| c.is_ascii_digit()) == 6 {
        return Some((15 + usize::from(b.get(15) == Some(&b'Z')), "<STAMP>"));
    }
    let hex = run_of(b, |c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
    match hex {
        64 => return Some((hex, "<HEX64>")),
        32 => return Some((hex, "<HEX32>")),
        16 => return Some((hex, "<HEX16>")),
        _ => {}
    }
    for (p, tag) in [("pid ", "pid <PID>"), ("took ", "took <DURATION>")] {
        if b.starts_with(p.as_bytes()) && run_of(&b[p.len()..], |c| c.is_ascii_digit()) > 0 {
            let n = p.len() + run_of(&b[p.len()..], |c| c.is_ascii_alphanumeric() || c == b'.');
            return Some((n, tag));
        }
    }
    if random {
        let b64 = |c: u8| c.is_ascii_alphanumeric() || c == b'+' || c == b'/' || c == b'=';
        for (p, tag) in [
            ("SHA256:", "SHA256:<FP>"),
            ("ssh-ed25519 AAAA", "ssh-ed25519 <KEY>"),
            ("AGE-SECRET-KEY-", "AGE-SECRET-KEY-<KEY>"),
            ("age1", "age1<KEY>"),
        ] {
            if b.starts_with(p.as_bytes()) {
                let rest = &b[p.len()..];
                let n = p.len() + run_of(rest, |c| b64(c) || c == b'-');
                return Some((n, tag));
            }
        }
    }
    None
}

fn file_name(i: usize, st: &Step, m: &str) -> String {
    let mode = if m == "h" { "human" } else { "json" };
    format!("{i:03}-{}.{mode}.txt", st.name)
}

#[test]
fn every_commands_human_and_json_output_is_unchanged() {
    let t = tempfile::tempdir().unwrap();
    prepare(t.path());
    let dir = root().join("tests/output-snapshots");
    let overwrite = std::env::var_os("OUTPUT_SNAPSHOTS").is_some_and(|v| v == "overwrite");
    if overwrite {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
    }
    let (mut compared, mut differ) = (0, Vec::new());
    for (i, st) in steps().iter().enumerate() {
        let modes: &[&str] = if st.modes == Modes::Both {
            &["h", "j"]
        } else {
            &["h"]
        };
        for m in modes {
            fill_drop(t.path(), st.name, m);
            let got = run(st, t.path(), m);
            let file: PathBuf = dir.join(file_name(i, st, m));
            compared += 1;
            if overwrite {
                std::fs::write(&file, &got).unwrap();
            } else if std::fs::read_to_string(&file).ok().as_deref() != Some(got.as_str()) {
                differ.push(format!("{}:\n{got}", file.display()));
            }
        }
    }
    eprintln!("{compared} command lines compared");
    assert!(
        differ.is_empty(),
        "{} of {compared} outputs differ from tests/output-snapshots/ (OUTPUT_SNAPSHOTS=overwrite to accept):\n{}",
        differ.len(),
        differ.join("\n")
    );
}

/// The sections of docs/json-output.md that document a command, and the
/// snapshots (by name prefix) that are its documents.
const SECTIONS: &[(&str, &[&str])] = &[
    ("verify", &["verify-"]),
    ("extract", &["extract"]),
    ("export", &["export"]),
    ("import", &["import"]),
    ("inspect", &["inspect-"]),
    ("keygen", &["keygen"]),
    ("sign", &["sign"]),
    ("log", &["log"]),
    ("watch", &["watch-"]),
    ("cloud status", &["cloud-status"]),
    ("cloud seats", &["cloud-seats"]),
    ("fleet", &["fleet"]),
    ("report", &["report"]),
    ("licence status", &["licence-status"]),
    ("completions", &["completions"]),
    ("man", &["man"]),
];

/// Every `` `word` `` named in `text`'s prose.
fn named_words(text: &str) -> std::collections::BTreeSet<String> {
    let parts: Vec<&str> = text.split('`').collect();
    (parts.iter().skip(1).step_by(2))
        .filter(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(|w| w.to_string())
        .collect()
}

/// Every `"key":` written in `text`.
fn documented_keys(text: &str) -> std::collections::BTreeSet<String> {
    let b = text.as_bytes();
    let mut keys = std::collections::BTreeSet::new();
    for (i, _) in text.match_indices('"') {
        let n = run_of(&b[i + 1..], |c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'
        });
        let rest = &text[i + 1 + n..];
        if n > 0 && rest.starts_with('"') && rest[1..].trim_start().starts_with(':') {
            keys.insert(text[i + 1..i + 1 + n].to_string());
        }
    }
    keys
}

/// The JSON documents (or stream lines) on a snapshot's standard output.
fn documents(snapshot: &str) -> Vec<serde_json::Value> {
    let out = snapshot
        .split("--- stdout\n")
        .nth(1)
        .and_then(|s| s.split("\n--- stderr").next())
        .unwrap_or("");
    let whole = serde_json::from_str(out).map(|v| vec![v]);
    whole.unwrap_or_else(|_| {
        out.lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    })
}

fn keys_of(v: &serde_json::Value, depth: usize, into: &mut std::collections::BTreeSet<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                into.insert(k.clone());
                if depth > 0 {
                    keys_of(v, depth - 1, into);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| keys_of(v, depth, into)),
        _ => {}
    }
}

/// The text of docs/json-output.md's section on `command`.
fn section_body<'a>(doc: &'a str, command: &str) -> &'a str {
    let heading = format!("## `{command}`\n");
    let start = doc
        .find(&heading)
        .unwrap_or_else(|| panic!("no section {heading}"));
    let body = &doc[start + heading.len()..];
    &body[..body.find("\n## ").unwrap_or(body.len())]
}

/// docs/json-output.md against the report types' serialisations in the
/// snapshots: every top-level field a command prints is documented in its
/// section, and every field its section names is printed by some snapshot
/// (at any depth), or listed here as not reached by the fixed command lines.
/// Fields documented that no fixed command line prints (rare states), by
/// section.
const UNREACHED: &[(&str, &[&str])] = &[
    ("import", &["files"]),
    ("log", &["lease_pid", "sync_time", "file", "read", "size"]),
    ("cloud status", &["date_unreadable"]),
    (
        "licence status",
        &["applied", "confirmed", "detail", "problem", "bundle_sha256"],
    ),
];

/// The snapshots' `--json` outputs: (name without its number, text).
fn json_snapshots() -> Vec<(String, String)> {
    let dir = std::fs::read_dir(root().join("tests/output-snapshots")).unwrap();
    dir.map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".json.txt"))
        .map(|e| {
            let name = e.file_name().to_string_lossy()[4..].to_string();
            (name, std::fs::read_to_string(e.path()).unwrap())
        })
        .collect()
}

/// What `section` is documented to print: `"key":` fields and the words
/// its prose names (`extract` is documented as `verify`, plus its own).
fn documented(doc: &str, section: &str) -> std::collections::BTreeSet<String> {
    let mut body = section_body(doc, section).to_string();
    if section == "extract" {
        body.push_str(section_body(doc, "verify"));
    }
    let mut all = documented_keys(&body);
    all.extend(named_words(&body));
    all
}

/// docs/json-output.md against the report types' serialisations in the
/// snapshots: every top-level field a command prints is documented in its
/// section, and every `"key":` its section shows is printed by some
/// snapshot (at any depth), or is listed in [`UNREACHED`].
#[test]
fn json_output_md_documents_exactly_the_fields_the_commands_print() {
    let doc = std::fs::read_to_string(root().join("docs/json-output.md")).unwrap();
    let snaps = json_snapshots();
    let mut problems = Vec::new();
    for (section, prefixes) in SECTIONS {
        let unreached = UNREACHED
            .iter()
            .find(|u| u.0 == *section)
            .map_or(&[][..], |u| u.1);
        let (mut top, mut all) = Default::default();
        let own = snaps
            .iter()
            .filter(|(n, _)| prefixes.iter().any(|p| n.starts_with(p)));
        for d in own.flat_map(|(_, text)| documents(text)) {
            if d["ok"] != false {
                keys_of(&d, 0, &mut top);
            }
            keys_of(&d, 64, &mut all);
        }
        let documented = documented(&doc, section);
        for k in top.iter().filter(|k| *k != "ok" && !k.ends_with("_bytes")) {
            if !documented.contains(k) {
                problems.push(format!(
                    "{section}: prints `{k}`, not in docs/json-output.md"
                ));
            }
        }
        for k in documented_keys(section_body(&doc, section)) {
            if !all.contains(&k) && !unreached.contains(&k.as_str()) {
                problems.push(format!(
                    "{section}: docs/json-output.md shows `{k}`, which no snapshot prints"
                ));
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
