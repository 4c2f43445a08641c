//! The fleet view: every instance the ledger has seen, with its last export,
//! import and confirmed sync, and warnings; and recording what GitHub says
//! about syncs into the ledger (confirmations).

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::bundle::manifest::{format_time, parse_time};
use crate::cloud::{parse_github_time, ConsumedLicenses, SyncStatus};
use crate::error::Result;
use crate::ledger::{kind, outcome, Event, Ledger};

/// What `cloud status` found for one instance.
#[derive(Debug, Serialize)]
pub struct InstanceSync {
    pub server_id: String,
    pub hostname: Option<String>,
    pub status: Option<String>,
    pub date: Option<String>,
    pub error: Option<String>,
    /// Bundles newly marked confirmed by this run.
    pub newly_confirmed: Vec<String>,
    /// Whether the ledger knows this instance.
    pub known: bool,
}

fn is_success(status: Option<&str>) -> bool {
    status.is_some_and(|s| {
        s.eq_ignore_ascii_case("success")
            || s.eq_ignore_ascii_case("succeeded")
            || s.eq_ignore_ascii_case("completed")
    })
}

/// Record GitHub's sync status in the ledger, and confirm every handed-over
/// bundle of an instance whose successful sync is dated after the hand-over.
pub fn apply_sync_status(ledger: &mut Ledger, status: &SyncStatus) -> Result<Vec<InstanceSync>> {
    let events = ledger.events()?;
    let mut out = Vec::new();
    for inst in &status.server_instances {
        let last = inst.last_sync.as_ref();
        let st = last.and_then(|l| l.status.clone());
        let date = last.and_then(|l| l.date.clone());
        let err = last.and_then(|l| l.error.clone()).filter(|e| !e.is_empty());
        let known = events
            .iter()
            .any(|e| e.server_id.as_deref() == Some(inst.server_id.as_str()));
        let mut newly = Vec::new();
        let tx = ledger.begin()?;
        // Record what GitHub said, once per (instance, date, status).
        let seen = events.iter().any(|e| {
            e.kind == kind::CLOUD_SYNC
                && e.server_id.as_deref() == Some(inst.server_id.as_str())
                && e.created == date
                && Some(&e.outcome) == st.as_ref()
        });
        if !seen {
            if let Some(s) = &st {
                tx.append(Event {
                    kind: kind::CLOUD_SYNC.into(),
                    at: format_time(SystemTime::now()),
                    outcome: s.clone(),
                    host_name: inst.hostname.clone(),
                    server_id: Some(inst.server_id.clone()),
                    created: date.clone(),
                    detail: err.clone(),
                    ..Default::default()
                })?;
            }
        }
        let sync_time = date.as_deref().and_then(parse_github_time);
        if let (true, Some(sync_time)) = (is_success(st.as_deref()), sync_time) {
            for h in events.iter().filter(|e| {
                e.kind == kind::HANDOVER
                    && e.outcome == outcome::DONE
                    && e.server_id.as_deref() == Some(inst.server_id.as_str())
            }) {
                let handed = parse_time(&h.at);
                let already = events
                    .iter()
                    .any(|e| e.kind == kind::CONFIRM && e.bundle_sha256 == h.bundle_sha256);
                if already || newly.contains(h.bundle_sha256.as_ref().unwrap_or(&String::new())) {
                    continue;
                }
                if handed.is_some_and(|t| t < sync_time) {
                    let mut c = h.clone();
                    c.kind = kind::CONFIRM.into();
                    c.outcome = outcome::CONFIRMED.into();
                    c.at = format_time(SystemTime::now());
                    c.code = None;
                    c.detail = Some(format!(
                        "GitHub reports a successful sync at {}",
                        date.clone().unwrap_or_default()
                    ));
                    tx.append(c)?;
                    newly.push(h.bundle_sha256.clone().unwrap_or_default());
                }
            }
        }
        tx.commit()?;
        out.push(InstanceSync {
            server_id: inst.server_id.clone(),
            hostname: inst.hostname.clone(),
            status: st,
            date,
            error: err,
            newly_confirmed: newly,
            known,
        });
    }
    Ok(out)
}

/// Thresholds for fleet warnings.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Warn when an import is not confirmed this long after it.
    pub unconfirmed_after: Duration,
    /// Warn when no bundle was made for this long.
    pub expected_interval: Duration,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            unconfirmed_after: Duration::from_secs(3 * 24 * 3600),
            expected_interval: Duration::from_secs(35 * 24 * 3600),
        }
    }
}

/// One row of the fleet table.
#[derive(Debug, Clone, Serialize)]
pub struct Instance {
    pub host_name: String,
    pub server_id: Option<String>,
    pub last_export_created: Option<String>,
    pub last_import: Option<String>,
    pub last_confirmed_sync: Option<String>,
    pub last_sync_status: Option<String>,
    pub last_sync_date: Option<String>,
    pub last_sync_error: Option<String>,
    pub imports: usize,
    pub rollback_attempts: usize,
    pub warnings: Vec<String>,
    /// Time-ordered points for the report's timeline: (kind, time).
    #[serde(skip)]
    pub timeline: Vec<(String, String)>,
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86400
}

/// Build the fleet table from a ledger's records.
pub fn fleet(events: &[Event], now: SystemTime, th: Thresholds) -> Vec<Instance> {
    // Group by server id when known, else host name.
    let mut by: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    let mut host_of: BTreeMap<String, String> = BTreeMap::new();
    for e in events {
        let key = match (&e.server_id, &e.host_name) {
            (Some(id), _) => id.clone(),
            (None, Some(h)) => format!("host:{h}"),
            _ => continue,
        };
        if let Some(h) = &e.host_name {
            host_of.insert(key.clone(), h.clone());
        }
        by.entry(key).or_default().push(e);
    }
    let max = |it: &mut dyn Iterator<Item = String>| it.max();
    let mut out = Vec::new();
    for (key, evs) in by {
        let is = |e: &&&Event, k: &str, o: &str| e.kind == k && e.outcome == o;
        let last_export_created = max(&mut evs
            .iter()
            .filter(|e| {
                is(e, kind::IMPORT, outcome::ACCEPTED) || is(e, kind::EXPORT, outcome::EXPORTED)
            })
            .filter_map(|e| e.created.clone()));
        let imports: Vec<&&Event> = evs
            .iter()
            .filter(|e| is(e, kind::HANDOVER, outcome::DONE))
            .collect();
        let last_import = imports.iter().map(|e| e.at.clone()).max();
        let syncs: Vec<&&Event> = evs.iter().filter(|e| e.kind == kind::CLOUD_SYNC).collect();
        let latest_sync = syncs.iter().max_by_key(|e| (e.created.clone(), e.seq));
        let last_confirmed_sync = syncs
            .iter()
            .filter(|e| is_success(Some(&e.outcome)))
            .filter_map(|e| e.created.clone())
            .max();
        let rollback_attempts = evs
            .iter()
            .filter(|e| e.kind == kind::IMPORT && e.outcome == outcome::REJECTED)
            .filter(|e| {
                matches!(
                    e.code.as_deref(),
                    Some("AIRLOCK-E-LEDGER-ROLLBACK") | Some("AIRLOCK-E-LEDGER-OLDER")
                )
            })
            .count();
        let mut warnings = Vec::new();
        // The newest import that no confirmation covers.
        if let Some(last) = imports.iter().max_by_key(|e| e.at.clone()) {
            let confirmed = evs
                .iter()
                .any(|e| e.kind == kind::CONFIRM && e.bundle_sha256 == last.bundle_sha256);
            if let (false, Some(t)) = (confirmed, parse_time(&last.at)) {
                let age = now.duration_since(t).unwrap_or_default();
                if age > th.unconfirmed_after {
                    warnings.push(format!(
                        "last import not confirmed by GitHub after {} days",
                        days(age)
                    ));
                }
            }
        }
        if let Some(t) = last_export_created.as_deref().and_then(parse_time) {
            let age = now.duration_since(t).unwrap_or_default();
            if age > th.expected_interval {
                warnings.push(format!(
                    "no bundle for {} days (expected every {} days)",
                    days(age),
                    days(th.expected_interval)
                ));
            }
        }
        if rollback_attempts > 0 {
            warnings.push(format!(
                "{rollback_attempts} rollback or replay attempt(s) refused"
            ));
        }
        if let Some(s) = latest_sync {
            if !is_success(Some(&s.outcome)) {
                warnings.push(format!(
                    "last sync on GitHub {}: {}",
                    s.outcome,
                    s.detail.clone().unwrap_or_default()
                ));
            }
        }
        let mut timeline: Vec<(String, String)> = Vec::new();
        for e in &evs {
            match (e.kind.as_str(), e.outcome.as_str()) {
                (kind::IMPORT, outcome::ACCEPTED) | (kind::EXPORT, outcome::EXPORTED) => {
                    if let Some(c) = &e.created {
                        timeline.push(("export".into(), c.clone()));
                    }
                }
                (kind::HANDOVER, outcome::DONE) => timeline.push(("import".into(), e.at.clone())),
                (kind::CLOUD_SYNC, o) if is_success(Some(o)) => {
                    if let Some(c) = &e.created {
                        timeline.push(("confirmed sync".into(), c.clone()));
                    }
                }
                (kind::CLOUD_SYNC, _) => {
                    if let Some(c) = &e.created {
                        timeline.push(("failed sync".into(), c.clone()));
                    }
                }
                (kind::IMPORT, outcome::REJECTED) => {
                    timeline.push(("refused".into(), e.at.clone()))
                }
                _ => {}
            }
        }
        timeline.sort_by(|a, b| a.1.cmp(&b.1));
        timeline.dedup();
        out.push(Instance {
            host_name: host_of.get(&key).cloned().unwrap_or_else(|| key.clone()),
            server_id: (!key.starts_with("host:")).then(|| key.clone()),
            last_export_created,
            last_import,
            last_confirmed_sync,
            last_sync_status: latest_sync.map(|e| e.outcome.clone()),
            last_sync_date: latest_sync.and_then(|e| e.created.clone()),
            last_sync_error: latest_sync.and_then(|e| e.detail.clone()),
            imports: imports.len(),
            rollback_attempts,
            warnings,
            timeline,
        });
    }
    out
}

/// The seat-leak list kept from the last `cloud seats` run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SeatReport {
    pub enterprise: String,
    pub fetched: String,
    pub total_seats_consumed: u64,
    pub total_seats_purchased: u64,
    pub unmatched: Vec<UnmatchedUser>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UnmatchedUser {
    pub server_user_ids: Vec<String>,
    pub server_emails: Vec<String>,
    pub license_type: Option<String>,
}

pub const SEATS_FILE: &str = "cloud-seats.json";

/// The users who hold a server account but match no Cloud account.
pub fn seat_report(enterprise: &str, c: &ConsumedLicenses, now: SystemTime) -> SeatReport {
    SeatReport {
        enterprise: enterprise.into(),
        fetched: format_time(now),
        total_seats_consumed: c.total_seats_consumed,
        total_seats_purchased: c.total_seats_purchased,
        unmatched: c
            .users
            .iter()
            .filter(|u| u.is_unmatched_server_user())
            .map(|u| UnmatchedUser {
                server_user_ids: u.enterprise_server_user_ids.clone(),
                server_emails: u.enterprise_server_emails.clone(),
                license_type: u.license_type.clone(),
            })
            .collect(),
    }
}
