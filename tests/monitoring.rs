//! Monitoring that plugs in (issue 28, decision 78): `--check-format
//! plugin` follows the Monitoring Plugins guidelines (exit 0-3, one line,
//! valid performance data) for `fleet` and `cloud status`, and
//! `--metrics FILE` writes a Prometheus textfile that parses (with
//! `promtool check metrics` where it is installed, and always with the
//! strict parser below).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::http::{Response, Server};
use common::*;
use predicates::Predicate;

/// Both instances' last sync, with `a_date` for A and B's status.
fn sync_body(a_date: &str, b_status: &str) -> String {
    format!(
        r#"{{"server_instances":[
          {{"server_id":"{ID_A}","hostname":"ghes-a.example.com","last_sync":{{"date":"{a_date}","status":"success","error":""}}}},
          {{"server_id":"{ID_B}","hostname":"ghes-b.example.com","last_sync":{{"date":"{a_date}","status":"{b_status}","error":"The uploaded file | could not be processed"}}}}
        ]}}"#
    )
}

/// [`assert_plugin_output`], and the line contains `text`.
fn plugin_line_says(out: &std::process::Output, code: i32, text: &str) -> String {
    let l = assert_plugin_output(out, code);
    assert!(l.contains(text), "{l}");
    l
}

/// The guidelines, strictly: `SERVICE STATUS - text` (no `|` in the
/// text), then optionally ` | ` and space-separated performance data
/// `'label'=value[UOM];[warn];[crit];[min];[max]`, with the units this
/// check uses (`s` or none), and one line feed at the end, nothing else.
fn assert_plugin_output(out: &std::process::Output, code: i32) -> String {
    let stdout = String::from_utf8(out.stdout.clone()).unwrap();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let num = r"-?[0-9]+(\.[0-9]+)?";
    let range = format!(r"@?({num}|(~|{num}):({num})?)");
    let perf = format!(r"'[^'=]+'=({num}|U)s?(;({range})?(;({range})?(;({num})?(;({num})?)?)?)?)?");
    let status = ["OK", "WARNING", "CRITICAL", "UNKNOWN"][code as usize];
    let line = format!(r"\AAIRLOCK {status} - [^|\n]*( \| {perf}( {perf})*)?\n\z");
    assert!(
        predicates::str::is_match(line).unwrap().eval(&stdout),
        "not one Monitoring Plugins line: {stdout:?}"
    );
    stdout
}

/// The performance data as label -> value (quoted labels may hold
/// spaces); labels are unique.
fn perfdata(line: &str) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let Some((_, data)) = line.trim_end().split_once(" | ") else {
        return m;
    };
    let mut rest = data;
    while let Some(r) = rest.strip_prefix('\'') {
        let (label, r) = r.split_once("'=").unwrap();
        let (value, r) = r.split_once(' ').unwrap_or((r, ""));
        let value = value.split(';').next().unwrap().to_string();
        assert!(
            m.insert(label.to_string(), value).is_none(),
            "label {label} twice"
        );
        rest = r;
    }
    assert!(rest.is_empty(), "left over: {rest}");
    m
}

/// Done when (#28): the plugin output is accepted by a test of the
/// convention, for every status.
#[test]
fn plugin_format_follows_the_monitoring_plugins_guidelines() {
    let w = World::with_two_instances();
    let plugin = ["--check-format", "plugin"];

    // OK: nothing synced yet, nothing late; no seat counts yet.
    let out = w.fleet(&plugin).output().unwrap();
    let l = assert_plugin_output(&out, 0);
    assert!(
        l.starts_with(
            "AIRLOCK OK - 2 instance(s) healthy; seats: not known, run `airlock cloud seats` | "
        ),
        "{l}"
    );
    let p = perfdata(&l);
    assert_eq!(p["instances"], "2");
    assert_eq!(p["stale_instances"], "0");
    assert_eq!(p["seats_used"], "U");
    assert_eq!(p["ghes-a.example.com last_sync_age"], "U");

    // WARNING: an import not confirmed in time.
    let out = w
        .fleet(&["--check-format", "plugin", "--max-unconfirmed-days", "0"])
        .output()
        .unwrap();
    let l = plugin_line_says(&out, 1, "ghes-a.example.com: unconfirmed: newest import");
    assert_eq!(perfdata(&l)["unconfirmed_instances"], "2");

    // CRITICAL: no export within the expected interval.
    let out = w
        .fleet(&["--check-format=plugin", "--expected-interval", "1m"])
        .output()
        .unwrap();
    let l = plugin_line_says(&out, 2, ": no-export: no bundle for 0 days");
    assert_eq!(perfdata(&l)["stale_instances"], "2");

    // CRITICAL: a failed sync (its text holds a `|`, kept out of the
    // perfdata), from cloud status and from fleet; A confirmed, so its age
    // is known.
    let s = Server::start(vec![Response::new(
        200,
        &sync_body(&rfc3339(now_secs() + 60), "failed"),
    )]);
    let out = w
        .cloud(&s, &["status", "--check-format", "plugin"])
        .output()
        .unwrap();
    let l = plugin_line_says(
        &out,
        2,
        "ghes-b.example.com: sync-failed: last sync on GitHub failed",
    );
    assert!(
        l.contains("The uploaded file / could not be processed"),
        "{l}"
    );
    let age: u64 = perfdata(&l)["ghes-a.example.com last_sync_age"]
        .strip_suffix('s')
        .unwrap()
        .parse()
        .unwrap();
    // GitHub's date is a minute ahead (after the hand-over): age 0, not
    // negative.
    assert_eq!(age, 0);
    assert_eq!(perfdata(&l)["ghes-b.example.com last_sync_age"], "U");
    // The worst problem comes first, and --quiet changes nothing.
    let out = w
        .fleet(&[
            "--check-format",
            "plugin",
            "--max-unconfirmed-days",
            "0",
            "-q",
        ])
        .output()
        .unwrap();
    let l = assert_plugin_output(&out, 2);
    assert!(l.starts_with("AIRLOCK CRITICAL - 2 problem(s), 2 instance(s) checked: ghes-b.example.com: sync-failed"), "{l}");

    // Seats, once `cloud seats` ran.
    let seats = r#"{"total_seats_consumed":5000,"total_seats_purchased":4500,"users":[]}"#;
    let s = Server::start(vec![Response::new(200, seats)]);
    w.cloud(&s, &["seats"]).assert().success();
    let l = assert_plugin_output(&w.fleet(&plugin).output().unwrap(), 2);
    assert_eq!(perfdata(&l)["seats_used"], "5000");
    assert_eq!(perfdata(&l)["seats_purchased"], "4500");
    assert!(
        l.contains("seats: 5000 used of 4500 purchased (cloud seats of "),
        "{l}"
    );

    // The default stays 16 + bits, for the scripts that read it.
    w.fleet(&["--check"]).assert().code(17);
}

/// UNKNOWN (3) for any error, one line still: before the check (no
/// ledger, bad arguments, GitHub refusing), and a lock held by another
/// process (GitHub's answer could not be recorded).
#[test]
fn plugin_format_reports_every_error_as_unknown() {
    let empty = tempfile::tempdir().unwrap();
    let out = airlock()
        .args(["fleet", "--check-format", "plugin", "--state-dir"])
        .arg(empty.path())
        .output()
        .unwrap();
    let l = plugin_line_says(&out, 3, "no ledger in");
    assert!(l.contains("(AIRLOCK-E-IO-READ)"), "{l}");
    // The error is also on standard error, as always.
    assert!(String::from_utf8_lossy(&out.stderr).contains("error[AIRLOCK-E-IO-READ]"));

    let out = airlock()
        .args(["fleet", "--check-format", "plugin", "--no-such-flag"])
        .output()
        .unwrap();
    assert!(assert_plugin_output(&out, 3).contains("(AIRLOCK-E-ARGS)"));
    let out = airlock()
        .args(["fleet", "--check-format", "plugin", "--json"])
        .output()
        .unwrap();
    assert_plugin_output(&out, 3);

    let w = World::with_two_instances();
    let s = Server::start(vec![Response::new(401, r#"{"message":"Bad credentials"}"#)]);
    let out = w
        .cloud(&s, &["status", "--check-format", "plugin"])
        .output()
        .unwrap();
    let l = plugin_line_says(&out, 3, "AIRLOCK-E-CLOUD");
    assert!(!l.contains("ghp_secret_token_value"));

    // Another process holds the state lock: GitHub's answer is not
    // recorded, so the verdict is unknown (its perfdata is still there).
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(w.p("state").join("lock"))
        .unwrap();
    lock.lock().unwrap();
    let s = Server::start(vec![Response::new(
        200,
        &sync_body(&rfc3339(now_secs() + 60), "success"),
    )]);
    let metrics = w.p("airlock.prom");
    let out = w
        .cloud(
            &s,
            &[
                "status",
                "--check-format",
                "plugin",
                "--metrics",
                metrics.to_str().unwrap(),
            ],
        )
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let l = plugin_line_says(&out, 3, "not recorded: another airlock process");
    assert_eq!(perfdata(&l)["instances"], "2");
    let series = parse_exposition(&std::fs::read_to_string(&metrics).unwrap());
    assert_eq!(value(&series, "airlock_check_status", &[]), 3.0);
}

/// One sample: its name, labels and value.
type Series = Vec<(String, BTreeMap<String, String>, f64)>;

/// A strict reader of Prometheus' text exposition format (0.0.4): `# HELP`
/// and `# TYPE` at most once per family and before its samples, a
/// family's samples together, label values with only `\\`, `\"` and `\n`
/// escapes, values Go's ParseFloat reads, no series twice.
fn parse_exposition(text: &str) -> Series {
    let name_ok = |n: &str, colon: bool| {
        !n.is_empty()
            && !n.starts_with(|c: char| c.is_ascii_digit())
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || (colon && c == ':'))
    };
    assert!(text.ends_with('\n'), "no final line feed");
    let (mut out, mut done, mut seen, mut typed) =
        (Vec::new(), HashSet::new(), HashSet::new(), HashSet::new());
    let mut current = String::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# ") {
            let (kw, rest) = rest.split_once(' ').unwrap();
            let (name, arg) = rest.split_once(' ').unwrap();
            assert!(name_ok(name, true), "{line}");
            assert!(!done.contains(name), "{name} split: {line}");
            match kw {
                "HELP" => assert!(!arg.contains('\n')),
                "TYPE" => {
                    assert!(
                        ["counter", "gauge", "histogram", "summary", "untyped"].contains(&arg),
                        "{line}"
                    );
                    assert!(typed.insert(name.to_string()), "TYPE twice: {line}");
                }
                _ => panic!("{line}"),
            }
            if current != name {
                done.insert(std::mem::replace(&mut current, name.to_string()));
            }
            continue;
        }
        let end = line.find(['{', ' ']).unwrap();
        let name = &line[..end];
        assert!(name_ok(name, true), "{line}");
        assert!(typed.contains(name), "no TYPE before {line}");
        if current != name {
            assert!(!done.contains(name), "{name} split");
            done.insert(std::mem::replace(&mut current, name.to_string()));
        }
        let mut rest = &line[end..];
        let mut labels = BTreeMap::new();
        if let Some(r) = rest.strip_prefix('{') {
            rest = r;
            while !rest.starts_with('}') {
                let (k, r) = rest.split_once("=\"").unwrap();
                assert!(name_ok(k, false), "{line}");
                let mut v = String::new();
                let mut chars = r.char_indices();
                let close = loop {
                    match chars.next().expect("unterminated label value") {
                        (i, '"') => break i,
                        (_, '\\') => match chars.next().unwrap().1 {
                            '\\' => v.push('\\'),
                            '"' => v.push('"'),
                            'n' => v.push('\n'),
                            c => panic!("bad escape \\{c} in {line}"),
                        },
                        (_, c) => v.push(c),
                    }
                };
                assert!(labels.insert(k.to_string(), v).is_none(), "{line}");
                rest = &r[close + 1..];
                rest = rest.strip_prefix(',').unwrap_or(rest);
            }
            rest = &rest[1..];
        }
        let v = rest.strip_prefix(' ').unwrap();
        let v: f64 = match v {
            "NaN" => f64::NAN,
            "+Inf" => f64::INFINITY,
            "-Inf" => f64::NEG_INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("value in {line}")),
        };
        assert!(
            seen.insert((name.to_string(), labels.clone())),
            "twice: {line}"
        );
        out.push((name.to_string(), labels, v));
    }
    out
}

/// The value of the one sample of `name` with (at least) `labels`.
fn value(series: &Series, name: &str, labels: &[(&str, &str)]) -> f64 {
    let m: Vec<f64> = series
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.2)
        .collect();
    assert_eq!(m.len(), 1, "{name} {labels:?}: {series:?}");
    m[0]
}

/// `promtool check metrics` when installed (tests/run.sh installs the
/// `prometheus` package); skipped visibly otherwise.
fn promtool_check(file: &Path) {
    let Ok(out) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::fs::File::open(file).unwrap())
        .output()
    else {
        eprintln!("SKIPPED promtool check metrics: promtool not installed (package prometheus)");
        return;
    };
    assert_ok(&out, "promtool check metrics");
}

/// Done when (#28): the textfile parses; it is 0644 whatever the umask,
/// replaced atomically (no temporary file left), with `host_name` and
/// `server_id` labels; a run that fails leaves `airlock_check_status 3`.
#[test]
fn metrics_textfile_parses_and_is_written_atomically() {
    let w = World::with_two_instances();
    let sync_t = now_secs() + 60;
    let s = Server::start(vec![Response::new(
        200,
        &sync_body(&rfc3339(sync_t), "failed"),
    )]);
    let dir = w.p("textfile");
    std::fs::create_dir(&dir).unwrap();
    let file = dir.join("airlock.prom");
    // Under the packaged units' umask and a stricter one.
    let run = |args: &str| {
        let mut c = std::process::Command::new("sh");
        isolate(&mut c);
        c.arg("-c")
            .arg(format!("umask 077; exec \"$0\" {args}"))
            .arg(airlock_bin())
            .env("GH_TOKEN", "ghp_secret_token_value")
            .output()
            .unwrap()
    };
    let state = w.p("state");
    let out = run(&format!(
        "cloud status --enterprise octo-corp --api-url {} --state-dir '{}' --metrics '{}'",
        s.url,
        state.display(),
        file.display()
    ));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644);
    assert_eq!(listing(&dir), ["airlock.prom"]);
    let text = std::fs::read_to_string(&file).unwrap();
    let series = parse_exposition(&text);
    promtool_check(&file);
    let c = ("command", "cloud-status");
    assert_eq!(value(&series, "airlock_check_status", &[c]), 2.0);
    assert_eq!(value(&series, "airlock_instances", &[c]), 2.0);
    let b = [c, ("host_name", "ghes-b.example.com"), ("server_id", ID_B)];
    let mut failed = b.to_vec();
    failed.push(("problem", "sync-failed"));
    assert_eq!(value(&series, "airlock_instance_problem", &failed), 1.0);
    let a = [c, ("host_name", "ghes-a.example.com"), ("server_id", ID_A)];
    let synced = value(&series, "airlock_last_confirmed_sync_timestamp_seconds", &a);
    assert_eq!(synced as u64, sync_t, "{text}");
    assert!(
        text.contains("# TYPE airlock_check_status gauge\n"),
        "{text}"
    );

    // fleet writes the same file (replacing it), here with its own label.
    let out = run(&format!(
        "fleet --state-dir '{}' --metrics '{}'",
        state.display(),
        file.display()
    ));
    assert!(out.status.success());
    let series = parse_exposition(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(
        value(&series, "airlock_check_status", &[("command", "fleet")]),
        2.0
    );
    assert_eq!(listing(&dir), ["airlock.prom"]);
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // A run that fails says so in the file instead of leaving the last
    // verdict there.
    let out = run(&format!(
        "fleet --state-dir '{}' --metrics '{}'",
        w.p("no-state").display(),
        file.display()
    ));
    assert_eq!(out.status.code(), Some(3));
    let text = std::fs::read_to_string(&file).unwrap();
    let series = parse_exposition(&text);
    promtool_check(&file);
    assert_eq!(
        value(&series, "airlock_check_status", &[("command", "fleet")]),
        3.0
    );
    assert!(!text.contains("airlock_instances"), "{text}");
}

/// The strict reader refuses what Prometheus refuses, so its passing
/// means something.
#[test]
fn the_exposition_reader_is_strict() {
    for bad in [
        "x 1\n",
        "# TYPE x gauge\nx{a=\"b\\q\"} 1\n",
        "# TYPE x gauge\nx{a=\"b\"} one\n",
        "# TYPE x gauge\nx 1\nx 2\n",
        "# TYPE x gauge\n# TYPE y gauge\nx 1\ny 1\nx{a=\"\"} 2\n",
        "# TYPE x gauge\nx 1",
    ] {
        let r = std::panic::catch_unwind(|| parse_exposition(bad));
        assert!(r.is_err(), "accepted {bad:?}");
    }
}

/// The man pages of the checks list every status: errors 1-13, the
/// problem bits 17-23 and the plugin format's 0-3.
#[test]
fn man_pages_list_every_check_status() {
    let d = man_pages();
    for page in ["airlock.1", "airlock-fleet.1", "airlock-cloud-status.1"] {
        let roff = std::fs::read_to_string(d.path().join(page)).unwrap();
        for code in (1..=13).chain(17..=23) {
            assert!(
                roff.contains(&format!(".TP\n\\fB{code}\\fR\n")),
                "{page}: no {code}"
            );
        }
        for st in ["OK", "WARNING", "CRITICAL", "UNKNOWN"] {
            assert!(roff.contains(&format!("\\fR\n{st}: ")), "{page}: no {st}");
        }
        assert!(roff.contains("\\-\\-check\\-format plugin"), "{page}");
    }
}

/// A signal in plugin mode (a monitoring system's timeout sends SIGTERM)
/// still ends with one UNKNOWN line and exit 3, not 143.
#[test]
fn plugin_format_reports_a_signal_as_unknown() {
    let silent = common::http::Silent::start();
    let d = tempfile::tempdir().unwrap();
    let mut c = std::process::Command::new(airlock_bin());
    isolate(&mut c);
    let child = c
        .args([
            "cloud",
            "status",
            "--check-format",
            "plugin",
            "--enterprise",
            "octo-corp",
        ])
        .args(["--api-url", &silent.url, "--state-dir"])
        .arg(d.path())
        .env("GH_TOKEN", "ghp_secret_token_value")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = std::time::Instant::now();
    while *silent.accepted.lock().unwrap() == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let st = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    let l = plugin_line_says(&out, 3, "interrupted by SIGTERM");
    assert!(l.contains("(AIRLOCK-E-INTERRUPTED)"), "{l}");
}
