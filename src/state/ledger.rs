//! The ledger: an append-only SQLite table (WAL mode) in a state directory
//! recording every export, import attempt, hand-over and confirmation, each
//! record carrying the hash of the one before.
//!
//! The importer's freshness rules and a bundle's place in its lifecycle
//! (the lifecycle module) are queries over these records, so the rules, the
//! state and the audit trail can never disagree. `verify_chain` recomputes
//! the chain from the stored text and detects any edited, removed or
//! reordered record (removal of the newest records is detected only against
//! a head hash kept elsewhere: `airlock log` prints it).
//!
//! Schema v2 (docs/import.md, "The ledger"): the same columns as v1, each
//! with a `CHECK` constraint an auditor can read with `sqlite3`, plus the
//! columns of the hand-over lifecycle (`files`, `lease_pid`), GitHub's parsed
//! sync time beside its raw date (`sync_time`) and what a refusal's one read
//! established (`file`, `file_size`, `read_offset`, `read_bytes`,
//! `read_sha256`). A v1
//! ledger is migrated in place, its rows and their hashes unchanged
//! (`record_version` 1); rows written now are `record_version` 2 and their
//! hash covers the new columns too.
//!
//! Schema v3 (decision 83) adds one column, `licence`: a JSON object with
//! what a licence bundle's records establish (its reference number, what the
//! appliance read, the overrides given, the backup kept). Rows written now
//! are `record_version` 3, and their hash covers that column as well; v1
//! and v2 ledgers migrate in place, their rows and hashes unchanged.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::base::error::{Code, Error, Result};
use crate::format::manifest::{BundleId, Fingerprint, HexDigest, LicenceReference, Timestamp};

mod row;
mod tx;
use row::*;

/// The ledger's file name inside a state directory (SQLite; its WAL
/// `ledger.sqlite-wal` beside it is part of it).
pub const LEDGER_FILE: &str = "ledger.sqlite";
const SCHEMA_VERSION: i64 = 3;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about. Stored as text; `as_str` is the one mapping
/// (docs/import.md lists the stored values; the schema's `CHECK` admits
/// only these).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// `export`: a bundle of this host.
    Export,
    /// `import`: an attempt to import a bundle.
    Import,
    /// `handover`: delivery of a verified payload to the outbox or endpoint.
    Handover,
    /// `confirm`: GitHub's sync settled a hand-over.
    Confirm,
    /// `cloud-sync`: what GitHub reported about an instance's last sync
    /// (the outcome is GitHub's status, [`Outcome::GitHub`]).
    CloudSync,
}

impl Kind {
    /// Every kind, in the order docs/import.md lists them.
    pub const ALL: [Kind; 5] = [
        Kind::Export,
        Kind::Import,
        Kind::Handover,
        Kind::Confirm,
        Kind::CloudSync,
    ];

    /// The stored text.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Export => "export",
            Kind::Import => "import",
            Kind::Handover => "handover",
            Kind::Confirm => "confirm",
            Kind::CloudSync => "cloud-sync",
        }
    }

    fn from_stored(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }
}

/// How it ended. Stored as text; `as_str` is the one mapping.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// export: a sequence number was reserved, the bundle not yet written.
    Reserved,
    /// export: the bundle was published.
    Exported,
    /// import: the bundle passed verification and the ledger rules.
    Accepted,
    /// import: refused, with code and reason.
    Rejected,
    /// import: the same bundle was already handed over.
    AlreadyImported,
    /// handover: started, not finished: the `lease_pid` process is handing
    /// it over now (HTTP), with no lock held while it waits on the network.
    Started,
    /// handover: the payload reached the outbox or endpoint.
    Done,
    /// handover: it did not; a re-run retries.
    Failed,
    /// Two meanings, told apart by the kind (docs/import.md):
    /// - import: genuine but not handed over: older than a bundle of the
    ///   same instance accepted in the same batch or watch pass, or accepted
    ///   earlier and overtaken by a newer bundle before its hand-over ended.
    /// - confirm: handed over, but GitHub's successful sync covers a newer
    ///   hand-over of the instance; this file was not the one GitHub kept.
    Superseded,
    /// confirm: GitHub reported a successful sync after the hand-over, and
    /// this bundle was the newest handed over for the instance before it.
    Confirmed,
    /// cloud-sync: GitHub's status as given (`success`, `failed`, …).
    GitHub(String),
}

impl Outcome {
    /// Every fixed outcome (all but GitHub's own statuses).
    pub const FIXED: [Outcome; 10] = [
        Outcome::Reserved,
        Outcome::Exported,
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::AlreadyImported,
        Outcome::Done,
        Outcome::Failed,
        Outcome::Superseded,
        Outcome::Confirmed,
        Outcome::Started,
    ];

    /// The stored text.
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Reserved => "reserved",
            Outcome::Exported => "exported",
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::AlreadyImported => "already-imported",
            Outcome::Started => "started",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Superseded => "superseded",
            Outcome::Confirmed => "confirmed",
            Outcome::GitHub(s) => s,
        }
    }

    /// The outcome stored as `text` in a record of `kind`: a cloud-sync
    /// record's outcome is GitHub's text, whatever it says.
    fn from_stored(kind: Kind, text: &str) -> Option<Outcome> {
        if kind == Kind::CloudSync {
            return Some(Outcome::GitHub(text.to_string()));
        }
        Outcome::FIXED.into_iter().find(|o| o.as_str() == text)
    }
}

macro_rules! stored_text {
    ($t:ty) => {
        impl std::fmt::Display for $t {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.pad(self.as_str())
            }
        }
        impl Serialize for $t {
            fn serialize<S: serde::Serializer>(
                &self,
                s: S,
            ) -> std::result::Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl ToSql for $t {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::Borrowed(ValueRef::Text(
                    self.as_str().as_bytes(),
                )))
            }
        }
    };
}
stored_text!(Kind);
stored_text!(Outcome);

/// What one read of a refused file established, recorded instead of
/// reading it again (docs/import.md): its name (escaped for display), its
/// size, the range of bytes verification read before it refused, and the
/// SHA-256 of exactly that range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReadFacts {
    /// The file's name, escaped (`crate::base::names`): safe in a terminal and a log.
    pub file_name: String,
    /// The file's size when it was opened (`fstat`).
    pub file_size: u64,
    /// Where the range the verifying read consumed starts: 0 once the
    /// sequential pass began; the trailer's region when the refusal came
    /// before it (docs/import.md).
    pub read_offset: u64,
    /// Bytes in that range.
    pub read_bytes: u64,
    /// SHA-256 of exactly that range (of the whole file when it covers it:
    /// then `bundle_sha256` is set too).
    pub read_sha256: HexDigest,
}

/// What a licence bundle's record establishes (licence in, decision 83):
/// stored as one JSON object in the `licence` column. The enterprise is the
/// record's `principal`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LicenceFacts {
    /// The reference number the bundle signed.
    pub reference: LicenceReference,
    /// The candidate's expiry, as the appliance read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_at: Option<Timestamp>,
    /// The candidate's seats, as the appliance read them (`None`: unlimited
    /// or not read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<u64>,
    /// The licence active on the appliance before this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_before: Option<ActiveLicence>,
    /// Seats in use on the appliance, when a source is configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats_used: Option<u64>,
    /// The rules the operator overrode (`allow-seat-decrease`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<String>,
    /// How the appliance was reached (`ssh`, `manage-api`) and which one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub appliance: Option<String>,
    /// Where the outgoing licence was kept before the apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// SHA-256 of the active licence file the appliance returned after the
    /// apply (SSH only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_sha256: Option<HexDigest>,
}

impl LicenceFacts {
    /// The facts of a licence bundle with this reference, nothing else known
    /// yet.
    pub fn new(reference: LicenceReference) -> LicenceFacts {
        LicenceFacts {
            reference,
            expire_at: None,
            seats: None,
            active_before: None,
            seats_used: None,
            overrides: Vec::new(),
            appliance: None,
            backup: None,
            active_sha256: None,
        }
    }
}

/// A licence as the appliance described it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActiveLicence {
    /// Its reference number.
    pub reference: LicenceReference,
    /// Its expiry.
    pub expire_at: Timestamp,
    /// Its seats (`None`: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seats: Option<u64>,
}

/// One ledger record. Fields that do not apply are `None`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in the ledger: 1, 2, 3, … without gaps (0 until appended).
    pub seq: u64,
    /// What the record is about.
    pub kind: Kind,
    /// When the record was made, from the caller's clock.
    pub at: Timestamp,
    /// How it ended; its meaning depends on `kind`.
    pub outcome: Outcome,
    /// SHA-256 of the bundle file.
    pub bundle_sha256: Option<HexDigest>,
    /// The bundle id from the signed manifest.
    pub bundle_id: Option<BundleId>,
    /// Fingerprint of the key that numbers the bundles (`sequence`).
    pub signer: Option<Fingerprint>,
    /// The allowed_signers principals that admitted the bundle.
    pub principal: Option<String>,
    /// The bundle's per-signer sequence number.
    pub sequence: Option<u64>,
    /// The source instance's host name, from the signed manifest (or
    /// GitHub's host name for a `cloud-sync` record).
    pub host_name: Option<String>,
    /// The source instance's server id (a UUID).
    pub server_id: Option<String>,
    /// The bundle's creation time.
    pub created: Option<Timestamp>,
    /// The bundle's expiry time.
    pub expires: Option<Timestamp>,
    /// The error code (`AIRLOCK-E-…`) of a refusal or failure.
    pub code: Option<String>,
    /// The reason, or GitHub's error text.
    pub detail: Option<String>,
    /// handover `done`: the outbox paths or HTTP results, one per file.
    pub files: Vec<String>,
    /// handover `started`: the process handing it over (its lease, with
    /// `at`; the lifecycle module says when it has lapsed).
    pub lease_pid: Option<u32>,
    /// cloud-sync: GitHub's sync date exactly as given (decision 32).
    pub github_date: Option<String>,
    /// cloud-sync: that date parsed, when airlock can read it.
    pub sync_time: Option<Timestamp>,
    /// import `rejected`: what the one read established.
    pub read: Option<ReadFacts>,
    /// A licence bundle's records: what they establish (decision 83).
    pub licence: Option<LicenceFacts>,
    /// 1 for records written by a v1 airlock (their hash covers the v1
    /// columns only), 2 for those of a v2 airlock, 3 for records written now
    /// (their hash covers `licence` too).
    pub record_version: u8,
    /// The previous record's `hash` (64 zeros for the first record).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash`, a newline and the JSON array of the stored
    /// fields, lowercase hex (docs/import.md).
    pub hash: String,
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    let cause = format!("ledger {}: {e}", path.display());
    Error::new(Code::LedgerIo, cause).with_source(e)
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

/// A write transaction: records appended through it are chained and become
/// visible together at `commit`.
pub(crate) struct Tx<'a> {
    tx: rusqlite::Transaction<'a>,
    path: &'a Path,
}

impl Ledger {
    /// Open (creating if needed) the ledger in a state directory; a v1
    /// ledger is migrated to v2 first.
    pub fn open(state_dir: &Path) -> Result<Ledger> {
        Self::open_with(state_dir, Duration::from_secs(60))
    }

    /// Open for reading only, waiting at most `busy` for a writer: what
    /// `cloud status --check` reports from when another process holds the
    /// state lock. Never creates or migrates anything.
    pub fn open_read_only(state_dir: &Path, busy: Duration) -> Result<Ledger> {
        use rusqlite::OpenFlags;
        let path = state_dir.join(LEDGER_FILE);
        let conn = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| db_err(&path, e))?;
        conn.busy_timeout(busy).map_err(|e| db_err(&path, e))?;
        let l = Ledger { conn, path };
        match l.schema_version()? {
            Some(SCHEMA_VERSION) => Ok(l),
            v => Err(l.version_error(v)),
        }
    }

    fn open_with(state_dir: &Path, busy: Duration) -> Result<Ledger> {
        let path = state_dir.join(LEDGER_FILE);
        let conn = Connection::open(&path).map_err(|e| db_err(&path, e))?;
        conn.busy_timeout(busy).map_err(|e| db_err(&path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| db_err(&path, e))?;
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| db_err(&path, e))?;
        // Keep the WAL between runs: a checkpoint on every close costs two
        // fsyncs and recreating the WAL a directory fsync, a third of a small
        // export's time. Commits stay durable (synchronous=FULL fsyncs the WAL);
        // SQLite checkpoints by itself once the WAL reaches 1000 pages.
        conn.set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .map_err(|e| db_err(&path, e))?;
        let mut l = Ledger { conn, path };
        l.create_or_migrate()?;
        Ok(l)
    }

    fn schema_version(&self) -> Result<Option<i64>> {
        let has_meta: bool = self
            .conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type='table' AND name='meta'",
                [],
                |r| r.get::<_, i64>(0),
            )
            .map(|n| n > 0)
            .map_err(|e| db_err(&self.path, e))?;
        if !has_meta {
            return Ok(None);
        }
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&self.path, e))?;
        Ok(v.map(|v| v.parse().unwrap_or(-1)))
    }

    fn version_error(&self, v: Option<i64>) -> Error {
        let v = v.map_or("none".to_string(), |v| v.to_string());
        Error::new(
            Code::LedgerIo,
            format!(
                "ledger {} has schema version {v}; this airlock knows 1 to {SCHEMA_VERSION}",
                self.path.display()
            ),
        )
    }

    /// A new ledger gets schema v2; a v1 ledger is copied into the v2 table
    /// in one transaction, every row and hash unchanged (`record_version`
    /// 1); a row the v2 checks refuse was not written by airlock, and the
    /// migration stops there (`LEDGER-TAMPERED`), changing nothing.
    fn create_or_migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&path, e))?;
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
        )
        .map_err(|e| db_err(&path, e))?;
        let v: Option<String> = tx
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&path, e))?;
        match v.as_deref() {
            None => {
                tx.execute_batch(&format!(
                    "{CREATE_EVENTS};
                     CREATE INDEX events_bundle ON events(bundle_sha256);
                     CREATE INDEX events_instance ON events(server_id, host_name);
                     INSERT INTO meta(key, value) VALUES ('schema_version', '{SCHEMA_VERSION}');"
                ))
                .map_err(|e| db_err(&path, e))?;
            }
            Some("1") => migrate_v1(&tx, &path)?,
            Some("2") => migrate_v2(&tx, &path)?,
            Some("3") => {}
            Some(other) => {
                return Err(Error::new(
                    Code::LedgerIo,
                    format!(
                        "ledger {} has schema version {other}; this airlock knows 1 to {SCHEMA_VERSION}",
                        path.display()
                    ),
                )
                .with_hint("use the airlock that wrote this ledger, or a newer one"))
            }
        }
        tx.commit().map_err(|e| db_err(&path, e))
    }

    /// The ledger file (`STATE/ledger.sqlite`).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Begin an exclusive write transaction (concurrent writers wait).
    pub(crate) fn begin(&mut self) -> Result<Tx<'_>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| db_err(&self.path, e))?;
        Ok(Tx {
            tx,
            path: &self.path,
        })
    }

    /// Append one record in its own transaction.
    pub(crate) fn append(&mut self, e: Event) -> Result<Event> {
        let tx = self.begin()?;
        let e = tx.append(e)?;
        tx.commit()?;
        Ok(e)
    }

    fn rows(&self) -> Result<Vec<Row>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY seq"))
            .map_err(|e| db_err(&self.path, e))?;
        let rows = st
            .query_map([], Row::from_sql)
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// Every record, in order.
    pub fn events(&self) -> Result<Vec<Event>> {
        typed(&self.rows()?, &self.path)
    }

    /// Recompute the hash chain from the stored text. Returns the number of
    /// records and the head hash, or the first record that does not fit.
    pub fn verify_chain(&self) -> Result<(usize, String)> {
        let rows = self.rows()?;
        let mut prev = GENESIS.to_string();
        for (i, e) in rows.iter().enumerate() {
            let want_seq = i as i64 + 1;
            if e.seq != want_seq {
                return Err(Error::new(
                    Code::LedgerTampered,
                    format!(
                        "record {want_seq} is missing (next is {}): records were removed",
                        e.seq
                    ),
                ));
            }
            if e.prev_hash != prev {
                return Err(Error::new(
                    Code::LedgerTampered,
                    format!(
                        "record {} does not follow record {}: records were removed or reordered",
                        e.seq,
                        e.seq - 1
                    ),
                ));
            }
            if e.compute_hash(&prev) != e.hash {
                return Err(Error::new(
                    Code::LedgerTampered,
                    format!(
                        "record {} was edited: its content does not match its hash",
                        e.seq
                    ),
                ));
            }
            prev = e.hash.clone();
        }
        Ok((rows.len(), prev))
    }
}

/// The typed records of stored rows; a row whose text airlock would never
/// write is `LEDGER-TAMPERED`, naming it.
fn typed(rows: &[Row], path: &Path) -> Result<Vec<Event>> {
    rows.iter()
        .map(|r| {
            r.to_event().map_err(|field| {
                Error::new(
                    Code::LedgerTampered,
                    format!(
                        "record {} of {}: its {field} is not a value airlock writes",
                        r.seq,
                        path.display()
                    ),
                )
            })
        })
        .collect()
}

/// v1 → v2 inside `tx`: the rows move into the checked table unchanged.
fn migrate_v1(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<()> {
    let v1_columns =
        "seq, kind, at, outcome, bundle_sha256, bundle_id, signer, principal, sequence, \
                      host_name, server_id, created, expires, code, detail, prev_hash, hash";
    tx.execute_batch(&format!(
        "ALTER TABLE events RENAME TO events_v1;
         DROP INDEX IF EXISTS events_bundle;
         DROP INDEX IF EXISTS events_instance;
         {CREATE_EVENTS};"
    ))
    .map_err(|e| db_err(path, e))?;
    tx.execute(
        &format!("INSERT INTO events ({v1_columns}, record_version) SELECT {v1_columns}, 1 FROM events_v1 ORDER BY seq"),
        [],
    )
    .map_err(|e| {
        let cause = format!(
            "ledger {}: a v1 record does not pass the v2 schema's checks, so airlock did not write it ({e}); nothing was migrated",
            path.display()
        );
        Error::new(Code::LedgerTampered, cause)
            .with_source(e)
            .with_hint("check the ledger with `airlock log --verify` using the airlock that wrote it")
    })?;
    tx.execute_batch(
        "DROP TABLE events_v1;
         CREATE INDEX events_bundle ON events(bundle_sha256);
         CREATE INDEX events_instance ON events(server_id, host_name);
         UPDATE meta SET value = '3' WHERE key = 'schema_version';",
    )
    .map_err(|e| db_err(path, e))
}

/// v2 → v3 inside `tx`: the rows move into the table with the `licence`
/// column unchanged (`record_version` 1 and 2 as they were).
fn migrate_v2(tx: &rusqlite::Transaction<'_>, path: &Path) -> Result<()> {
    let v2_columns = COLUMNS.replace(" licence,", "");
    tx.execute_batch(&format!(
        "ALTER TABLE events RENAME TO events_v2;
         DROP INDEX IF EXISTS events_bundle;
         DROP INDEX IF EXISTS events_instance;
         {CREATE_EVENTS};
         INSERT INTO events ({v2_columns}) SELECT {v2_columns} FROM events_v2 ORDER BY seq;
         DROP TABLE events_v2;
         CREATE INDEX events_bundle ON events(bundle_sha256);
         CREATE INDEX events_instance ON events(server_id, host_name);
         UPDATE meta SET value = '3' WHERE key = 'schema_version';"
    ))
    .map_err(|e| db_err(path, e))
}

#[cfg(test)]
mod tests;
