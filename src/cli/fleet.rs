//! `airlock fleet`: every instance the ledger knows, with its last export,
//! import and confirmed sync, and the enterprises' licence bundles.

use std::time::SystemTime;

use airlock::config::Config;
use airlock::error::Result;
use airlock::fleet::{self, Health, SeatReport, Thresholds};
use airlock::ledger::Ledger;
use airlock::names;

use super::check::{print_health, read_seats, CheckArgs, Common, Monitor};
use super::output::{emit, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    #[command(flatten)]
    pub check: CheckArgs,
}

/// What `fleet` and `report` show: the instances, the enterprises'
/// licence bundles (apart from them), and the last `cloud seats`.
pub(super) struct Loaded {
    pub(super) instances: Vec<fleet::Instance>,
    pub(super) licences: Vec<fleet::EnterpriseLicences>,
    pub(super) seats: Option<SeatReport>,
}

pub(super) fn load_fleet(common: &Common, th: Thresholds, now: SystemTime) -> Result<Loaded> {
    let dir = common.settings(Config::default())?.state_dir()?;
    super::require_ledger(&dir)?;
    let ledger = Ledger::open(&dir)?;
    let events = ledger.events()?;
    Ok(Loaded {
        instances: fleet::fleet(&events, now, th),
        licences: fleet::licences(&events),
        seats: read_seats(&dir),
    })
}

/// `airlock fleet`, a failure reported as its check asks.
pub fn run(a: Args) -> Result<i32> {
    Monitor::of(Some(&a.check), "fleet").finish(run_fleet(a))
}

fn run_fleet(a: Args) -> Result<i32> {
    a.check.refuse_json_with_plugin()?;
    let now = SystemTime::now();
    let Loaded {
        instances: f,
        licences,
        seats,
    } = load_fleet(&a.common, a.check.thresholds(), now)?;
    let report = fleet::plugin_report(&f, seats.as_ref(), now);
    a.check
        .write_metrics("fleet", &f, seats.as_ref(), report.status, now)?;
    if a.check.plugin() {
        super::raw_out(&format!("{}\n", report.line()));
        return Ok(report.status.exit_code());
    }
    let health = a.check.checking().then(|| fleet::health(&f));
    Ok(emit(&Fleet {
        instances: f,
        enterprises: licences,
        health,
    }))
}

/// What `fleet` shows (docs/json-output.md, `fleet`): with `--check`, the
/// verdict's `healthy`, `exit_code` and `problems` beside the instances.
#[derive(serde::Serialize)]
struct Fleet {
    instances: Vec<fleet::Instance>,
    enterprises: Vec<fleet::EnterpriseLicences>,
    #[serde(flatten, serialize_with = "verdict")]
    health: Option<Health>,
}

/// The `--check` fields of a fleet document; none without `--check`.
fn verdict<S: serde::Serializer>(h: &Option<Health>, s: S) -> std::result::Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut m = s.serialize_map(None)?;
    if let Some(h) = h {
        m.serialize_entry("healthy", &h.healthy)?;
        m.serialize_entry("exit_code", &h.exit_code)?;
        m.serialize_entry("problems", &h.problems)?;
    }
    m.end()
}

impl Report for Fleet {
    fn human(&self) {
        if let Some(h) = &self.health {
            return print_health(h);
        }
        outln!(
            "{:<28} {:<36} {:<20} {:<20} {:<20} {}",
            "HOST",
            "SERVER ID",
            "LAST EXPORT",
            "LAST IMPORT",
            "CONFIRMED BY SYNC",
            "LAST SYNC"
        );
        for i in &self.instances {
            print_instance(i);
        }
        print_licences(&self.enterprises);
    }

    fn exit_status(&self) -> i32 {
        self.health.as_ref().map_or(0, |h| h.exit_code)
    }
}

/// The licence bundles exported, per enterprise, after the instances
/// (decision 85); nothing when there are none.
fn print_licences(licences: &[fleet::EnterpriseLicences]) {
    if licences.is_empty() {
        return;
    }
    outln!("");
    outln!(
        "{:<28} {:<20} {:<20} {:>8}  {}",
        "ENTERPRISE",
        "LICENCE",
        "EXPORTED",
        "SEQUENCE",
        "BUNDLE SHA256"
    );
    for e in licences {
        for l in &e.licences {
            outln!(
                "{:<28} {:<20} {:<20} {:>8}  {}",
                names::one_line(&e.enterprise),
                l.reference.as_str(),
                l.exported.to_string(),
                super::or_dash(&l.sequence),
                super::or_dash(&l.bundle_sha256)
            );
        }
    }
}

/// One instance of the fleet table, with its hand-overs and warnings.
fn print_instance(i: &fleet::Instance) {
    outln!(
        "{:<28} {:<36} {:<20} {:<20} {:<20} {}",
        names::one_line(&i.host_name),
        names::one_line(&super::or_dash(&i.server_id)),
        super::or_dash(&i.last_export_created),
        super::or_dash(&i.last_import),
        names::one_line(&super::or_dash(&i.last_confirmed_sync)),
        names::one_line(&super::or_dash(&i.last_sync_status))
    );
    if let Some(c) = &i.last_confirmed {
        outln!(
            "  confirmed:  bundle {} (created {}) by GitHub's sync of {}: {}",
            c.bundle_id.as_deref().unwrap_or("?"),
            super::or_dash(&c.created),
            c.sync_date.as_deref().unwrap_or("?"),
            c.upload_files().join(", ")
        );
    }
    if let Some(p) = &i.to_upload {
        outln!(
            "  to upload:  {} (bundle {}, handed over {}; not confirmed yet)",
            p.upload_files().join(", "),
            p.bundle_id.as_deref().unwrap_or("?"),
            p.handed_over
        );
    }
    if i.superseded > 0 {
        outln!(
            "  superseded: {} earlier hand-over(s), not the file GitHub kept",
            i.superseded
        );
    }
    if !i.known {
        outln!("  (reported by GitHub only: not exported or imported through airlock here)");
    }
    // Text from the ledger may be GitHub's, recorded before airlock
    // sanitised it: one line, no terminal control.
    for w in &i.warnings {
        outln!(
            "  {}: {}",
            super::paint("warning", "33"),
            names::one_line(w)
        );
    }
}
