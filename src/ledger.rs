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

use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::error::{Code, Error, Result};

pub const LEDGER_FILE: &str = "ledger.sqlite";
const SCHEMA_VERSION: i64 = 1;
const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Event kinds.
pub mod kind {
    pub const EXPORT: &str = "export";
    pub const IMPORT: &str = "import";
    pub const HANDOVER: &str = "handover";
    pub const CONFIRM: &str = "confirm";
    /// What GitHub reported about an instance's last sync (outcome = status).
    pub const CLOUD_SYNC: &str = "cloud-sync";
}

/// Outcomes.
pub mod outcome {
    /// export: a sequence number was reserved, the bundle not yet written.
    pub const RESERVED: &str = "reserved";
    /// export: the bundle was published.
    pub const EXPORTED: &str = "exported";
    /// import: the bundle passed verification and the ledger rules.
    pub const ACCEPTED: &str = "accepted";
    /// import: refused, with code and reason.
    pub const REJECTED: &str = "rejected";
    /// import: the same bundle was already handed over.
    pub const ALREADY: &str = "already-imported";
    /// handover: the payload reached the outbox or endpoint.
    pub const DONE: &str = "done";
    /// handover: it did not; a re-run retries.
    pub const FAILED: &str = "failed";
    /// Two meanings, told apart by the kind (docs/import.md):
    /// - import: accepted earlier, but a newer bundle for the instance was
    ///   accepted before its hand-over finished; it is not handed over.
    /// - confirm: handed over, but GitHub's successful sync covers a newer
    ///   hand-over of the instance; this file was not the one GitHub kept.
    pub const SUPERSEDED: &str = "superseded";
    /// confirm: GitHub reported a successful sync after the hand-over, and
    /// this bundle was the newest handed over for the instance before it.
    pub const CONFIRMED: &str = "confirmed";
}

/// One ledger record. Fields that do not apply are `None`.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Event {
    pub seq: i64,
    pub kind: String,
    pub at: String,
    pub outcome: String,
    pub bundle_sha256: Option<String>,
    pub bundle_id: Option<String>,
    pub signer: Option<String>,
    pub principal: Option<String>,
    pub sequence: Option<i64>,
    pub host_name: Option<String>,
    pub server_id: Option<String>,
    pub created: Option<String>,
    pub expires: Option<String>,
    pub code: Option<String>,
    pub detail: Option<String>,
    pub prev_hash: String,
    pub hash: String,
}

const COLUMNS: &str =
    "seq, kind, at, outcome, bundle_sha256, bundle_id, signer, principal, sequence, \
                       host_name, server_id, created, expires, code, detail, prev_hash, hash";

impl Event {
    /// The hash of this record given the previous one: SHA-256 over the
    /// previous hash and the canonical JSON array of every other field.
    pub fn compute_hash(&self, prev: &str) -> String {
        let fields = serde_json::json!([
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
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(b"\n");
        h.update(fields.to_string().as_bytes());
        hex::encode(h.finalize())
    }

    fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Event> {
        Ok(Event {
            seq: r.get(0)?,
            kind: r.get(1)?,
            at: r.get(2)?,
            outcome: r.get(3)?,
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
            prev_hash: r.get(15)?,
            hash: r.get(16)?,
        })
    }
}

fn db_err(path: &Path, e: rusqlite::Error) -> Error {
    Error::new(Code::LedgerIo, format!("ledger {}: {e}", path.display()))
}

/// An open ledger.
pub struct Ledger {
    conn: Connection,
    path: PathBuf,
}

/// A write transaction: records appended through it are chained and become
/// visible together at `commit`.
pub struct Tx<'a> {
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
                hash TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS events_bundle ON events(bundle_sha256);
             CREATE INDEX IF NOT EXISTS events_instance ON events(server_id, host_name);",
        )
        .map_err(|e| db_err(&path, e))?;
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

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Begin an exclusive write transaction (concurrent writers wait).
    pub fn begin(&mut self) -> Result<Tx<'_>> {
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
    pub fn append(&mut self, e: Event) -> Result<Event> {
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
    pub fn append(&self, mut e: Event) -> Result<Event> {
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
        self.tx
            .execute(
                &format!("INSERT INTO events ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17)"),
                params![
                    e.seq, e.kind, e.at, e.outcome, e.bundle_sha256, e.bundle_id, e.signer, e.principal,
                    e.sequence, e.host_name, e.server_id, e.created, e.expires, e.code, e.detail,
                    e.prev_hash, e.hash
                ],
            )
            .map_err(|x| db_err(self.path, x))?;
        Ok(e)
    }

    pub fn commit(self) -> Result<()> {
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
    pub fn bundle_state(&self, bundle_sha256: &str) -> Result<(bool, bool)> {
        let accepted: Option<i64> = self.one(
            "SELECT COUNT(*) FROM events WHERE kind='import' AND outcome='accepted' AND bundle_sha256=?1",
            params![bundle_sha256],
        )?;
        let done: Option<i64> = self.one(
            "SELECT COUNT(*) FROM events WHERE kind='handover' AND outcome='done' AND bundle_sha256=?1",
            params![bundle_sha256],
        )?;
        Ok((accepted.unwrap_or(0) > 0, done.unwrap_or(0) > 0))
    }

    /// Highest accepted sequence number from a signer for an instance.
    pub fn max_sequence(
        &self,
        signer: &str,
        host: &str,
        server_id: Option<&str>,
    ) -> Result<Option<i64>> {
        self.one(
            "SELECT MAX(sequence) FROM events WHERE kind='import' AND outcome='accepted' AND signer=?1 \
             AND host_name=?2 AND server_id IS ?3",
            params![signer, host, server_id],
        )
    }

    /// A bundle accepted for the instance that overtakes one created at
    /// `created` with `signer`/`sequence`: created later, or a higher
    /// sequence from the same signer. Its bundle id and creation time.
    pub fn overtaken_by(
        &self,
        host: &str,
        server_id: Option<&str>,
        created: &str,
        signer: &str,
        sequence: i64,
    ) -> Result<Option<(String, String)>> {
        self.tx
            .query_row(
                "SELECT bundle_id, created FROM events WHERE kind='import' AND outcome='accepted' \
                 AND host_name=?1 AND server_id IS ?2 AND (created > ?3 OR (signer=?4 AND sequence > ?5)) \
                 ORDER BY seq LIMIT 1",
                params![host, server_id, created, signer, sequence],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map(|o| o.map(|(a, b)| (a.unwrap_or_default(), b.unwrap_or_default())))
            .map_err(|e| db_err(self.path, e))
    }

    /// Newest accepted creation time for an instance, from any signer.
    pub fn newest_created(&self, host: &str, server_id: Option<&str>) -> Result<Option<String>> {
        // RFC 3339 UTC times of one fixed form sort as text.
        self.one(
            "SELECT MAX(created) FROM events WHERE kind='import' AND outcome='accepted' \
             AND host_name=?1 AND server_id IS ?2",
            params![host, server_id],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str, outcome: &str) -> Event {
        Event {
            kind: kind.into(),
            at: "2026-11-28T00:00:00Z".into(),
            outcome: outcome.into(),
            ..Default::default()
        }
    }

    #[test]
    fn chain_detects_edit_removal_and_reorder() {
        let d = tempfile::tempdir().unwrap();
        let mut l = Ledger::open(d.path()).unwrap();
        for i in 0..5 {
            let mut e = ev(kind::IMPORT, outcome::ACCEPTED);
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
        let mut e = ev(kind::IMPORT, outcome::ACCEPTED);
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
