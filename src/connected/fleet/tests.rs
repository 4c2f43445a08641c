use super::*;
use crate::connected::cloud::{LastSync, ServerInstance, SyncStatus};
use crate::connected::confirm::apply_sync_status;
use crate::format::manifest::parse_time;
use crate::state::ledger::Ledger;

const ID: &str = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";

fn handover(l: &mut Ledger, n: u32, at: &str) {
    let mut e = Event {
        bundle_sha256: HexDigest::parse(&format!("{n}").repeat(64)),
        bundle_id: BundleId::parse(&format!("{n}").repeat(32)),
        host_name: Some("ghes.example.com".into()),
        server_id: Some(ID.into()),
        created: Timestamp::parse(&format!("2026-11-0{n}T00:00:00Z")),
        files: vec![
            format!("/nowhere/out/f{n}.json"),
            format!("/nowhere/out/f{n}.UPLOAD.txt"),
        ],
        ..Event::new(Kind::Handover, Outcome::Done, Timestamp::parse(at).unwrap())
    };
    e.kind = Kind::Import;
    e.outcome = Outcome::Accepted;
    l.append(e.clone()).unwrap();
    e.kind = Kind::Handover;
    e.outcome = Outcome::Done;
    l.append(e).unwrap();
}

fn status(date: &str, st: &str) -> SyncStatus {
    SyncStatus {
        server_instances: vec![ServerInstance {
            server_id: ID.into(),
            hostname: Some("ghes.example.com".into()),
            last_sync: Some(LastSync {
                date: Some(date.into()),
                status: Some(st.into()),
                error: None,
            }),
        }],
        warnings: vec![],
    }
}

fn at(s: &str) -> SystemTime {
    parse_time(s).unwrap()
}

#[test]
fn one_sync_confirms_the_newest_and_supersedes_the_rest() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    for n in 1..=4 {
        handover(&mut l, n, &format!("2026-11-0{n}T01:00:00Z"));
    }
    // A fifth, handed over after the sync: stays pending.
    handover(&mut l, 6, "2026-11-06T01:00:00Z");
    let now = at("2026-11-07T00:00:00Z");
    let r = apply_sync_status(&mut l, &status("2026-11-05T00:00:00Z", "success"), now).unwrap();
    assert_eq!(
        r[0].confirmed.as_ref().unwrap().bundle_id.as_deref(),
        Some("4".repeat(32).as_str())
    );
    let sup: Vec<_> = r[0]
        .superseded
        .iter()
        .map(|h| h.bundle_id.clone().unwrap().to_string())
        .collect();
    assert_eq!(sup, ["1".repeat(32), "2".repeat(32), "3".repeat(32)]);
    // Files not there: reported, nothing else touched.
    assert_eq!(r[0].move_errors.len(), 0, "missing files are not errors");
    // Again: nothing new.
    let r = apply_sync_status(&mut l, &status("2026-11-05T00:00:00Z", "success"), now).unwrap();
    assert!(r[0].confirmed.is_none() && r[0].superseded.is_empty());
    let f = fleet(&l.events().unwrap(), now, Thresholds::default());
    assert_eq!(f.len(), 1);
    let i = &f[0];
    assert_eq!(i.confirmed, 1);
    assert_eq!(i.superseded, 3);
    assert_eq!(
        i.last_confirmed.as_ref().unwrap().bundle_id.as_deref(),
        Some("4".repeat(32).as_str())
    );
    assert_eq!(
        i.last_confirmed_sync.as_deref(),
        Some("2026-11-05T00:00:00Z")
    );
    assert_eq!(
        i.to_upload.as_ref().unwrap().bundle_id.as_deref(),
        Some("6".repeat(32).as_str())
    );
    assert_eq!(
        i.to_upload.as_ref().unwrap().upload_files(),
        ["/nowhere/out/f6.json"]
    );
    assert!(i.problems.is_empty(), "{:?}", i.problems);
    // Past the limit, the pending one is a problem.
    let late = at("2026-11-20T00:00:00Z");
    let f = fleet(&l.events().unwrap(), late, Thresholds::default());
    assert_eq!(f[0].problems[0].problem, problem::UNCONFIRMED);
    let h = health(&f);
    assert_eq!(h.exit_code, 16 + 2);
}

#[test]
fn failed_and_unreadable_syncs_confirm_nothing_and_are_problems() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    handover(&mut l, 1, "2026-11-01T01:00:00Z");
    let now = at("2026-11-02T00:00:00Z");
    let r = apply_sync_status(&mut l, &status("2026-11-01T05:00:00Z", "failed"), now).unwrap();
    assert!(r[0].confirmed.is_none());
    let h = health(&fleet(&l.events().unwrap(), now, Thresholds::default()));
    assert_eq!(h.exit_code, 17);
    let r = apply_sync_status(&mut l, &status("1 Nov 2026", "success"), now).unwrap();
    assert!(r[0].date_unreadable && r[0].confirmed.is_none());
    let f = fleet(&l.events().unwrap(), now, Thresholds::default());
    assert_eq!(f[0].problems[0].problem, problem::SYNC_UNREADABLE);
    // The Ruby form is read.
    let r = apply_sync_status(&mut l, &status("2026-11-01 05:00:00 UTC", "success"), now).unwrap();
    assert_eq!(
        r[0].confirmed.as_ref().unwrap().bundle_id.as_deref(),
        Some("1".repeat(32).as_str())
    );
    assert!(health(&fleet(&l.events().unwrap(), now, Thresholds::default())).healthy);
}

#[test]
fn the_plugin_report_ranks_problems_and_measures_ages() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    handover(&mut l, 1, "2026-11-01T01:00:00Z");
    let now = at("2026-11-01T03:00:00Z");
    apply_sync_status(&mut l, &status("2026-11-01T02:00:00Z", "success"), now).unwrap();
    let f = fleet(&l.events().unwrap(), now, Thresholds::default());
    let r = plugin_report(&f, None, now);
    assert_eq!(r.status, Status::Ok);
    let line = r.line();
    assert!(
        line.contains("'ghes.example.com last_sync_age'=3600s;;;0"),
        "{line}"
    );
    assert!(line.contains("'seats_used'=U;;;0"), "{line}");
    // Late and unconfirmed (WARNING) and stale (CRITICAL): CRITICAL,
    // the stale one named first.
    handover(&mut l, 2, "2026-11-02T01:00:00Z");
    let later = at("2026-12-20T00:00:00Z");
    let f = fleet(&l.events().unwrap(), later, Thresholds::default());
    let r = plugin_report(&f, None, later);
    assert_eq!(r.status, Status::Critical);
    assert!(
        r.text
            .starts_with("2 problem(s), 1 instance(s) checked: ghes.example.com: no-export"),
        "{}",
        r.text
    );
    let m = metrics(&f, None, r.status, "fleet", later).render();
    assert!(m.contains(
        "airlock_instance_problem{command=\"fleet\",host_name=\"ghes.example.com\",server_id=\"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\",problem=\"no-export\"} 1\n"
    ), "{m}");
    assert!(m.contains("airlock_last_confirmed_sync_timestamp_seconds{command=\"fleet\",host_name=\"ghes.example.com\",server_id=\"6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d\"} 1793498400\n"), "{m}");
}

/// A licence bundle exported for `enterprise` at `at`, as export
/// records it.
fn licence_export(l: &mut Ledger, enterprise: &str, reference: &str, n: u64, at: &str) {
    l.append(Event {
        bundle_sha256: HexDigest::parse(&format!("{n:x}").repeat(64)),
        bundle_id: BundleId::parse(&format!("{n:x}").repeat(32)),
        principal: Some(enterprise.into()),
        licence: Some(crate::state::ledger::LicenceFacts::new(
            LicenceReference::parse(reference).unwrap(),
        )),
        sequence: Some(n),
        created: Timestamp::parse(at),
        expires: Timestamp::parse(at).map(|t| t + Duration::from_secs(30 * 86400)),
        ..Event::new(
            Kind::Export,
            Outcome::Exported,
            Timestamp::parse(at).unwrap(),
        )
    })
    .unwrap();
}

/// Regression (#29): an enterprise's licence bundles are listed apart
/// and never make an instance, a `no-export` problem or a failed check.
#[test]
fn licence_exports_are_listed_per_enterprise_apart_from_instances() {
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    licence_export(&mut l, "octo-corp", "ABC123", 1, "2026-01-05T00:00:00Z");
    handover(&mut l, 1, "2026-11-01T01:00:00Z");
    licence_export(&mut l, "acme", "ZZZ9", 1, "2026-11-02T00:00:00Z");
    licence_export(&mut l, "octo-corp", "ABC124", 2, "2026-11-03T00:00:00Z");
    // Only a reservation (an export that did not finish): not listed.
    l.append(Event {
        sequence: Some(3),
        ..Event::new(
            Kind::Export,
            Outcome::Reserved,
            Timestamp::parse("2026-11-04T00:00:00Z").unwrap(),
        )
    })
    .unwrap();
    let events = l.events().unwrap();
    // A year on: the instance is stale, the enterprises are not
    // instances at all.
    let late = at("2027-11-01T00:00:00Z");
    let f = fleet(&events, late, Thresholds::default());
    assert_eq!(f.len(), 1, "{f:?}");
    assert_eq!(f[0].host_name, "ghes.example.com");
    let h = health(&f);
    assert_eq!(h.instances, 1);
    assert!(h.problems.iter().all(|p| p.host_name == "ghes.example.com"));
    let r = plugin_report(&f, None, late);
    assert!(!r.text.contains("octo-corp"), "{}", r.text);
    let ls = licences(&events);
    let names: Vec<&str> = ls.iter().map(|e| e.enterprise.as_str()).collect();
    assert_eq!(names, ["acme", "octo-corp"]);
    let refs: Vec<&str> = ls[1]
        .licences
        .iter()
        .map(|x| x.reference.as_str())
        .collect();
    assert_eq!(refs, ["ABC123", "ABC124"]);
    let x = &ls[1].licences[1];
    assert_eq!(x.sequence, Some(2));
    assert_eq!(x.exported.to_string(), "2026-11-03T00:00:00Z");
    assert_eq!(x.bundle_sha256.as_deref(), Some("2".repeat(64).as_str()));
    let v = serde_json::to_value(&ls).unwrap();
    assert_eq!(v[1]["licences"][0]["reference"], "ABC123");
    // A ledger of licence exports only: no instance, healthy.
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    licence_export(&mut l, "octo-corp", "ABC123", 1, "2026-01-05T00:00:00Z");
    let f = fleet(&l.events().unwrap(), late, Thresholds::default());
    assert!(f.is_empty());
    assert!(health(&f).healthy);
    assert_eq!(plugin_report(&f, None, late).status, Status::Ok);
    assert_eq!(licences(&l.events().unwrap())[0].licences.len(), 1);
}

#[test]
fn instances_sharing_a_host_name_get_distinct_labels() {
    let mut a = fleet(&[], SystemTime::UNIX_EPOCH, Thresholds::default());
    assert!(a.is_empty());
    let d = tempfile::tempdir().unwrap();
    let mut l = Ledger::open(d.path()).unwrap();
    handover(&mut l, 1, "2026-11-01T01:00:00Z");
    let now = at("2026-11-01T03:00:00Z");
    a = fleet(&l.events().unwrap(), now, Thresholds::default());
    let mut b = a[0].clone();
    b.server_id = Some("other".into());
    a.push(b);
    assert_eq!(
        perf_names(&a),
        [
            format!("ghes.example.com {ID}"),
            "ghes.example.com other".to_string()
        ]
    );
}
