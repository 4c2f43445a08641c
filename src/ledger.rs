//! The ledger: an append-only SQLite table (WAL mode) in a state directory
//! recording every export, import attempt, hand-over and confirmation, each
//! record carrying the hash of the one before.
//!
//! The importer's freshness rules are queries over accepted records, so the
//! rules and the audit trail can never disagree. `verify_chain` recomputes
//! the chain and detects any edited, removed or reordered record (removal of
//! the newest records is detected only against a head hash kept elsewhere:
//! `airlock log` prints it). Schema: docs/ledger.md.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::{ToSql, ToSqlOutput, ValueRef};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::bundle::verify::ReadFacts;
use crate::error::{Code, Error, Result};

/// The ledger's file name inside a state directory (SQLite; its WAL
/// `ledger.sqlite-wal` beside it is part of it).
pub const LEDGER_FILE: &str = "ledger.sqlite";
const SCHEMA_VERSION: i64 = 1;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a record is about. Stored as text; `as_str` is the one mapping
/// (docs/import.md lists the stored values).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
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
    /// Text this airlock does not know (a newer airlock's record), kept as
    /// stored so the chain still verifies; no rule matches it.
    Unknown(String),
}

impl Kind {
    /// Every kind this airlock writes.
    const ALL: [Kind; 5] = [
        Kind::Export,
        Kind::Import,
        Kind::Handover,
        Kind::Confirm,
        Kind::CloudSync,
    ];

    /// The stored text.
    pub fn as_str(&self) -> &str {
        match self {
            Kind::Export => "export",
            Kind::Import => "import",
            Kind::Handover => "handover",
            Kind::Confirm => "confirm",
            Kind::CloudSync => "cloud-sync",
            Kind::Unknown(s) => s,
        }
    }

    /// The kind stored as `text` (total: unknown text is kept).
    fn from_stored(text: &str) -> Kind {
        Kind::ALL
            .into_iter()
            .find(|k| k.as_str() == text)
            .unwrap_or_else(|| Kind::Unknown(text.to_string()))
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
    /// handover: the payload reached the outbox or endpoint.
    Done,
    /// handover: it did not; a re-run retries.
    Failed,
    /// Two meanings, told apart by the kind (docs/import.md):
    /// - import: accepted earlier, but a newer bundle for the instance was
    ///   accepted before its hand-over finished; it is not handed over.
    /// - confirm: handed over, but GitHub's successful sync covers a newer
    ///   hand-over of the instance; this file was not the one GitHub kept.
    Superseded,
    /// confirm: GitHub reported a successful sync after the hand-over, and
    /// this bundle was the newest handed over for the instance before it.
    Confirmed,
    /// cloud-sync: GitHub's status as given (`success`, `failed`, …).
    GitHub(String),
    /// Text this airlock does not know for the record's kind (a newer
    /// airlock's record), kept as stored; no rule matches it.
    Unknown(String),
}

impl Outcome {
    /// Every fixed outcome this airlock writes.
    const FIXED: [Outcome; 9] = [
        Outcome::Reserved,
        Outcome::Exported,
        Outcome::Accepted,
        Outcome::Rejected,
        Outcome::AlreadyImported,
        Outcome::Done,
        Outcome::Failed,
        Outcome::Superseded,
        Outcome::Confirmed,
    ];

    /// The stored text.
    pub fn as_str(&self) -> &str {
        match self {
            Outcome::Reserved => "reserved",
            Outcome::Exported => "exported",
            Outcome::Accepted => "accepted",
            Outcome::Rejected => "rejected",
            Outcome::AlreadyImported => "already-imported",
            Outcome::Done => "done",
            Outcome::Failed => "failed",
            Outcome::Superseded => "superseded",
            Outcome::Confirmed => "confirmed",
            Outcome::GitHub(s) | Outcome::Unknown(s) => s,
        }
    }

    /// The outcome stored as `text` in a record of `kind` (total: a
    /// cloud-sync record's outcome is GitHub's text, whatever it says;
    /// unknown text is kept).
    fn from_stored(kind: &Kind, text: &str) -> Outcome {
        if *kind == Kind::CloudSync {
            return Outcome::GitHub(text.to_string());
        }
        Outcome::FIXED
            .into_iter()
            .find(|o| o.as_str() == text)
            .unwrap_or_else(|| Outcome::Unknown(text.to_string()))
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

/// One ledger record. Fields that do not apply are `None`.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Event {
    /// Position in the ledger: 1, 2, 3, … without gaps (0 until appended).
    pub seq: i64,
    /// What the record is about.
    pub kind: Kind,
    /// When the record was made, RFC 3339 UTC, from the caller's clock.
    pub at: String,
    /// How it ended; its meaning depends on `kind`.
    pub outcome: Outcome,
    /// SHA-256 of the bundle file, lowercase hex.
    pub bundle_sha256: Option<String>,
    /// The bundle id from the signed manifest.
    pub bundle_id: Option<String>,
    /// Fingerprint of the key that numbers the bundles (`sequence`).
    pub signer: Option<String>,
    /// The allowed_signers principals that admitted the bundle.
    pub principal: Option<String>,
    /// The bundle's per-signer sequence number.
    pub sequence: Option<i64>,
    /// The source instance's host name, from the signed manifest (or
    /// GitHub's host name for a `cloud-sync` record).
    pub host_name: Option<String>,
    /// The source instance's server id (a UUID).
    pub server_id: Option<String>,
    /// The bundle's creation time; for `cloud-sync`, GitHub's sync date as
    /// given.
    pub created: Option<String>,
    /// The bundle's expiry time.
    pub expires: Option<String>,
    /// The error code (`AIRLOCK-E-…`) of a refusal or failure.
    pub code: Option<String>,
    /// The reason, or where the payload was handed over (paths or HTTP
    /// results joined by `"; "`), or GitHub's error text.
    pub detail: Option<String>,
    /// A refused import: the bundle file as it was named, escaped
    /// (docs/import.md). Absent from `log --json` when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// A refused import: what the one verifying read established (size,
    /// the range it read, that range's SHA-256). Absent when empty.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub read: Option<ReadFacts>,
    /// The previous record's `hash` (64 zeros for the first record).
    pub prev_hash: String,
    /// SHA-256 over `prev_hash`, a newline and the JSON array of the fields
    /// `seq` … `detail` (then `file` and the read's five facts, when either
    /// is set), lowercase hex.
    pub hash: String,
}

/// The records the freshness rules look at: accepted imports.
const ACCEPTED_IMPORT: (Kind, Outcome) = (Kind::Import, Outcome::Accepted);

const COLUMNS: &str =
    "seq, kind, at, outcome, bundle_sha256, bundle_id, signer, principal, sequence, \
                       host_name, server_id, created, expires, code, detail, prev_hash, hash, \
                       file, file_size, read_offset, read_bytes, read_sha256";

/// Columns added after schema 1 was first written: a refusal's file name and
/// read facts (issue 27). Added to an older ledger when it is opened; its
/// records keep their hashes (`compute_hash` leaves them out when empty).
const ADDED_COLUMNS: [(&str, &str); 5] = [
    ("file", "TEXT"),
    ("file_size", "INTEGER"),
    ("read_offset", "INTEGER"),
    ("read_bytes", "INTEGER"),
    ("read_sha256", "TEXT"),
];

impl Event {
    /// A record of `kind` and `outcome` at time `at` (RFC 3339, from the
    /// caller's clock), every other field empty; the ledger fills in `seq`
    /// and the hashes when it appends it.
    pub fn new(kind: Kind, outcome: Outcome, at: String) -> Event {
        Event {
            seq: 0,
            kind,
            at,
            outcome,
            bundle_sha256: None,
            bundle_id: None,
            signer: None,
            principal: None,
            sequence: None,
            host_name: None,
            server_id: None,
            created: None,
            expires: None,
            code: None,
            detail: None,
            file: None,
            read: None,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The hash of this record given the previous one: SHA-256 over the
    /// previous hash and the canonical JSON array of every other field.
    fn compute_hash(&self, prev: &str) -> String {
        let mut fields = serde_json::json!([
            self.seq,
            self.kind,
            self.at,
            self.outcome,
            self.bundle_sha256,
            self.bundle_id,
            self.signer,
            self.principal,
            self.sequence,
            self.host_name,
            self.server_id,
            self.created,
            self.expires,
            self.code,
            self.detail,
        ]);
        // Records without them hash as before these fields existed.
        if self.file.is_some() || self.read.is_some() {
            if let Some(a) = fields.as_array_mut() {
                let r = self.read.as_ref();
                a.extend([
                    serde_json::json!(self.file),
                    serde_json::json!(r.map(|r| r.size)),
                    serde_json::json!(r.map(|r| r.read_offset)),
                    serde_json::json!(r.map(|r| r.read_bytes)),
                    serde_json::json!(r.map(|r| &r.read_sha256)),
                ]);
            }
        }
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(b"\n");
        h.update(fields.to_string().as_bytes());
        hex::encode(h.finalize())
    }

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
        let kind = Kind::from_stored(&r.get::<_, String>(1)?);
        let outcome = Outcome::from_stored(&kind, &r.get::<_, String>(3)?);
        Ok(Event {
            seq: r.get(0)?,
            kind,
            at: r.get(2)?,
            outcome,
            bundle_sha256: r.get(4)?,
            bundle_id: r.get(5)?,
            signer: r.get(6)?,
            principal: r.get(7)?,
            sequence: r.get(8)?,
            host_name: r.get(9)?,
            server_id: r.get(10)?,
            created: r.get(11)?,
            expires: r.get(12)?,
            code: r.get(13)?,
            detail: r.get(14)?,
            file: r.get(17)?,
            read: read_facts(r)?,
            prev_hash: r.get(15)?,
            hash: r.get(16)?,
        })
    }
}

/// The read facts of a row (columns 18–21), when it has them all.
fn read_facts(r: &rusqlite::Row<'_>) -> rusqlite::Result<Option<ReadFacts>> {
    let n = |i: usize| -> rusqlite::Result<Option<u64>> {
        Ok(r.get::<_, Option<i64>>(i)?
            .and_then(|v| u64::try_from(v).ok()))
    };
    Ok(
        match (n(18)?, n(19)?, n(20)?, r.get::<_, Option<String>>(21)?) {
            (Some(size), Some(read_offset), Some(read_bytes), Some(read_sha256)) => {
                Some(ReadFacts {
                    size,
                    read_offset,
                    read_bytes,
                    read_sha256,
                })
            }
            _ => None,
        },
    )
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    let cause = format!("ledger {}: {e}", path.display());
    Error::new(Code::LedgerIo, cause).with_source(e)
}

/// Add the columns a ledger written before them lacks (`ADDED_COLUMNS`).
fn add_columns(conn: &Connection) -> rusqlite::Result<()> {
    let have: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('events')")?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, ty) in ADDED_COLUMNS {
        if !have.iter().any(|h| h == name) {
            conn.execute_batch(&format!("ALTER TABLE events ADD COLUMN {name} {ty}"))?;
        }
    }
    Ok(())
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
    /// Open (creating if needed) the ledger in a state directory.
    pub fn open(state_dir: &Path) -> Result<Ledger> {
        let path = state_dir.join(LEDGER_FILE);
        let conn = Connection::open(&path).map_err(|e| db_err(&path, e))?;
        conn.busy_timeout(Duration::from_secs(60))
            .map_err(|e| db_err(&path, e))?;
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
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS events (
                seq INTEGER PRIMARY KEY,
                kind TEXT NOT NULL,
                at TEXT NOT NULL,
                outcome TEXT NOT NULL,
                bundle_sha256 TEXT,
                bundle_id TEXT,
                signer TEXT,
                principal TEXT,
                sequence INTEGER,
                host_name TEXT,
                server_id TEXT,
                created TEXT,
                expires TEXT,
                code TEXT,
                detail TEXT,
                prev_hash TEXT NOT NULL,
                hash TEXT NOT NULL,
                file TEXT,
                file_size INTEGER,
                read_offset INTEGER,
                read_bytes INTEGER,
                read_sha256 TEXT
             );
             CREATE INDEX IF NOT EXISTS events_bundle ON events(bundle_sha256);
             CREATE INDEX IF NOT EXISTS events_instance ON events(server_id, host_name);",
        )
        .map_err(|e| db_err(&path, e))?;
        add_columns(&conn).map_err(|e| db_err(&path, e))?;
        let v: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| db_err(&path, e))?;
        match v {
            None => {
                conn.execute(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| db_err(&path, e))?;
            }
            Some(v) if v == SCHEMA_VERSION.to_string() => {}
            Some(v) => {
                return Err(Error::new(
                    Code::LedgerIo,
                    format!(
                        "ledger {} has schema version {v}; this airlock knows {SCHEMA_VERSION}",
                        path.display()
                    ),
                ))
            }
        }
        Ok(Ledger { conn, path })
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

    /// Every record, in order.
    pub fn events(&self) -> Result<Vec<Event>> {
        let mut st = self
            .conn
            .prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY seq"))
            .map_err(|e| db_err(&self.path, e))?;
        let rows = st
            .query_map([], Event::from_row)
            .map_err(|e| db_err(&self.path, e))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(&self.path, e))
    }

    /// Recompute the hash chain. Returns the number of records and the head
    /// hash, or the first record that does not fit.
    pub fn verify_chain(&self) -> Result<(usize, String)> {
        let events = self.events()?;
        let mut prev = GENESIS.to_string();
        for (i, e) in events.iter().enumerate() {
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
        Ok((events.len(), prev))
    }
}

impl Tx<'_> {
    /// Append a record, filling in seq, prev_hash and hash.
    pub(crate) fn append(&self, mut e: Event) -> Result<Event> {
        let last: Option<(i64, String)> = self
            .tx
            .query_row(
                "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()
            .map_err(|x| db_err(self.path, x))?;
        let (seq, prev) = match last {
            Some((s, h)) => (s + 1, h),
            None => (1, GENESIS.to_string()),
        };
        e.seq = seq;
        e.prev_hash = prev.clone();
        e.hash = e.compute_hash(&prev);
        let r = e.read.as_ref();
        self.tx
            .execute(
                &format!("INSERT INTO events ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22)"),
                params![
                    e.seq, e.kind, e.at, e.outcome, e.bundle_sha256, e.bundle_id, e.signer, e.principal,
                    e.sequence, e.host_name, e.server_id, e.created, e.expires, e.code, e.detail,
                    e.prev_hash, e.hash, e.file,
                    r.map(|r| r.size as i64), r.map(|r| r.read_offset as i64),
                    r.map(|r| r.read_bytes as i64), r.map(|r| r.read_sha256.as_str())
                ],
            )
            .map_err(|x| db_err(self.path, x))?;
        Ok(e)
    }

    /// Commit: every record appended through this transaction becomes
    /// visible and durable at once (dropping it instead rolls them back).
    pub(crate) fn commit(self) -> Result<()> {
        self.tx.commit().map_err(|e| db_err(self.path, e))
    }

    fn one<T: rusqlite::types::FromSql>(
        &self,
        sql: &str,
        p: impl rusqlite::Params,
    ) -> Result<Option<T>> {
        self.tx
            .query_row(sql, p, |r| r.get::<_, Option<T>>(0))
            .optional()
            .map(|o| o.flatten())
            .map_err(|e| db_err(self.path, e))
    }

    /// Has this bundle been accepted? Has it been handed over?
    pub(crate) fn bundle_state(&self, bundle_sha256: &str) -> Result<(bool, bool)> {
        let count = |kind: Kind, outcome: Outcome| -> Result<Option<i64>> {
            self.one(
                "SELECT COUNT(*) FROM events WHERE kind=?1 AND outcome=?2 AND bundle_sha256=?3",
                params![kind, outcome, bundle_sha256],
            )
        };
        let accepted = count(Kind::Import, Outcome::Accepted)?;
        let done = count(Kind::Handover, Outcome::Done)?;
        Ok((accepted.unwrap_or(0) > 0, done.unwrap_or(0) > 0))
    }

    /// Highest accepted sequence number from a signer for an instance.
    pub(crate) fn max_sequence(
        &self,
        signer: &str,
        host: &str,
        server_id: Option<&str>,
    ) -> Result<Option<i64>> {
        let (kind, outcome) = ACCEPTED_IMPORT;
        self.one(
            "SELECT MAX(sequence) FROM events WHERE kind=?1 AND outcome=?2 AND signer=?3 \
             AND host_name=?4 AND server_id IS ?5",
            params![kind, outcome, signer, host, server_id],
        )
    }

    /// A bundle accepted for the instance that overtakes one created at
    /// `created` with `signer`/`sequence`: created later, or a higher
    /// sequence from the same signer. Its bundle id and creation time.
    pub(crate) fn overtaken_by(
        &self,
        host: &str,
        server_id: Option<&str>,
        created: &str,
        signer: &str,
        sequence: i64,
    ) -> Result<Option<(String, String)>> {
        let (kind, outcome) = ACCEPTED_IMPORT;
        self.tx
            .query_row(
                "SELECT bundle_id, created FROM events WHERE kind=?1 AND outcome=?2 \
                 AND host_name=?3 AND server_id IS ?4 AND (created > ?5 OR (signer=?6 AND sequence > ?7)) \
                 ORDER BY seq LIMIT 1",
                params![kind, outcome, host, server_id, created, signer, sequence],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map(|o| o.map(|(a, b)| (a.unwrap_or_default(), b.unwrap_or_default())))
            .map_err(|e| db_err(self.path, e))
    }

    /// Newest accepted creation time for an instance, from any signer.
    pub(crate) fn newest_created(
        &self,
        host: &str,
        server_id: Option<&str>,
    ) -> Result<Option<String>> {
        // RFC 3339 UTC times of one fixed form sort as text.
        let (kind, outcome) = ACCEPTED_IMPORT;
        self.one(
            "SELECT MAX(created) FROM events WHERE kind=?1 AND outcome=?2 \
             AND host_name=?3 AND server_id IS ?4",
            params![kind, outcome, host, server_id],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: Kind, outcome: Outcome) -> Event {
        Event::new(kind, outcome, "2026-11-28T00:00:00Z".into())
    }

    /// The stored text is an interface: ledgers on disk hold it and the
    /// hash chain covers it. These are the values docs/import.md lists.
    #[test]
    fn stored_text_is_unchanged() {
        let kinds: Vec<&str> = Kind::ALL.iter().map(Kind::as_str).collect();
        assert_eq!(
            kinds,
            ["export", "import", "handover", "confirm", "cloud-sync"]
        );
        let outcomes: Vec<&str> = Outcome::FIXED.iter().map(Outcome::as_str).collect();
        assert_eq!(
            outcomes,
            [
                "reserved",
                "exported",
                "accepted",
                "rejected",
                "already-imported",
                "done",
                "failed",
                "superseded",
                "confirmed"
            ]
        );
        for k in Kind::ALL {
            assert_eq!(Kind::from_stored(k.as_str()), k);
            for o in Outcome::FIXED {
                let back = Outcome::from_stored(&k, o.as_str());
                assert_eq!(back.as_str(), o.as_str());
                if k != Kind::CloudSync {
                    assert_eq!(back, o);
                }
            }
        }
        // GitHub's status is its own text, even when it reads like ours.
        assert_eq!(
            Outcome::from_stored(&Kind::CloudSync, "failed"),
            Outcome::GitHub("failed".into())
        );
        assert_eq!(Kind::from_stored("later"), Kind::Unknown("later".into()));
        assert_eq!(
            Outcome::from_stored(&Kind::Import, "later"),
            Outcome::Unknown("later".into())
        );
        assert_eq!(format!("{:<8}|", Kind::Import), "import  |");
        let json = serde_json::to_string(&ev(Kind::CloudSync, Outcome::GitHub("success".into())));
        assert!(json
            .unwrap()
            .contains(r#""kind":"cloud-sync","at":"2026-11-28T00:00:00Z","outcome":"success""#));
    }

    /// A record's hash, pinned: computed independently (SHA-256 over the
    /// genesis hash, a newline and the compact JSON array of the fields),
    /// as every ledger written so far has it.
    #[test]
    fn record_hash_is_unchanged() {
        let mut e = ev(Kind::CloudSync, Outcome::GitHub("success".into()));
        e.seq = 1;
        e.host_name = Some("ghes.example.com".into());
        e.server_id = Some("6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d".into());
        e.created = Some("2026-11-27T00:00:00Z".into());
        assert_eq!(
            e.compute_hash(GENESIS),
            "d6712921b1f60c96029d1c2e9d70c33330efc10116d9491a10b2074fafeac43b"
        );
    }

    /// A ledger written by an earlier airlock (text in the SQL, as it was)
    /// and one with a record this airlock does not know still verify, list
    /// and answer the rules.
    #[test]
    fn earlier_and_unknown_records_still_read() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
        let mut prev = GENESIS.to_string();
        for (seq, kind, outcome) in [
            (1, "import", "accepted"),
            (2, "handover", "done"),
            (3, "a-later-kind", "something"),
            (4, "cloud-sync", "success"),
        ] {
            let mut e = ev(Kind::from_stored(kind), Outcome::Unknown(outcome.into()));
            e.seq = seq;
            e.bundle_sha256 = Some("b".into());
            e.host_name = Some("h".into());
            e.signer = Some("k".into());
            e.sequence = Some(3);
            let hash = e.compute_hash(&prev);
            raw.execute(
                &format!(
                    "INSERT INTO events (seq, kind, at, outcome, bundle_sha256, host_name, signer, sequence, prev_hash, hash) \
                     VALUES ({seq}, '{kind}', '2026-11-28T00:00:00Z', '{outcome}', 'b', 'h', 'k', 3, '{prev}', '{hash}')"
                ),
                [],
            )
            .unwrap();
            prev = hash;
        }
        assert_eq!(l.verify_chain().unwrap(), (4, prev));
        let evs = l.events().unwrap();
        assert_eq!(evs[0].kind, Kind::Import);
        assert_eq!(evs[0].outcome, Outcome::Accepted);
        assert_eq!(evs[2].kind, Kind::Unknown("a-later-kind".into()));
        assert_eq!(evs[3].outcome, Outcome::GitHub("success".into()));
        let tx = l.begin().unwrap();
        assert_eq!(tx.bundle_state("b").unwrap(), (true, true));
        assert_eq!(tx.max_sequence("k", "h", None).unwrap(), Some(3));
        drop(tx);
        // And records appended now continue the same chain.
        l.append(ev(Kind::Export, Outcome::Reserved)).unwrap();
        assert_eq!(l.verify_chain().unwrap().0, 5);
    }

    #[test]
    fn chain_detects_edit_removal_and_reorder() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        for i in 0..5 {
            let mut e = ev(Kind::Import, Outcome::Accepted);
            e.sequence = Some(i);
            l.append(e).unwrap();
        }
        assert_eq!(l.verify_chain().unwrap().0, 5);
        let raw = Connection::open(d.path().join(LEDGER_FILE)).unwrap();
        raw.execute("UPDATE events SET sequence=99 WHERE seq=3", [])
            .unwrap();
        assert_eq!(l.verify_chain().err().unwrap().code, Code::LedgerTampered);
        raw.execute("UPDATE events SET sequence=2 WHERE seq=3", [])
            .unwrap();
        l.verify_chain().unwrap();
        raw.execute("DELETE FROM events WHERE seq=2", []).unwrap();
        assert!(l.verify_chain().is_err());
    }

    #[test]
    fn rules_queries() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        let mut e = ev(Kind::Import, Outcome::Accepted);
        e.signer = Some("k".into());
        e.host_name = Some("h".into());
        e.sequence = Some(7);
        e.created = Some("2026-11-01T00:00:00Z".into());
        e.bundle_sha256 = Some("b".into());
        l.append(e).unwrap();
        let tx = l.begin().unwrap();
        assert_eq!(tx.max_sequence("k", "h", None).unwrap(), Some(7));
        assert_eq!(tx.max_sequence("k", "h", Some("x")).unwrap(), None);
        assert_eq!(
            tx.newest_created("h", None).unwrap().as_deref(),
            Some("2026-11-01T00:00:00Z")
        );
        assert_eq!(tx.bundle_state("b").unwrap(), (true, false));
    }
}
