//! `airlock report`: a self-contained HTML page of the fleet.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use airlock::error::{Code, Error, Result};
use airlock::fleet::Thresholds;
use airlock::names;

use super::check::Common;
use super::fleet::{load_fleet, Loaded};
use super::output::{emit, Name, Report};
use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub common: Common,
    /// Newest import must be confirmed by GitHub within N days of its hand-over
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub max_unconfirmed_days: u64,
    /// An export must be seen at least this often (e.g. 35d)
    #[arg(long, value_name = "DURATION", default_value = "35d", value_parser = humantime::parse_duration)]
    pub expected_interval: Duration,
    /// Write a self-contained HTML page here
    #[arg(long, value_name = "FILE")]
    pub html: PathBuf,
    /// Replace an existing file
    #[arg(long)]
    pub force: bool,
}

pub fn run(a: Args) -> Result<i32> {
    let th = Thresholds {
        unconfirmed_after: Duration::from_secs(a.max_unconfirmed_days.saturating_mul(86400)),
        expected_interval: a.expected_interval,
    };
    let now = SystemTime::now();
    let Loaded {
        instances: f,
        licences,
        seats,
    } = load_fleet(&a.common, th, now)?;
    let page = airlock::report::html(&f, &licences, seats.as_ref(), now);
    if !a.force && a.html.exists() {
        return Err(Error::new(
            Code::OutputExists,
            format!("{} already exists", names::shown(&a.html)),
        ));
    }
    airlock::fsutil::ensure_dir(&airlock::fsutil::parent_dir(&a.html), "report directory")?;
    airlock::fsutil::write_atomic(&a.html, page.as_bytes(), 0o644, a.force)?;
    Ok(emit(&HtmlReport {
        report: Name::new("report", &a.html),
        instances: f.len(),
        enterprises: licences.len(),
    }))
}

/// `report`'s result (docs/json-output.md, `report`).
#[derive(serde::Serialize)]
struct HtmlReport {
    #[serde(flatten)]
    report: Name,
    instances: usize,
    enterprises: usize,
}

impl Report for HtmlReport {
    fn human(&self) {
        let enterprises = match self.enterprises {
            0 => String::new(),
            n => format!(", licence bundles of {n} enterprise(s)"),
        };
        outln!(
            "wrote {} ({} instance(s){enterprises})",
            names::shown(&self.report.name()),
            self.instances
        );
    }
}
