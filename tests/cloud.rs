//! The GitHub Enterprise Cloud side against a loopback server that answers
//! like GitHub's documented examples: sync status and confirmations, fleet,
//! seat leaks, pagination, errors, retries, rate limits, the HTML report.

mod common;

use std::path::{Path, PathBuf};

use common::http::{Response, Server};
use common::*;
use predicates::str::contains;

const ID_A: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
const ID_B: &str = "0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f";

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
}

struct World {
    dir: tempfile::TempDir,
}

impl World {
    fn p(&self, n: &str) -> PathBuf {
        self.dir.path().join(n)
    }
    fn cloud(&self, server: &Server, args: &[&str]) -> assert_cmd::Command {
        let mut c = airlock();
        c.arg("cloud")
            .args(args)
            .arg("--enterprise")
            .arg("octo-corp")
            .arg("--api-url")
            .arg(&server.url)
            .arg("--state-dir")
            .arg(self.p("state"))
            .env("GH_TOKEN", "ghp_secret_token_value");
        c
    }
}

/// A ledger with one imported bundle for each of two instances.
fn world() -> World {
    let w = World {
        dir: tempfile::tempdir().unwrap(),
    };
    let k = key(w.p("").as_path(), "exporter_ed25519");
    let allowed = allowed_signers(
        w.dir.path(),
        "*.example.com",
        &[&read_pub(&w.p("exporter_ed25519.pub"))],
    );
    for (host, id) in [("ghes-a.example.com", ID_A), ("ghes-b.example.com", ID_B)] {
        let u = w.p(&format!("{host}.json"));
        std::fs::write(&u, airlock::sample::usage_clear(host, id, 3)).unwrap();
        let b = w.p(&format!("{host}.zip"));
        airlock()
            .arg("export")
            .arg(&u)
            .arg("--key")
            .arg(&k)
            .arg("--out")
            .arg(&b)
            .arg("--state-dir")
            .arg(w.p("exporter"))
            .env("SOURCE_DATE_EPOCH", (now_secs() - 3600).to_string())
            .assert()
            .success();
        airlock()
            .arg("import")
            .arg(&b)
            .arg("--trust")
            .arg(&allowed)
            .arg("--state-dir")
            .arg(w.p("state"))
            .assert()
            .success();
    }
    w
}

fn sync_status(a_date: &str) -> String {
    sync_status_at(a_date, now_secs())
}

fn sync_status_at(a_date: &str, now: u64) -> String {
    format!(
        r#"{{"server_instances":[
          {{"server_id":"{ID_A}","hostname":"ghes-a.example.com","last_sync":{{"date":"{a_date}","status":"success","error":""}}}},
          {{"server_id":"{ID_B}","hostname":"ghes-b.example.com","last_sync":{{"date":"{}","status":"failed","error":"The uploaded file could not be processed: server_id does not match"}}}},
          {{"server_id":"11111111-2222-3333-4444-555555555555","hostname":"ghes-c.example.com","last_sync":{{"date":"{}","status":"success","error":""}}}}
        ]}}"#,
        rfc3339(now + 120),
        rfc3339(now - 86400),
    )
}

fn ledger_events(w: &World) -> serde_json::Value {
    let out = airlock()
        .arg("log")
        .arg("--state-dir")
        .arg(w.p("state"))
        .arg("--verify")
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["events"].clone()
}

#[test]
fn cloud_status_confirms_the_right_rows_and_fleet_shows_them() {
    let w = world();
    let t = now_secs();
    let body = sync_status_at(&rfc3339(t + 60), t);
    let server = Server::start(vec![Response::new(200, &body)]);
    w.cloud(&server, &["status"])
        .assert()
        .success()
        .stdout(contains("confirmed 1 imported bundle(s)"))
        .stdout(contains(
            "GitHub says: The uploaded file could not be processed",
        ))
        .stdout(contains("not in the ledger"));
    let req = &server.requests()[0];
    assert_eq!(req.path, "/enterprises/octo-corp/license-sync-status");
    assert_eq!(req.headers["accept"], "application/vnd.github+json");
    assert_eq!(req.headers["x-github-api-version"], "2022-11-28");
    assert_eq!(
        req.headers["authorization"],
        "Bearer ghp_secret_token_value"
    );

    let ev = ledger_events(&w);
    let confirms: Vec<&serde_json::Value> = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "confirm")
        .collect();
    assert_eq!(confirms.len(), 1);
    assert_eq!(confirms[0]["server_id"], ID_A);

    // Running it again confirms nothing new and records nothing twice.
    let server2 = Server::start(vec![Response::new(200, &body)]);
    let n = ev.as_array().unwrap().len();
    w.cloud(&server2, &["status"]).assert().success();
    assert_eq!(ledger_events(&w).as_array().unwrap().len(), n);

    let out = airlock()
        .arg("fleet")
        .arg("--state-dir")
        .arg(w.p("state"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(out.status.success());
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inst = f["instances"].as_array().unwrap();
    let a = inst.iter().find(|i| i["server_id"] == ID_A).unwrap();
    let b = inst.iter().find(|i| i["server_id"] == ID_B).unwrap();
    assert_eq!(a["last_sync_status"], "success");
    assert!(a["last_confirmed_sync"].is_string());
    assert!(a["last_import"].is_string() && a["last_export_created"].is_string());
    assert_eq!(a["warnings"].as_array().unwrap().len(), 0);
    assert_eq!(b["last_sync_status"], "failed");
    assert!(b["last_confirmed_sync"].is_null());
    assert!(b["warnings"].to_string().contains("could not be processed"));
    airlock()
        .arg("fleet")
        .arg("--state-dir")
        .arg(w.p("state"))
        .assert()
        .success()
        .stdout(contains("ghes-a.example.com"))
        .stdout(contains("warning: last sync on GitHub failed"));
}

#[test]
fn a_sync_dated_before_the_import_confirms_nothing() {
    let w = world();
    let server = Server::start(vec![Response::new(
        200,
        &sync_status(&rfc3339(now_secs() - 7200)),
    )]);
    w.cloud(&server, &["status"]).assert().success();
    assert!(ledger_events(&w)
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["kind"] != "confirm"));
    // Warnings after the threshold: not confirmed N days after import.
    let out = airlock()
        .arg("fleet")
        .arg("--state-dir")
        .arg(w.p("state"))
        .arg("--unconfirmed-after")
        .arg("0s")
        .arg("--json")
        .output()
        .unwrap();
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(f.to_string().contains("not confirmed by GitHub"));
    let out = airlock()
        .arg("fleet")
        .arg("--state-dir")
        .arg(w.p("state"))
        .arg("--expected-interval")
        .arg("1m")
        .arg("--json")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("no bundle for"));
}

fn user(login: Option<&str>, server_ids: &[&str], emails: &[&str]) -> String {
    format!(
        r#"{{"github_com_login":{},"github_com_name":null,"enterprise_server_user_ids":{},"github_com_user":{},"enterprise_server_user":{},"visual_studio_subscription_user":false,"license_type":"enterprise","github_com_profile":null,"github_com_member_roles":[],"github_com_enterprise_roles":[],"github_com_verified_domain_emails":[],"github_com_saml_name_id":null,"github_com_orgs_with_pending_invites":[],"github_com_two_factor_auth":null,"enterprise_server_emails":{},"visual_studio_license_status":null,"visual_studio_subscription_email":null,"total_user_accounts":{}}}"#,
        login
            .map(|l| format!("\"{l}\""))
            .unwrap_or_else(|| "null".into()),
        serde_json::to_string(server_ids).unwrap(),
        login.is_some(),
        !server_ids.is_empty(),
        serde_json::to_string(emails).unwrap(),
        if login.is_some() && !server_ids.is_empty() {
            2
        } else {
            1
        }
    )
}

#[test]
fn cloud_seats_lists_exactly_the_unmatched_server_users_across_pages() {
    let w = world();
    let page1 = format!(
        r#"{{"total_seats_consumed":5,"total_seats_purchased":10,"users":[{},{},{}]}}"#,
        user(
            Some("mona"),
            &["ghes-a.example.com:1"],
            &["mona@corp.example"]
        ),
        user(
            None,
            &["ghes-a.example.com:7"],
            &["hubot@corp.example", "hubot@old.example"]
        ),
        user(Some("cloudonly"), &[], &[]),
    );
    let page2 = format!(
        r#"{{"total_seats_consumed":5,"total_seats_purchased":10,"users":[{},{}]}}"#,
        user(None, &["ghes-b.example.com:3"], &["octocat@corp.example"]),
        user(
            Some("lisa"),
            &["ghes-b.example.com:4"],
            &["lisa@corp.example"]
        ),
    );
    // The Link header points back at the same server.
    let s = Server::start_dynamic(move |base| {
        vec![
        Response::new(200, &page1).header("Link", &format!("<{base}/enterprises/octo-corp/consumed-licenses?per_page=100&page=2>; rel=\"next\", <{base}/enterprises/octo-corp/consumed-licenses?per_page=100&page=2>; rel=\"last\"")),
        Response::new(200, &page2),
    ]
    });
    let out = w.cloud(&s, &["seats", "--json"]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["seats"]["total_seats_consumed"], 5);
    assert_eq!(v["seats"]["total_seats_purchased"], 10);
    let um = v["seats"]["unmatched"].as_array().unwrap();
    let ids: Vec<String> = um
        .iter()
        .map(|u| u["server_user_ids"][0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, vec!["ghes-a.example.com:7", "ghes-b.example.com:3"]);
    assert_eq!(um[0]["server_emails"].as_array().unwrap().len(), 2);
    let reqs = s.requests();
    assert_eq!(reqs.len(), 2);
    assert_eq!(
        reqs[0].path,
        "/enterprises/octo-corp/consumed-licenses?per_page=100"
    );
    assert_eq!(
        reqs[1].path,
        "/enterprises/octo-corp/consumed-licenses?per_page=100&page=2"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("ghp_secret"));
}

#[test]
fn errors_have_distinct_codes_and_say_what_to_do() {
    let w = World {
        dir: tempfile::tempdir().unwrap(),
    };
    let s = Server::start(vec![Response::new(
        401,
        r#"{"message":"Bad credentials","documentation_url":"https://docs.github.com/rest"}"#,
    )]);
    w.cloud(&s, &["status"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-UNAUTHORIZED"))
        .stderr(contains("Bad credentials"));
    let s = Server::start(vec![Response::new(
        403,
        r#"{"message":"Must have admin rights to Repository."}"#,
    )
    .header("X-Accepted-OAuth-Scopes", "read:enterprise")
    .header("X-OAuth-Scopes", "repo, gist")]);
    w.cloud(&s, &["status"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-FORBIDDEN"))
        .stderr(contains("needs scope read:enterprise"))
        .stderr(contains("repo, gist"));
    let s = Server::start(vec![Response::new(404, r#"{"message":"Not Found"}"#)]);
    w.cloud(&s, &["seats"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-NOT-FOUND"))
        .stderr(contains("enterprise slug"));
    let s = Server::start(vec![
        Response::new(502, "bad"),
        Response::new(502, "bad"),
        Response::new(502, "bad"),
        Response::new(502, "bad"),
    ]);
    w.cloud(&s, &["status"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-UNAVAILABLE"));
    // No token at all.
    airlock()
        .arg("cloud")
        .arg("status")
        .arg("--enterprise")
        .arg("x")
        .assert()
        .code(2)
        .stderr(contains("AIRLOCK-E-CLOUD-TOKEN"));
    // The token never shows up in any output.
    let s = Server::start(vec![Response::new(401, "{}")]);
    let out = w.cloud(&s, &["status", "--json"]).output().unwrap();
    assert!(
        !String::from_utf8_lossy(&out.stdout).contains("ghp_secret")
            && !String::from_utf8_lossy(&out.stderr).contains("ghp_secret")
    );
}

#[test]
fn retries_5xx_and_honours_rate_limits() {
    let w = World {
        dir: tempfile::tempdir().unwrap(),
    };
    std::fs::create_dir_all(w.p("state")).unwrap();
    let ok = r#"{"server_instances":[]}"#;
    let s = Server::start(vec![
        Response::new(500, "oops"),
        Response::new(403, r#"{"message":"API rate limit exceeded"}"#)
            .header("x-ratelimit-remaining", "0")
            .header("x-ratelimit-reset", &(now_secs() + 1).to_string()),
        Response::new(429, r#"{"message":"secondary rate limit"}"#).header("Retry-After", "1"),
        Response::new(200, ok),
    ]);
    let t = std::time::Instant::now();
    w.cloud(&s, &["status"])
        .assert()
        .success()
        .stdout(contains("no Enterprise Server instances"));
    assert_eq!(s.requests().len(), 4);
    assert!(
        t.elapsed() >= std::time::Duration::from_secs(1),
        "did not wait for the rate limit"
    );
    // A reset far in the future is not waited for.
    let s = Server::start(vec![Response::new(
        403,
        r#"{"message":"API rate limit exceeded"}"#,
    )
    .header("x-ratelimit-remaining", "0")
    .header("x-ratelimit-reset", &(now_secs() + 3600).to_string())]);
    w.cloud(&s, &["status"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-RATE-LIMITED"));
}

fn chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|n| {
        std::env::var_os("PATH").and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(n))
                .find(|f| f.is_file())
        })
    })
}

fn headless(args: &[&str], profile: &Path) -> std::process::Output {
    let bin =
        chromium().expect("chromium is not installed: run the suite with `bash tests/run.sh`");
    std::process::Command::new(bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn html_report_renders_offline_in_headless_chromium() {
    let w = world();
    let server = Server::start(vec![Response::new(
        200,
        &sync_status(&rfc3339(now_secs() + 60)),
    )]);
    w.cloud(&server, &["status"]).assert().success();
    let seats = format!(
        r#"{{"total_seats_consumed":2,"total_seats_purchased":10,"users":[{}]}}"#,
        user(None, &["ghes-a.example.com:7"], &["hubot@corp.example"])
    );
    let s2 = Server::start(vec![Response::new(200, &seats)]);
    w.cloud(&s2, &["seats"]).assert().success();
    let html = w.p("report.html");
    airlock()
        .arg("report")
        .arg("--html")
        .arg(&html)
        .arg("--state-dir")
        .arg(w.p("state"))
        .assert()
        .success();
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(
        !page.contains("http://") || !page.contains("src="),
        "external assets"
    );
    assert!(!page.contains("<script"), "no scripts");

    let profile = tempfile::tempdir().unwrap();
    let url = format!("file://{}", html.display());
    let dom = headless(&["--dump-dom", &url], profile.path());
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    // Two imported instances, and one GitHub reports that never came through airlock.
    assert_eq!(dom.matches("class=\"instance\"").count(), 3, "fleet rows");
    assert_eq!(
        dom.matches("<svg class=\"timeline\"").count(),
        3,
        "timelines"
    );
    assert!(dom.contains("ghes-c.example.com"));
    assert!(
        dom.contains("class=\"ev export\"")
            && dom.contains("class=\"ev import\"")
            && dom.contains("class=\"ev confirmed\"")
    );
    assert!(dom.contains("hubot@corp.example"), "seat-leak list");
    let png = w.p("report.png");
    let shot = headless(
        &[
            "--window-size=1200,1000",
            &format!("--screenshot={}", png.display()),
            &url,
        ],
        profile.path(),
    );
    assert!(shot.status.success());
    let bytes = std::fs::read(&png).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 10_000,
        "screenshot is {} bytes",
        bytes.len()
    );
}
