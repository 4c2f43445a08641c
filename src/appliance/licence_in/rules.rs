//! The ledger's rules for a licence bundle (decision 83): applied and
//! confirmed before, a rollback, older than one accepted, another licence
//! in flight, freshness; and where an earlier run left the bundle.

use super::*;

/// The ledger's rules for the candidate at the moment of decision.
pub(super) fn ledger_verdict(
    tx: &Tx<'_>,
    c: &Candidate,
    now: SystemTime,
    skew: Duration,
) -> Result<Verdict> {
    let m = &c.v.manifest;
    let events = tx.licence_events()?;
    in_flight(&events, c, now)?;
    let resume = match stage_of(&events, &c.sha) {
        Some(Stage::Confirmed) => return Err(applied_before(c)),
        Some(Stage::HandedOver(_)) => return Ok(Verdict::Confirm),
        // A crash during the apply: the apply may have happened, so it is
        // finished whatever the time (the read-back decides).
        Some(Stage::HandingOver(_)) => return Ok(Verdict::Apply),
        Some(Stage::Accepted) => true,
        _ => false,
    };
    // Accepted earlier (staged by the watcher, or an apply that failed):
    // every rule again, against what was accepted since (review finding:
    // a staged bundle skipped them).
    let others: Vec<Event> = events
        .iter()
        .filter(|e| e.bundle_sha256.as_ref() != Some(&c.sha))
        .cloned()
        .collect();
    let confirmed = others.iter().any(|e| {
        e.kind == Kind::Confirm
            && e.outcome == Outcome::Confirmed
            && e.licence
                .as_ref()
                .is_some_and(|l| l.reference == c.reference)
    });
    if confirmed {
        return Err(applied_before(c));
    }
    older_than_accepted(&others, c).map_err(|e| match resume {
        true => Error::new(
            Code::LedgerSuperseded,
            format!(
                "licence bundle {} was accepted, but a newer licence bundle of {} was accepted since ({})",
                m.bundle_id, c.enterprise, e.cause
            ),
        ),
        false => e,
    })?;
    check_freshness(m, now, skew)?;
    Ok(if resume { Verdict::Apply } else { Verdict::New })
}

/// One licence in flight per enterprise: a live lease on any of its
/// licence bundles (another process applying one now) refuses this one
/// for now, so two applies never race on the appliance.
fn in_flight(events: &[Event], c: &Candidate, now: SystemTime) -> Result<()> {
    let shas: std::collections::BTreeSet<&HexDigest> = events
        .iter()
        .filter(|e| e.principal.as_deref() == Some(c.enterprise.as_str()))
        .filter_map(|e| e.bundle_sha256.as_ref())
        .collect();
    for sha in shas {
        if let Some(Stage::HandingOver(l)) = stage_of(events, sha) {
            if l.is_live(now) {
                return Err(Error::new(
                    Code::HandoverInFlight,
                    format!(
                        "process {} is applying a licence of {} since {}",
                        l.pid, c.enterprise, l.since
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// As for usage bundles: no sequence at or below one accepted from the same
/// key (`LEDGER-ROLLBACK`), nothing created at or before a licence bundle
/// accepted for the enterprise (`LEDGER-OLDER`).
fn older_than_accepted(events: &[Event], c: &Candidate) -> Result<()> {
    let m = &c.v.manifest;
    let accepted = events
        .iter()
        .filter(|e| e.kind == Kind::Import && e.outcome == Outcome::Accepted);
    for e in accepted {
        if e.signer.as_ref() == Some(&m.sequence.key)
            && e.sequence.is_some_and(|s| s >= m.sequence.number)
        {
            return Err(Error::new(
                Code::LedgerRollback,
                format!(
                    "licence sequence {} from {} is not above {}, already imported: rollback or replay",
                    m.sequence.number,
                    m.sequence.key,
                    e.sequence.unwrap_or(0)
                ),
            ));
        }
        if e.principal.as_deref() == Some(c.enterprise.as_str())
            && e.created.is_some_and(|t| t >= m.created)
        {
            return Err(Error::new(
                Code::LedgerOlder,
                format!(
                    "the licence bundle was created {}, not after {}, a licence bundle of {} already imported",
                    m.created,
                    e.created.map(|t| t.to_string()).unwrap_or_default(),
                    c.enterprise
                ),
            ));
        }
    }
    Ok(())
}

fn applied_before(c: &Candidate) -> Error {
    Error::new(
        Code::LicenceApplied,
        format!(
            "licence {} of {} was applied and confirmed before",
            c.reference, c.enterprise
        ),
    )
}
