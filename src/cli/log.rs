//! `airlock log`: list the ledger of a state directory, and check its chain.

use airlock::error::Result;
use airlock::ledger::Ledger;
use airlock::names;

use crate::outln;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub state: super::settings::StateArgs,
    /// Recompute the hash chain; fail if any record was edited, removed or reordered
    #[arg(long)]
    pub verify: bool,
}

pub fn run(a: Args) -> Result<()> {
    let dir = a.state.settings()?.state_dir()?;
    // A state directory that does not exist has no ledger to list (and
    // `log` creates no directory); an existing one without records lists
    // an empty ledger.
    if !dir.is_dir() {
        super::require_ledger(&dir)?;
    }
    let ledger = Ledger::open(&dir)?;
    let chain = if a.verify {
        Some(ledger.verify_chain()?)
    } else {
        None
    };
    let events = ledger.events()?;
    if super::json() {
        let mut doc = serde_json::json!({
            "ok": true,
            "events": events,
            "chain_verified": chain.is_some(),
            "head": events.last().map(|e| e.hash.clone()),
        });
        names::insert(&mut doc, "ledger", ledger.path());
        super::print_json(&doc);
        return Ok(());
    }
    for e in &events {
        let what = what(e);
        let code = e
            .code
            .as_deref()
            .map(|c| format!(" [{c}]"))
            .unwrap_or_default();
        let detail = e
            .detail
            .as_deref()
            .map(|d| format!(": {}", names::one_line(d)))
            .unwrap_or_default();
        outln!(
            "{:>5}  {}  {:<8} {:<16} {}{}{}",
            e.seq,
            e.at,
            e.kind,
            e.outcome,
            what,
            code,
            detail
        );
    }
    match (chain, events.last()) {
        (Some((n, head)), _) => outln!("chain verified: {n} records, head {head}"),
        (None, Some(last)) => outln!(
            "{} records, head {} (not verified; use --verify)",
            events.len(),
            last.hash
        ),
        (None, None) => outln!("the ledger is empty"),
    }
    Ok(())
}

/// What a record is about: `HOST seq N`, or for a licence record (issue
/// 29) `licence REF (ENTERPRISE) seq N`, the reference a person looks for.
fn what(e: &airlock::ledger::Event) -> String {
    let seq = e.sequence.map(|s| format!("seq {s}"));
    let about = match (&e.licence, &e.host_name) {
        (Some(l), _) => Some(match &e.principal {
            Some(p) => format!("licence {} ({})", l.reference, names::one_line(p)),
            None => format!("licence {}", l.reference),
        }),
        (None, Some(h)) if seq.is_some() => Some(h.clone()),
        _ => None,
    };
    [about, seq]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}
