//! The GitHub Enterprise Cloud side against a loopback server that answers
//! like GitHub's documented examples: sync status and confirmations, fleet,
//! seat leaks, pagination, errors, retries, rate limits, the HTML report.

mod common;

use std::path::{Path, PathBuf};

use common::http::{ConnectProxy, Response, Server, TestPki};
use common::*;
use predicates::prelude::PredicateBooleanExt;
use predicates::str::contains;

impl World {
    fn import(&self, b: &Path) -> assert_cmd::Command {
        self.import_cmd(b, "state")
    }
    fn fleet_json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.fleet(args).arg("--json").output().unwrap();
        serde_json::from_slice(&out.stdout).unwrap()
    }
    /// Export and import into the default outbox; the import's JSON report.
    fn export_import(&self, host: &str, id: &str, t: u64) -> serde_json::Value {
        let b = self.export_at(host, id, t);
        self.import(&b).arg("--json").json_ok()["import"].clone()
    }
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
    let w = World::with_two_instances();
    let t = now_secs();
    let body = sync_status_at(&rfc3339(t + 60), t);
    let server = Server::start(vec![Response::new(200, &body)]);
    w.cloud(&server, &["status"])
        .assert()
        .success()
        .stdout(contains("confirmed bundle"))
        .stdout(contains(
            "GitHub says: The uploaded file could not be processed",
        ))
        .stdout(contains("not exported or imported through airlock here"));
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
    assert_eq!(a["known"], true);
    assert_eq!(a["confirmed"], 1);
    assert!(a["last_import"].is_string() && a["last_export_created"].is_string());
    assert_eq!(a["warnings"].as_array().unwrap().len(), 0);
    assert_eq!(b["last_sync_status"], "failed");
    assert!(b["last_confirmed_sync"].is_null());
    assert!(b["warnings"].to_string().contains("could not be processed"));
    // Known only from GitHub's report: not "known".
    let c = inst
        .iter()
        .find(|i| i["host_name"] == "ghes-c.example.com")
        .unwrap();
    assert_eq!(c["known"], false);
    assert!(
        c["last_confirmed_sync"].is_null(),
        "no bundle was confirmed"
    );
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
    let w = World::with_two_instances();
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
        .arg("--max-unconfirmed-days")
        .arg("0")
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
    let w = World::with_two_instances();
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
    let out = w.cloud(&s, &["seats", "--json"]).run_ok();
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
    let w = World::new();
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
        .fails(13, "AIRLOCK-E-CLOUD-UNAVAILABLE");
    // No token at all.
    airlock()
        .arg("cloud")
        .arg("status")
        .arg("--enterprise")
        .arg("x")
        .fails(2, "AIRLOCK-E-CLOUD-TOKEN");
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
    let w = World::new();
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
        .fails(13, "AIRLOCK-E-CLOUD-RATE-LIMITED");
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

/// The report shows the same truth as `fleet`: one shared time axis with
/// labelled ticks across the page, confirmed and superseded hand-overs
/// marked, close events grouped with a count, an exact title on every mark.
#[test]
fn html_report_renders_offline_in_headless_chromium() {
    let w = World::with_two_instances();
    let t = now_secs();
    // Three more hand-overs of A: four in all, minutes apart.
    let mut last = serde_json::Value::Null;
    for k in [3000, 2000, 1000] {
        last = w.export_import("ghes-a.example.com", ID_A, t - k);
    }
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
    // One chart, the page's width, one row per instance, one shared axis.
    assert_eq!(dom.matches("<svg class=\"timelines\"").count(), 1);
    assert!(dom.contains("width=\"100%\""));
    assert_eq!(dom.matches("<g class=\"timeline\"").count(), 3, "rows");
    let ticks = dom.matches("<g class=\"tick\"").count();
    assert!((3..=12).contains(&ticks), "{ticks} ticks");
    assert!(dom.contains("ghes-c.example.com"));
    // Marks: the confirmed hand-over alone, the three superseded ones as
    // one group of 3 (minutes apart on an hour-long axis).
    assert!(dom.contains("class=\"ev export"), "{dom}");
    assert_eq!(dom.matches("class=\"ev import confirmed\"").count(), 1);
    assert!(
        dom.contains("class=\"ev import superseded group\" data-count=\"3\""),
        "{dom}"
    );
    assert!(dom.contains("class=\"ev sync success confirmed\""));
    assert!(dom.contains("class=\"ev sync failed failed\""));
    // Every mark has a title with its exact time, bundle id and outcome.
    let svg = &dom[dom.find("<svg class=\"timelines\"").unwrap()..];
    let svg = &svg[..svg.find("</svg>").unwrap()];
    let marks = svg.matches("<g class=\"ev ").count();
    assert_eq!(svg.matches("<title>").count(), marks);
    let id4 = last["bundle_id"].as_str().unwrap();
    let title = svg
        .split("<title>")
        .find(|t| t.contains(id4) && t.contains(": confirmed"))
        .expect("a title names the confirmed bundle");
    assert!(title.starts_with("import 20"), "{title}");
    // The hand-over table marks each state.
    assert_eq!(dom.matches("class=\"handover confirmed\"").count(), 1);
    assert_eq!(
        dom.matches("class=\"handover pending\"").count(),
        1,
        "B's, to upload"
    );
    assert_eq!(dom.matches("class=\"handover superseded\"").count(), 3);
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

/// Done when: four hand-overs for one instance and one later successful
/// sync confirm exactly one bundle and supersede three; the outbox, its
/// UPLOAD.txt, import's output and `fleet` say which file is the one.
#[test]
fn four_handovers_then_one_sync_confirm_exactly_one() {
    let w = World::new();
    let t = now_secs();
    let mut reports = Vec::new();
    for k in [4000, 3000, 2000, 1000] {
        let b = w.export_at("ghes-a.example.com", ID_A, t - k);
        let out = w.import(&b).run_ok();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            text.contains("(the one file to upload for ghes-a.example.com"),
            "{text}"
        );
        reports.push(text);
    }
    assert!(
        reports[3].contains("replaces     3 earlier hand-over(s)"),
        "{}",
        reports[3]
    );
    let outbox = w.p("state/outbox");
    let top: Vec<String> = std::fs::read_dir(&outbox)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(top.len(), 2, "one usage file and its steps: {top:?}");
    let usage = top.iter().find(|f| !f.ends_with(".UPLOAD.txt")).unwrap();
    assert!(reports[3].contains(usage.as_str()));
    let aside = listing(&outbox.join("superseded"));
    assert_eq!(aside.len(), 6, "{aside:?}");
    let steps = top.iter().find(|f| f.ends_with(".UPLOAD.txt")).unwrap();
    let steps = std::fs::read_to_string(outbox.join(steps)).unwrap();
    assert!(steps.contains("This is the one file to upload for ghes-a.example.com"));
    assert!(steps.contains(&format!("File     {usage}")));
    assert!(
        steps.contains("It replaces 3 earlier hand-over(s)"),
        "{steps}"
    );
    assert!(steps.contains("do NOT upload them"));

    let body = format!(
        r#"{{"server_instances":[{{"server_id":"{ID_A}","hostname":"ghes-a.example.com","last_sync":{{"date":"{}","status":"success","error":""}}}}]}}"#,
        rfc3339(now_secs() + 60)
    );
    let server = Server::start(vec![Response::new(200, &body)]);
    let out = w.cloud(&server, &["status"]).run_ok();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("confirmed bundle"), "{text}");
    assert!(text.contains(usage.as_str()), "{text}");
    assert!(text.contains("superseded 3 earlier hand-over(s)"), "{text}");

    let ev = ledger_events(&w);
    let confirm: Vec<&serde_json::Value> = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "confirm")
        .collect();
    let confirmed: Vec<_> = confirm
        .iter()
        .filter(|e| e["outcome"] == "confirmed")
        .collect();
    let superseded: Vec<_> = confirm
        .iter()
        .filter(|e| e["outcome"] == "superseded")
        .collect();
    assert_eq!(confirmed.len(), 1);
    assert_eq!(superseded.len(), 3);
    let f = w.fleet_json(&[]);
    let a = &f["instances"][0];
    assert_eq!(a["confirmed"], 1);
    assert_eq!(a["superseded"], 3);
    assert_eq!(
        a["last_confirmed"]["bundle_sha256"],
        confirmed[0]["bundle_sha256"]
    );
    let file = a["last_confirmed"]["files"][0].as_str().unwrap();
    assert!(file.ends_with(usage.as_str()), "{file}");
    assert!(a["to_upload"].is_null());
    let states: Vec<&str> = a["handovers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["state"].as_str().unwrap())
        .collect();
    assert_eq!(
        states,
        ["superseded", "superseded", "superseded", "confirmed"]
    );
    w.fleet(&[])
        .assert()
        .success()
        .stdout(contains("confirmed:  bundle"))
        .stdout(contains(usage.as_str()))
        .stdout(contains("superseded: 3 earlier hand-over(s)"));
}

/// Done when: a pagination link to another origin never receives the token
/// (two loopback ports); redirects likewise.
#[test]
fn links_and_redirects_to_another_origin_never_get_the_token() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let page = r#"{"total_seats_consumed":1,"total_seats_purchased":2,"users":[]}"#;
    let elsewhere = Server::start(vec![Response::new(200, page), Response::new(200, page)]);
    let link = format!(
        "<{}/enterprises/octo-corp/consumed-licenses?per_page=100&page=2>; rel=\"next\"",
        elsewhere.url
    );
    let api = Server::start(vec![Response::new(200, page).header("Link", &link)]);
    w.cloud(&api, &["seats"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-ORIGIN"))
        .stderr(contains(elsewhere.url.as_str()));
    assert_eq!(api.requests().len(), 1);
    assert!(
        elsewhere.requests().is_empty(),
        "the other origin got a request"
    );

    // A redirect elsewhere: not followed either.
    let api = Server::start(vec![Response::new(302, "").header(
        "Location",
        &format!(
            "{}/enterprises/octo-corp/license-sync-status",
            elsewhere.url
        ),
    )]);
    w.cloud(&api, &["status"])
        .fails(13, "AIRLOCK-E-CLOUD-ORIGIN");
    assert!(elsewhere.requests().is_empty());

    // A redirect or link within the origin is followed, with the token.
    let api = Server::start_dynamic(|base| {
        vec![
            Response::new(307, "").header("Location", "/enterprises/octo-corp/moved"),
            Response::new(200, page).header(
                "Link",
                &format!("<{base}/enterprises/octo-corp/consumed-licenses?page=2>; rel=\"next\""),
            ),
            Response::new(200, page),
        ]
    });
    w.cloud(&api, &["seats"]).assert().success();
    let reqs = api.requests();
    assert_eq!(reqs.len(), 3);
    assert_eq!(reqs[1].path, "/enterprises/octo-corp/moved");
    assert!(reqs
        .iter()
        .all(|r| r.headers["authorization"] == "Bearer ghp_secret_token_value"));
}

/// `--submit-url`: a redirect to another origin gets neither the payload
/// nor the token; one within the origin (307) is followed.
#[test]
fn submit_url_redirects_never_leave_the_origin() {
    let w = World::new();
    let b = w.export_at("ghes-a.example.com", ID_A, now_secs() - 600);
    let elsewhere = Server::start(vec![Response::new(200, "{}")]);
    let endpoint = Server::start(vec![
        Response::new(307, "").header("Location", &format!("{}/intake", elsewhere.url))
    ]);
    w.import(&b)
        .arg("--submit-url")
        .arg(format!("{}/intake", endpoint.url))
        .env("AIRLOCK_SUBMIT_TOKEN", "intake-secret")
        .assert()
        .code(12)
        .stderr(contains("AIRLOCK-E-HANDOVER-REJECTED"))
        .stderr(contains("not sent there"));
    assert!(elsewhere.requests().is_empty());
    let endpoint = Server::start(vec![
        Response::new(308, "").header("Location", "/intake/v2"),
        Response::new(201, "{}"),
    ]);
    w.import(&b)
        .arg("--submit-url")
        .arg(format!("{}/intake", endpoint.url))
        .env("AIRLOCK_SUBMIT_TOKEN", "intake-secret")
        .assert()
        .success();
    let reqs = endpoint.requests();
    assert_eq!(reqs[1].path, "/intake/v2");
    assert_eq!(reqs[1].headers["authorization"], "Bearer intake-secret");
    assert!(!reqs[1].body.is_empty());
    // Plain http to anything but loopback is refused before anything happens.
    w.import(&b)
        .arg("--submit-url")
        .arg("http://intake.corp.example/v1")
        .fails(2, "must be https://");
}

fn official(name: &str) -> String {
    std::fs::read_to_string(root().join("fixtures/github-api").join(name)).unwrap()
}

/// Done when: `{}` from either endpoint is an error; the official examples
/// still give their results.
#[test]
fn empty_bodies_are_errors_and_the_official_examples_work() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    for body in [
        "{}",
        // go-github models the schema rather than the response.
        r#"{"title":"Enterprise License Sync Status","properties":{"server_instances":{"type":"array","items":{"type":"object","properties":{"server_id":"ghes-1","hostname":"github.enterprise.local","last_sync":{"type":"object","properties":{"date":"2025-10-30T10:30:00Z","status":"success","error":""}}}}}}}"#,
    ] {
        let s = Server::start(vec![Response::new(200, body)]);
        w.cloud(&s, &["status"])
            .assert()
            .code(13)
            .stderr(contains("AIRLOCK-E-CLOUD-RESPONSE"))
            .stdout(predicates::str::is_empty());
    }
    let s = Server::start(vec![Response::new(200, "{}")]);
    w.cloud(&s, &["seats"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-RESPONSE"))
        .stderr(contains("total_seats_consumed"));
    assert!(!w.p("state").join("cloud-seats.json").exists());

    let s = Server::start(vec![Response::new(
        200,
        &official("license-sync-status.example.json"),
    )]);
    let out = w.cloud(&s, &["status", "--json"]).output().unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let inst = v["instances"].as_array().unwrap();
    assert_eq!(inst.len(), 2);
    assert_eq!(inst[0]["server_id"], "deadbeef1");
    assert_eq!(inst[0]["hostname"], "github.example.com");
    assert_eq!(inst[1]["server_id"], "filetoffish1");
    for i in inst {
        assert_eq!(i["status"], "success");
        assert_eq!(i["date"], "2020-01-01T00:00:00Z");
        assert_eq!(i["date_unreadable"], false);
        assert_eq!(i["known"], false);
        assert!(i["error"].is_null(), "an empty error is no error");
    }

    let s = Server::start(vec![Response::new(
        200,
        &official("consumed-licenses.example.json"),
    )]);
    w.cloud(&s, &["seats"])
        .assert()
        .success()
        .stdout(contains("5000 seats consumed of 4500 purchased"))
        .stdout(contains("500 more seats consumed than purchased"))
        .stdout(contains("1 server user(s) match no Cloud account"))
        .stdout(contains("example_host_name:123  hubot@example.com"));
    let seats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.p("state").join("cloud-seats.json")).unwrap())
            .unwrap();
    assert_eq!(seats["unmatched"].as_array().unwrap().len(), 1);
}

/// Items are read leniently; what cannot be used is said, not dropped.
#[test]
fn lenient_items_and_unreadable_dates_are_reported() {
    let w = World::with_two_instances();
    let body = format!(
        r#"{{"server_instances":[
          {{"hostname":"nameless.example.com","last_sync":{{"status":"success"}}}},
          {{"server_id":"{ID_A}","hostname":null,"last_sync":{{"date":"28.11.2026 10:58","status":"success","error":null}},"new_field":[1]}},
          {{"server_id":"{ID_B}","hostname":"ghes-b.example.com","last_sync":{{"date":"{} UTC","status":"success"}}}}
        ]}}"#,
        rfc3339(now_secs() + 60)
            .replace('T', " ")
            .trim_end_matches('Z')
    );
    let s = Server::start(vec![Response::new(200, &body)]);
    w.cloud(&s, &["status"])
        .assert()
        .success()
        .stderr(contains("nameless.example.com) has no server_id; skipped"))
        .stdout(contains("\"28.11.2026 10:58\" is in no form airlock reads"));
    let ev = ledger_events(&w);
    let confirmed: Vec<&serde_json::Value> = ev
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "confirm")
        .collect();
    // B's "YYYY-MM-DD HH:MM:SS UTC" is read and confirms; A's date is not.
    assert_eq!(confirmed.len(), 1);
    assert_eq!(confirmed[0]["server_id"], ID_B);
    w.fleet(&["--check"])
        .assert()
        .code(17)
        .stdout(contains("sync-date-unreadable"));

    // enterprise_server_user: null, with server ids: still a server user.
    let seats = r#"{"total_seats_consumed":1,"total_seats_purchased":1,"users":[
        {"github_com_login":null,"github_com_user":null,"enterprise_server_user":null,
         "enterprise_server_user_ids":["ghes-a.example.com:9"],"enterprise_server_emails":["x@corp.example"]}]}"#;
    let s = Server::start(vec![Response::new(200, seats)]);
    w.cloud(&s, &["seats"])
        .assert()
        .success()
        .stdout(contains("ghes-a.example.com:9  x@corp.example"));
}

/// Done when: `fleet --check` exits non-zero for a failed last sync and for
/// an unconfirmed import older than the limit; distinct statuses.
#[test]
fn fleet_check_exit_statuses() {
    let w = World::with_two_instances();
    // A synced before its import (confirms nothing), B failed.
    let s = Server::start(vec![Response::new(
        200,
        &sync_status(&rfc3339(now_secs() - 7200)),
    )]);
    w.cloud(&s, &["status", "--check"])
        .assert()
        .code(17)
        .stdout(contains("ghes-b.example.com (0f9e8d7c-6b5a-4c3d-8e2f-1a0b9c8d7e6f): sync-failed: last sync on GitHub failed"));
    w.fleet(&["--check"])
        .assert()
        .code(17)
        .stdout(contains("sync-failed"))
        .stdout(contains("unconfirmed").not());
    // Quiet mode still prints the problems (for cron mail).
    w.fleet(&["--check", "-q"])
        .assert()
        .code(17)
        .stdout(contains("sync-failed"));
    w.fleet(&["--check", "--max-unconfirmed-days", "0"])
        .assert()
        .code(19)
        .stdout(contains(
            "ghes-a.example.com (6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d): unconfirmed: newest import",
        ));
    w.fleet(&["--check", "--expected-interval", "1m"])
        .assert()
        .code(21);
    let out = w.fleet(&["--check", "--json"]).output().unwrap();
    assert_eq!(out.status.code(), Some(17));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["healthy"], false);
    assert_eq!(v["exit_code"], 17);
    assert_eq!(v["problems"].as_array().unwrap().len(), 1);
    assert_eq!(v["problems"][0]["problem"], "sync-failed");

    // A successful sync after the imports: healthy, exit 0.
    let w = World::with_two_instances();
    let body = format!(
        r#"{{"server_instances":[{{"server_id":"{ID_A}","hostname":"ghes-a.example.com","last_sync":{{"date":"{d}","status":"success"}}}},{{"server_id":"{ID_B}","hostname":"ghes-b.example.com","last_sync":{{"date":"{d}","status":"success"}}}}]}}"#,
        d = rfc3339(now_secs() + 60)
    );
    let s = Server::start(vec![Response::new(200, &body)]);
    w.cloud(&s, &["status", "--check"]).assert().success();
    w.fleet(&["--check", "--max-unconfirmed-days", "0"])
        .assert()
        .success()
        .stdout(contains("healthy: 2 instance(s) checked"));
}

/// Regression (#27): `cloud status` waited without limit for the state
/// lock, which an import held while its HTTP hand-over waited on the
/// network. Now it waits at most 5 s, then reports GitHub's answer beside
/// the ledger as committed, records nothing, and says so.
#[test]
fn cloud_status_reports_without_recording_while_another_process_holds_the_lock() {
    let w = World::with_two_instances();
    let body = format!(
        r#"{{"server_instances":[{{"server_id":"{ID_A}","hostname":"ghes-a.example.com","last_sync":{{"date":"{d}","status":"success"}}}}]}}"#,
        d = rfc3339(now_secs() + 60)
    );
    let before = ledger_events(&w).as_array().unwrap().len();
    // Held the way airlock holds it: flock on STATE/lock.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(w.p("state").join("lock"))
        .unwrap();
    lock.lock().unwrap();

    let s = Server::start(vec![Response::new(200, &body)]);
    let start = std::time::Instant::now();
    let out = w
        .cloud(&s, &["status", "--check", "--json"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(took < std::time::Duration::from_secs(30), "took {took:?}");
    let v = json_exit(&out, 0);
    assert_eq!(v["recorded"], false);
    assert_eq!(v["instances"][0]["status"], "success");
    assert_eq!(v["instances"][0]["known"], true);
    assert!(v["instances"][0]["confirmed"].is_null());
    assert_eq!(v["health"]["healthy"], true);
    let s = Server::start(vec![Response::new(200, &body)]);
    w.cloud(&s, &["status"])
        .timeout(std::time::Duration::from_secs(120))
        .assert()
        .success()
        .stdout(contains("not recorded: another airlock process"))
        .stdout(contains("confirmed bundle").not());
    assert_eq!(ledger_events(&w).as_array().unwrap().len(), before);

    // Once the lock is free, the same answer is recorded.
    drop(lock);
    let s = Server::start(vec![Response::new(200, &body)]);
    let out = w.cloud(&s, &["status", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["recorded"], true);
    assert!(ledger_events(&w)
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == "confirm" && e["server_id"] == ID_A));
}

/// Done when (#27): an import whose endpoint never answers fails within its
/// deadline, and `cloud status --check` meanwhile answers within seconds
/// (whether or not the import holds the state lock while it waits).
#[test]
fn cloud_status_answers_while_an_import_waits_on_a_silent_endpoint() {
    let w = World::with_two_instances();
    let b = w.export_at("ghes-a.example.com", ID_A, now_secs() - 60);
    let silent = common::http::Silent::start();
    let mut import = std::process::Command::new(airlock_bin());
    isolate(&mut import);
    import
        .arg("import")
        .arg(&b)
        .trust_state(&w.allowed, w.p("state"))
        .arg("--submit-url")
        .arg(&silent.url)
        .args(["--http-timeout", "30s", "--http-deadline", "30s"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let started = std::time::Instant::now();
    let child = import.spawn().unwrap();
    // Wait until the import is on the network.
    while *silent.accepted.lock().unwrap() == 0 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let body = format!(
        r#"{{"server_instances":[{{"server_id":"{ID_A}","hostname":"ghes-a.example.com","last_sync":{{"date":"{}","status":"success"}}}}]}}"#,
        rfc3339(now_secs() - 7200)
    );
    let s = Server::start(vec![Response::new(200, &body)]);
    let start = std::time::Instant::now();
    let out = w
        .cloud(&s, &["status", "--check", "--json"])
        .timeout(std::time::Duration::from_secs(120))
        .output()
        .unwrap();
    let took = start.elapsed();
    // 5 s for the lock at most; waiting for the import would take 30 s.
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["recorded"].is_boolean());
    // And the import ends by its deadline, as a hand-over failure.
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(12));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AIRLOCK-E-HANDOVER-TIMEOUT"));
    assert!(started.elapsed() < std::time::Duration::from_secs(90));
}

/// A test CA's PEM in `dir`.
fn write_ca(dir: &Path, pki: &TestPki) -> PathBuf {
    let f = dir.join("corp-ca.pem");
    std::fs::write(&f, &pki.ca_pem).unwrap();
    f
}

/// The system's CA bundle (if any) plus the test CA, in a fresh directory
/// laid out like /etc/ssl/certs.
fn store_copy_with(pki: &TestPki) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let mut bundle =
        std::fs::read_to_string("/etc/ssl/certs/ca-certificates.crt").unwrap_or_default();
    bundle.push_str(&pki.ca_pem);
    std::fs::write(d.path().join("ca-certificates.crt"), bundle).unwrap();
    std::fs::write(d.path().join("airlock-test-ca.pem"), &pki.ca_pem).unwrap();
    d
}

const SYNC_OK: &str = r#"{"server_instances":[]}"#;

/// Done when: `cloud status` succeeds through a loopback HTTPS stand-in
/// signed by a test CA given by --ca-file, SSL_CERT_FILE, SSL_CERT_DIR and
/// the system store, and fails clearly without it.
#[test]
fn https_stand_in_signed_by_a_test_ca() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let pki = TestPki::new();
    let ca = write_ca(w.dir.path(), &pki);

    // Without the CA: refused, with the code and hint that say what to do.
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-TLS"))
        .stderr(contains("UnknownIssuer"))
        .stderr(contains("--ca-file"));
    assert!(s.requests().is_empty());

    // --ca-file.
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status", "--ca-file", ca.to_str().unwrap()])
        .assert()
        .success()
        .stdout(contains("no Enterprise Server instances"));
    assert_eq!(
        s.requests()[0].headers["authorization"],
        "Bearer ghp_secret_token_value"
    );

    // ca_file in airlock.toml.
    let cfg = w.p("airlock.toml");
    std::fs::write(&cfg, "ca_file = \"corp-ca.pem\"\n").unwrap();
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status", "--config", cfg.to_str().unwrap()])
        .assert()
        .success();

    // SSL_CERT_FILE.
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status"])
        .env("SSL_CERT_FILE", &ca)
        .assert()
        .success();

    // SSL_CERT_DIR: a copy of the system store with the CA added.
    let store = store_copy_with(&pki);
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status"])
        .env("SSL_CERT_DIR", store.path())
        .assert()
        .success();

    // A variable naming nothing usable fails closed, before any request,
    // even when the other one would give certificates.
    w.cloud(&s, &["status"])
        .env("SSL_CERT_FILE", w.p("missing.pem"))
        .fails(2, "AIRLOCK-E-TLS-TRUST");
    w.cloud(&s, &["status"])
        .env("SSL_CERT_FILE", w.p("missing.pem"))
        .env("SSL_CERT_DIR", store.path())
        .fails(2, "SSL_CERT_FILE=");
    w.cloud(&s, &["status"])
        .env("SSL_CERT_DIR", w.p("no-such-dir"))
        .fails(2, "SSL_CERT_DIR entry");
    w.cloud(&s, &["status", "--ca-file", cfg.to_str().unwrap()])
        .assert()
        .code(2)
        .stderr(contains("AIRLOCK-E-TLS-TRUST"))
        .stderr(contains("no PEM certificate"));

    // The system store itself: the binary runs in a private mount
    // namespace where a copy of /etc/ssl/certs with the CA added is
    // mounted over /etc/ssl/certs; the machine's store is never touched.
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    match system_store_run(&w, &s, store.path()) {
        Some(out) => assert!(
            out.status.success(),
            "system store: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
        None => eprintln!(
            "NOTE: no mount namespace available (unshare -m needs root or user namespaces); \
             the system store was checked through SSL_CERT_DIR only"
        ),
    }
}

/// Run `airlock cloud status` with `certs` mounted over /etc/ssl/certs in a
/// private mount namespace; None when no namespace can be made here.
fn system_store_run(w: &World, s: &Server, certs: &Path) -> Option<std::process::Output> {
    let mut c = unshare_mount(
        "mount --bind \"$1\" /etc/ssl/certs && shift && exec \"$@\"",
        certs,
    )?;
    c.arg(airlock_bin())
        .args([
            "cloud",
            "status",
            "--enterprise",
            "octo-corp",
            "--api-url",
            &s.url,
        ])
        .arg("--state-dir")
        .arg(w.p("state"));
    c.env("GH_TOKEN", "ghp_secret_token_value");
    Some(c.output().unwrap())
}

/// HTTPS_PROXY does not apply to loopback (decision 76; tests/proxy.rs has
/// the tunnelled cases, to a name only the test proxy resolves): https to
/// `localhost` goes direct and the proxy sees nothing, NO_PROXY or not.
#[test]
fn https_to_loopback_bypasses_a_connect_proxy() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let pki = TestPki::new();
    let ca = write_ca(w.dir.path(), &pki);
    let proxy = ConnectProxy::start();
    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status", "--ca-file", ca.to_str().unwrap()])
        .env("HTTPS_PROXY", &proxy.url)
        .assert()
        .success();
    assert_eq!(s.requests().len(), 1);

    let s = Server::start_tls(vec![Response::new(200, SYNC_OK)], &pki);
    w.cloud(&s, &["status", "--ca-file", ca.to_str().unwrap()])
        .env("HTTPS_PROXY", &proxy.url)
        .env("NO_PROXY", "localhost")
        .assert()
        .success();
    assert!(proxy.targets().is_empty(), "{:?}", proxy.targets());
}

/// `--submit-url` over HTTPS uses the same trust: refused without the test
/// CA (nothing delivered, the hint says how to add a CA), delivered with
/// `--ca-file`.
#[test]
fn submit_url_over_https_with_a_test_ca() {
    let w = World::new();
    let pki = TestPki::new();
    let ca = write_ca(w.dir.path(), &pki);
    let b = w.export_at("ghes-a.example.com", ID_A, now_secs() - 600);
    let s = Server::start_tls(vec![Response::new(201, "{}")], &pki);
    w.import(&b)
        .arg("--submit-url")
        .arg(format!("{}/intake", s.url))
        .assert()
        .code(12)
        .stderr(contains("AIRLOCK-E-HANDOVER-FAILED"))
        .stderr(contains("UnknownIssuer"))
        .stderr(contains("--ca-file"));
    assert!(s.requests().is_empty());
    w.import(&b)
        .arg("--submit-url")
        .arg(format!("{}/intake", s.url))
        .arg("--ca-file")
        .arg(&ca)
        .assert()
        .success();
    assert_eq!(s.requests().len(), 1);
    assert_eq!(s.requests()[0].path, "/intake");
}

/// `--host` and `GH_HOST` pick the API as gh does. A refusing proxy shows
/// where airlock wanted to go, without any traffic leaving the machine.
#[test]
fn host_and_gh_host_pick_the_api() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let run = |args: &[&str], gh_host: Option<&str>| {
        let proxy = ConnectProxy::start();
        let mut c = airlock();
        c.arg("cloud")
            .arg("status")
            .args(["--enterprise", "octo-corp", "--state-dir"])
            .arg(w.p("state"))
            .args(args)
            .env("GH_TOKEN", "ghp_secret_token_value")
            .env("HTTPS_PROXY", &proxy.url);
        if let Some(h) = gh_host {
            c.env("GH_HOST", h);
        }
        let out = c.output().unwrap();
        (out, proxy.targets())
    };
    let (out, t) = run(&["--host", "octo.ghe.com"], None);
    assert_eq!(out.status.code(), Some(13));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTPS_PROXY"));
    assert_eq!(t, ["CONNECT api.octo.ghe.com:443"]);
    let (_, t) = run(&[], Some("github.com"));
    assert_eq!(t, ["CONNECT api.github.com:443"]);
    let (_, t) = run(&["--host", "octo.ghe.com"], Some("github.com"));
    assert_eq!(
        t,
        ["CONNECT api.octo.ghe.com:443"],
        "--host wins over GH_HOST"
    );
    let (_, t) = run(&[], None);
    assert_eq!(t, ["CONNECT api.github.com:443"]);
    // A GHES host in GH_HOST (set for gh) is refused with a clear message.
    let (out, t) = run(&[], Some("ghes.corp.example"));
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("GH_HOST"));
    assert!(t.is_empty());
    let (out, _) = run(
        &["--host", "x.ghe.com", "--api-url", "https://api.github.com"],
        None,
    );
    assert_eq!(out.status.code(), Some(2));
}

/// A stand-in serving `pages` pages of `per_page` realistic users each,
/// made as they are asked for (never stored); every third user is a server
/// user matching no Cloud account. The `Link` header's `rel` is unquoted
/// on odd pages (RFC 8288 allows both).
fn big_seats_standin(pages: usize, per_page: usize) -> Server {
    Server::start_fn(pages, move |req| {
        let page: usize = req
            .path
            .split("page=")
            .nth(2)
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let mut body = String::with_capacity(per_page * 700 + 100);
        body.push_str(
            r#"{"total_seats_consumed":1000000,"total_seats_purchased":900000,"users":["#,
        );
        for i in 0..per_page {
            let n = (page - 1) * per_page + i;
            if i > 0 {
                body.push(',');
            }
            let id = format!("ghes-a.example.com:{n}");
            let email = format!("user{n}@corp.example");
            let login = format!("user{n}");
            body.push_str(&user(
                (!n.is_multiple_of(3)).then_some(login.as_str()),
                &[&id],
                &[&email],
            ));
        }
        body.push_str("]}");
        let mut r = Response::new(200, &body);
        if page < pages {
            let rel = if !page.is_multiple_of(2) {
                "next"
            } else {
                "\"next\""
            };
            r = r.header(
                "Link",
                &format!("</enterprises/octo-corp/consumed-licenses?per_page={per_page}&page={}>; rel={rel}, </enterprises/octo-corp/consumed-licenses?per_page={per_page}&page={pages}>; rel=\"last\"", page + 1),
            );
        }
        r
    })
}

/// Run `airlock ARGS` under GNU time: the child's peak RSS in KiB (its
/// `ru_maxrss`, read after it was waited for) and its exit status; its
/// output goes to `dir`/stdout.json and stderr.txt.
fn peak_rss_kib(args: &[&std::ffi::OsStr], dir: &Path) -> (u64, std::process::ExitStatus) {
    let time = Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "GNU time (/usr/bin/time) is needed to read the child's ru_maxrss"
    );
    let report = dir.join("rss.txt");
    let mut c = std::process::Command::new(time);
    isolate(&mut c);
    let status = c
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(airlock_bin())
        .args(args)
        .env("GH_TOKEN", "ghp_secret_token_value")
        .stdout(std::fs::File::create(dir.join("stdout.json")).unwrap())
        .stderr(std::fs::File::create(dir.join("stderr.txt")).unwrap())
        .status()
        .unwrap();
    let kib = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap();
    (kib, status)
}

/// Done when (#28): `cloud seats` keeps what it reports, not the users:
/// 100,000 realistic users in 1,000 pages stay within 64 MiB peak RSS (the
/// old reader kept every user: about 170 MiB here, 1.7 GiB at a million;
/// scripts/seats-rss.sh measures a million in 10,000 pages).
#[test]
fn cloud_seats_memory_is_bounded_by_design() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    // scripts/seats-rss.sh sets 10,000 (a million users).
    let pages = std::env::var("AIRLOCK_SEATS_PAGES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(1_000);
    let per_page = 100;
    let s = big_seats_standin(pages, per_page);
    let state = w.p("state");
    let args: Vec<&std::ffi::OsStr> = [
        "cloud",
        "seats",
        "--json",
        "--enterprise",
        "octo-corp",
        "--api-url",
        &s.url,
    ]
    .into_iter()
    .map(std::ffi::OsStr::new)
    .chain([std::ffi::OsStr::new("--state-dir"), state.as_os_str()])
    .collect();
    let (kib, status) = peak_rss_kib(&args, w.dir.path());
    eprintln!(
        "cloud seats, {} users in {pages} pages: peak RSS {:.1} MiB",
        pages * per_page,
        kib as f64 / 1024.0
    );
    assert!(
        status.success(),
        "{}",
        std::fs::read_to_string(w.p("stderr.txt")).unwrap()
    );
    assert!(kib <= 64 * 1024, "peak RSS {kib} KiB > 64 MiB");
    assert_eq!(s.requests().len(), pages);
    // Everything still there: each unmatched user once, in order, in the
    // file and in the JSON output.
    let out: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.p("stdout.json")).unwrap()).unwrap();
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.p("state").join("cloud-seats.json")).unwrap())
            .unwrap();
    assert_eq!(out["seats"], file);
    let um = file["unmatched"].as_array().unwrap();
    assert_eq!(um.len(), (pages * per_page).div_ceil(3));
    assert_eq!(um[1]["server_user_ids"][0], "ghes-a.example.com:3");
    assert_eq!(file["users"], pages * per_page);
    assert_eq!(file["total_seats_consumed"], 1_000_000);
}

/// One scripted answer of [`raw_server`]: bytes written as they are, at
/// once, or the head at once and the body a byte at a time with a pause
/// between (a trickle); then the connection closed.
struct Raw(Vec<u8>, Option<std::time::Duration>);

/// A loopback server answering each connection with the next [`Raw`]
/// reply, whatever was asked: for bodies no well-behaved server sends.
/// Returns its URL and the number of connections it answered.
fn raw_server(replies: Vec<Raw>) -> (String, std::sync::Arc<std::sync::Mutex<usize>>) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::Mutex::new(0));
    let n = count.clone();
    std::thread::spawn(move || {
        for Raw(bytes, trickle) in replies {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            *n.lock().unwrap() += 1;
            let mut r = std::io::BufReader::new(stream);
            let mut line = String::new();
            while r.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
                line.clear();
            }
            let mut s = r.into_inner();
            match trickle {
                None => {
                    let _ = s.write_all(&bytes);
                }
                Some(pause) => {
                    let head = bytes.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
                    let _ = s.write_all(&bytes[..head]);
                    for b in &bytes[head..] {
                        if s.write_all(&[*b]).is_err() {
                            break;
                        }
                        std::thread::sleep(pause);
                    }
                }
            }
        }
    });
    (url, count)
}

fn raw_200(body: &[u8], content_length: usize) -> Vec<u8> {
    let mut v = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

fn cloud_at(w: &World, url: &str, args: &[&str]) -> assert_cmd::Command {
    let mut c = airlock();
    c.arg("cloud")
        .args(args)
        .arg("--enterprise")
        .arg("octo-corp")
        .arg("--api-url")
        .arg(url)
        .arg("--state-dir")
        .arg(w.p("state"))
        .env("GH_TOKEN", "ghp_secret_token_value");
    c
}

/// Regression (#28): truncated, non-UTF-8 and slow bodies are each named,
/// retried with backoff, and end in a clear code within the deadline (not
/// "not JSON: EOF … column 0"); a retry that gets a good body succeeds.
#[test]
fn bad_bodies_are_named_retried_and_bounded_by_the_deadline() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let ok = br#"{"server_instances":[]}"#;
    let short = raw_200(br#"{"server_instances":["#, 1000);
    let latin1 = raw_200(
        b"{\"server_instances\":[{\"server_id\":\"caf\xe9\"}]}",
        b"{\"server_instances\":[{\"server_id\":\"caf\xe9\"}]}".len(),
    );
    // A truncated body, then a good one: the retry succeeds.
    let (url, n) = raw_server(vec![
        Raw(short.clone(), None),
        Raw(raw_200(ok, ok.len()), None),
    ]);
    cloud_at(&w, &url, &["status"])
        .assert()
        .success()
        .stdout(contains("no Enterprise Server instances"));
    assert_eq!(*n.lock().unwrap(), 2);

    let deadline = ["--http-timeout", "1s", "--http-deadline", "4s"];
    for (reply, trickle, named, code) in [
        (short, None, "truncated", "AIRLOCK-E-CLOUD-UNAVAILABLE"),
        (
            latin1,
            None,
            "not UTF-8 (at byte 38)",
            "AIRLOCK-E-CLOUD-RESPONSE",
        ),
        (
            raw_200(ok, ok.len()),
            Some(std::time::Duration::from_millis(300)),
            "too slow",
            "AIRLOCK-E-CLOUD-UNAVAILABLE",
        ),
    ] {
        let replies = (0..5).map(|_| Raw(reply.clone(), trickle)).collect();
        let (url, n) = raw_server(replies);
        let t = std::time::Instant::now();
        let mut args = vec!["status"];
        args.extend(deadline);
        cloud_at(&w, &url, &args)
            .assert()
            .code(13)
            .stderr(contains(code))
            .stderr(contains(named))
            .stderr(contains("within http_deadline 4s"))
            .stderr(contains("EOF while parsing").not());
        let tries = *n.lock().unwrap();
        assert!(tries >= 2, "{named}: retried ({tries} attempts)");
        // Generous: the deadline is 4 s.
        assert!(t.elapsed() < std::time::Duration::from_secs(30), "{named}");
    }
}

/// Regression (#28): a SAML SSO 403 says so and gives the authorization
/// URL from `X-GitHub-SSO`, as gh does, instead of blaming the scopes.
#[test]
fn sso_403_gives_the_authorization_url() {
    let w = World::new();
    let sso = "https://github.com/orgs/octo-org/sso?authorization_request=AZSCKtL4U8lX1H";
    let s = Server::start(vec![Response::new(
        403,
        r#"{"message":"Resource protected by organization SAML enforcement. You must grant your Personal Access token access to this organization.","documentation_url":"https://docs.github.com/articles/authenticating-to-a-github-organization-with-saml-single-sign-on/"}"#,
    )
    .header("X-GitHub-SSO", &format!("required; url={sso}"))
    .header("X-Accepted-OAuth-Scopes", "read:enterprise")
    .header("X-OAuth-Scopes", "read:enterprise")]);
    w.cloud(&s, &["seats"])
        .assert()
        .code(13)
        .stderr(contains("AIRLOCK-E-CLOUD-FORBIDDEN"))
        .stderr(contains("SAML single sign-on"))
        .stderr(contains(format!("authorize in your web browser: {sso}")))
        .stderr(contains("needs scope").not());
}

/// Regression (#28): a token file saved with a byte-order mark and CRLF
/// works; one with a space inside is refused naming the file, not sent.
#[test]
fn token_files_with_a_bom_and_crlf_work() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let tf = w.p("token.txt");
    std::fs::write(&tf, b"\xEF\xBB\xBFghp_from_file\r\n").unwrap();
    let s = Server::start(vec![Response::new(200, r#"{"server_instances":[]}"#)]);
    w.cloud(&s, &["status"])
        .env_remove("GH_TOKEN")
        .arg("--token-file")
        .arg(&tf)
        .assert()
        .success();
    assert_eq!(
        s.requests()[0].headers["authorization"],
        "Bearer ghp_from_file"
    );
    std::fs::write(&tf, b"ghp_from file\n").unwrap();
    let s = Server::start(vec![]);
    w.cloud(&s, &["status"])
        .env_remove("GH_TOKEN")
        .arg("--token-file")
        .arg(&tf)
        .assert()
        .code(2)
        .stderr(contains("AIRLOCK-E-CLOUD-TOKEN"))
        .stderr(contains("token.txt"))
        .stderr(contains("a space or tab"))
        .stderr(contains("ghp_from").not());
    assert!(s.requests().is_empty());
}

/// Regression (#28): `rel=next` without quotes paginates (the seat list
/// was cut short), and text from GitHub reaches the terminal escaped.
#[test]
fn unquoted_rel_next_paginates_and_github_text_is_escaped() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let page = |ids: &[&str]| {
        let users: Vec<String> = ids.iter().map(|i| user(None, &[i], &[])).collect();
        format!(
            r#"{{"total_seats_consumed":2,"total_seats_purchased":2,"users":[{}]}}"#,
            users.join(",")
        )
    };
    let (p1, p2) = (page(&["h:1"]), page(&["h:2"]));
    let s = Server::start(vec![
        Response::new(200, &p1).header(
            "Link",
            "</enterprises/octo-corp/consumed-licenses?per_page=100&page=2>; rel=next",
        ),
        Response::new(200, &p2),
    ]);
    w.cloud(&s, &["seats"])
        .assert()
        .success()
        .stdout(contains("2 server user(s) match no Cloud account"))
        .stdout(contains("h:2"));

    let s = Server::start(vec![Response::new(
        200,
        &format!(
            r#"{{"server_instances":[{{"server_id":"{ID_A}","hostname":"ghes\u202e.example.com","last_sync":{{"date":"2026-11-28T10:58:40Z","status":"failed","error":"\u001b[31mbad\nfile"}}}}]}}"#
        ),
    )]);
    let out = w.cloud(&s, &["status"]).output().unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains(r"GitHub says: \u{1b}[31mbad\nfile"), "{text}");
    assert!(text.contains(r"ghes\u{202e}.example.com"), "{text}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{202e}'));
}

/// A page cut off after some of its users were written out is read again
/// from the start: the seat file has each unmatched user once.
#[test]
fn a_page_read_again_replaces_what_its_failed_reading_gave() {
    let w = World::new();
    std::fs::create_dir_all(w.p("state")).unwrap();
    let users: Vec<String> = (0..50)
        .map(|i| user(None, &[&format!("h:{i}")], &[]))
        .collect();
    let page = format!(
        r#"{{"total_seats_consumed":50,"total_seats_purchased":50,"users":[{}]}}"#,
        users.join(",")
    );
    let cut = &page.as_bytes()[..page.len() * 2 / 3];
    let (url, n) = raw_server(vec![
        Raw(raw_200(cut, page.len()), None),
        Raw(raw_200(page.as_bytes(), page.len()), None),
    ]);
    cloud_at(&w, &url, &["seats"])
        .assert()
        .success()
        .stdout(contains("50 server user(s) match no Cloud account"));
    assert_eq!(*n.lock().unwrap(), 2);
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(w.p("state").join("cloud-seats.json")).unwrap())
            .unwrap();
    let ids: Vec<&str> = file["unmatched"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["server_user_ids"][0].as_str().unwrap())
        .collect();
    let want: Vec<String> = (0..50).map(|i| format!("h:{i}")).collect();
    assert_eq!(ids, want);
}

/// Regression (issue 28): text GitHub sent before airlock sanitised it, kept
/// in the ledger (a sync's error), reached the terminal raw through `fleet`.
#[test]
fn fleet_prints_ledger_text_from_github_on_one_line_without_escapes() {
    let d = tempfile::tempdir().unwrap();
    let state = d.path().join("state");
    // A ledger with a cloud-sync record whose error text holds ESC and a
    // newline, as an older airlock recorded GitHub's answer.
    std::fs::create_dir_all(&state).unwrap();
    let db = rusqlite::Connection::open(state.join("ledger.sqlite")).unwrap();
    db.execute_batch(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO meta VALUES ('schema_version', '1');
         CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT NOT NULL, at TEXT NOT NULL,
           outcome TEXT NOT NULL, bundle_sha256 TEXT, bundle_id TEXT, signer TEXT, principal TEXT,
           sequence INTEGER, host_name TEXT, server_id TEXT, created TEXT, expires TEXT, code TEXT,
           detail TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL);",
    )
    .unwrap();
    db.execute(
        "INSERT INTO events (seq, kind, at, outcome, host_name, server_id, created, detail, prev_hash, hash)
         VALUES (1, 'cloud-sync', '2026-11-28T00:00:00Z', 'failed', 'ghes.example.com',
                 '6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d', '2026-11-27T00:00:00Z', ?1, '', '')",
        ["bad\x1b[31m red\nforged: line"],
    )
    .unwrap();
    drop(db);
    let o = airlock()
        .args(["fleet", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(!out.contains('\x1b'), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("forged")), "{out}");
    assert!(out.contains("bad\\x1b[31m red\\nforged: line"), "{out}");
}
