//! Licence bundles in `fleet` and the HTML report (issue #29, decision 85):
//! on the connected side, one ledger holds the usage bundles imported from
//! the instances and the licence bundles exported for the enterprise; the
//! enterprise is listed apart, never as an instance, never with a
//! `no-export` problem.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use sha2::Digest;

const ENTERPRISE: &str = "octo-corp";

/// Run `c` with `dir` as the home directory.
fn run(dir: &Path, c: &mut assert_cmd::Command) -> std::process::Output {
    isolate(c);
    c.env("HOME", dir).output().unwrap()
}

fn ok(o: std::process::Output) -> std::process::Output {
    assert_ok(&o, "airlock");
    o
}

#[test]
fn fleet_and_report_list_licence_bundles_per_enterprise_apart_from_instances() {
    let d = tempfile::tempdir().unwrap();
    let p = |n: &str| -> PathBuf { d.path().join(n) };
    let state = p("connected-state");
    // A usage bundle from the isolated side, imported here.
    let exporter = key(d.path(), "exporter_ed25519");
    let allowed = allowed_signers(
        d.path(),
        "*.example.com",
        &[&read_pub(&p("exporter_ed25519.pub"))],
    );
    let usage = sample_usage(d.path());
    let bundle = export(d.path(), &exporter, &[&usage], &p("usage.airlock.zip"), &[]);
    ok(run(
        d.path(),
        airlock()
            .args(["import", "--json"])
            .arg(&bundle)
            .trust_state(&allowed, &state)
            .arg("--outbox")
            .arg(p("outbox")),
    ));
    // A licence file exported for the enterprise into the same ledger.
    let connected = key(d.path(), "connected_ed25519");
    let ghl = p("github-enterprise-ABC123.ghl");
    std::fs::write(&ghl, airlock::sample::licence("ABC123")).unwrap();
    let licence_bundle = p("licence.airlock.zip");
    ok(run(
        d.path(),
        airlock()
            .args(["export", "--enterprise", ENTERPRISE, "--json"])
            .arg(&ghl)
            .key_out_state(&connected, &licence_bundle, &state),
    ));
    let sha = hex::encode(sha2::Sha256::digest(
        std::fs::read(&licence_bundle).unwrap(),
    ));

    let o = ok(run(
        d.path(),
        airlock()
            .args(["fleet", "--json", "--state-dir"])
            .arg(&state),
    ));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let instances = v["instances"].as_array().unwrap();
    assert_eq!(instances.len(), 1, "{v}");
    assert_eq!(instances[0]["host_name"], airlock::sample::SAMPLE_HOST);
    let e = &v["enterprises"];
    assert_eq!(e.as_array().unwrap().len(), 1, "{v}");
    assert_eq!(e[0]["enterprise"], ENTERPRISE);
    let l = &e[0]["licences"][0];
    assert_eq!(l["reference"], "ABC123");
    assert_eq!(l["sequence"], 1);
    assert_eq!(l["bundle_sha256"], sha.as_str());
    assert!(l["exported"].as_str().unwrap().ends_with('Z'));

    // The health check knows one instance, and nothing of the enterprise.
    let o = run(
        d.path(),
        airlock()
            .args(["fleet", "--check", "--json", "--state-dir"])
            .arg(&state),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(
        v["problems"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["host_name"] == airlock::sample::SAMPLE_HOST),
        "{v}"
    );
    let o = run(
        d.path(),
        airlock()
            .args(["fleet", "--check-format", "plugin", "--state-dir"])
            .arg(&state),
    );
    let line = String::from_utf8_lossy(&o.stdout);
    assert!(line.contains("1 instance(s)"), "{line}");
    assert!(!line.contains(ENTERPRISE), "{line}");

    // The human table: the enterprise in its own section, after the instances.
    let o = ok(run(
        d.path(),
        airlock().args(["fleet", "--state-dir"]).arg(&state),
    ));
    let out = String::from_utf8_lossy(&o.stdout);
    let (instances, licences) = out.split_once("ENTERPRISE").expect(&out);
    assert!(instances.contains(airlock::sample::SAMPLE_HOST), "{out}");
    assert!(!instances.contains(ENTERPRISE), "{out}");
    assert!(
        // Aligned: the reference padded to its column.
        licences.contains(&format!("{ENTERPRISE:<28} {:<20} ", "ABC123"))
            && licences.contains(&sha),
        "{out}"
    );

    // The report: a licence table, and the enterprise in no fleet row.
    let html = p("report.html");
    ok(run(
        d.path(),
        airlock()
            .args(["report", "--state-dir"])
            .arg(&state)
            .arg("--html")
            .arg(&html),
    ));
    let page = std::fs::read_to_string(&html).unwrap();
    let (_, fleet) = page.split_once("<table id=\"fleet\">").unwrap();
    let (fleet, _) = fleet.split_once("</table>").unwrap();
    assert_eq!(fleet.matches("<tr class=\"instance\">").count(), 1);
    assert!(!fleet.contains(ENTERPRISE));
    let (_, lic) = page
        .split_once("<table id=\"licences\">")
        .expect("a licence table");
    let (lic, _) = lic.split_once("</table>").unwrap();
    assert!(
        lic.contains(&format!(
            "<td>{ENTERPRISE}</td><td><code>ABC123</code></td>"
        )),
        "{lic}"
    );
    assert!(lic.contains(&sha), "{lic}");
}
