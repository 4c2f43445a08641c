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
    let head = events.last().map(|e| e.hash.clone());
    super::output::emit(&LogReport {
        chain_verified: chain.is_some(),
        chain,
        head,
        ledger: super::output::Name::new("ledger", ledger.path()),
        events,
    });
    Ok(())
}

/// `airlock log`'s report: the records, and what `--verify` found.
#[derive(serde::Serialize)]
struct LogReport {
    events: Vec<airlock::ledger::Event>,
    chain_verified: bool,
    head: Option<String>,
    #[serde(flatten)]
    ledger: super::output::Name,
    /// `--verify`'s records and head.
    #[serde(skip)]
    chain: Option<(usize, String)>,
}

impl super::output::Report for LogReport {
    fn human(&self) {
        for e in &self.events {
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
                what(e),
                code,
                detail
            );
        }
        match (&self.chain, self.events.last()) {
            (Some((n, head)), _) => outln!("chain verified: {n} records, head {head}"),
            (None, Some(last)) => outln!(
                "{} records, head {} (not verified; use --verify)",
                self.events.len(),
                last.hash
            ),
            (None, None) => outln!("the ledger is empty"),
        }
    }
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
