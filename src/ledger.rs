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

use crate::bundle::manifest::{BundleId, Fingerprint, HexDigest, LicenceReference, Timestamp};
use crate::error::{Code, Error, Result};

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
    /// The file's name, escaped (`crate::names`): safe in a terminal and a log.
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

/// A record exactly as stored: the text the hash chain covers, and the
/// form `airlock log --json` prints (the v1 fields, then the v2 fields that
/// are set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
struct Row {
    seq: i64,
    kind: String,
    at: String,
    outcome: String,
    bundle_sha256: Option<String>,
    bundle_id: Option<String>,
    signer: Option<String>,
    principal: Option<String>,
    sequence: Option<i64>,
    host_name: Option<String>,
    server_id: Option<String>,
    created: Option<String>,
    expires: Option<String>,
    code: Option<String>,
    detail: Option<String>,
    #[serde(skip)]
    record_version: i64,
    #[serde(skip)]
    files: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    lease_pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sync_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    file: Option<String>,
    #[serde(skip)]
    file_size: Option<i64>,
    #[serde(skip)]
    read_offset: Option<i64>,
    #[serde(skip)]
    read_bytes: Option<i64>,
    #[serde(skip)]
    read_sha256: Option<String>,
    #[serde(skip)]
    licence: Option<String>,
    /// `log --json`: the licence facts as one object.
    #[serde(rename = "licence", skip_serializing_if = "Option::is_none")]
    licence_json: Option<LicenceFacts>,
    /// `log --json`: the read facts as one object.
    #[serde(skip_serializing_if = "Option::is_none")]
    read: Option<JsonRead>,
    prev_hash: String,
    hash: String,
}

/// A refusal's read facts in `log --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
struct JsonRead {
    size: i64,
    read_offset: i64,
    read_bytes: i64,
    read_sha256: String,
}

const COLUMNS: &str =
    "seq, kind, at, outcome, bundle_sha256, bundle_id, signer, principal, sequence, \
     host_name, server_id, created, expires, code, detail, record_version, files, lease_pid, \
     sync_time, file, file_size, read_offset, read_bytes, read_sha256, licence, prev_hash, hash";

/// Schema v2. Every value an airlock writes passes these checks; an auditor
/// reads them with `sqlite3 ledger.sqlite .schema`.
const CREATE_EVENTS: &str = "CREATE TABLE events (
    seq INTEGER PRIMARY KEY CHECK (seq > 0),
    kind TEXT NOT NULL CHECK (kind IN ('export','import','handover','confirm','cloud-sync')),
    at TEXT NOT NULL CHECK (at GLOB '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z'),
    outcome TEXT NOT NULL CHECK (kind = 'cloud-sync' OR outcome IN ('reserved','exported','accepted',
        'rejected','already-imported','started','done','failed','superseded','confirmed')),
    bundle_sha256 TEXT CHECK (bundle_sha256 IS NULL OR (length(bundle_sha256) = 64
        AND bundle_sha256 NOT GLOB '*[^0-9a-f]*')),
    bundle_id TEXT CHECK (bundle_id IS NULL OR (length(bundle_id) = 32
        AND bundle_id NOT GLOB '*[^0-9a-f]*')),
    signer TEXT CHECK (signer IS NULL OR (signer GLOB 'SHA256:*' AND length(signer) = 50)),
    principal TEXT,
    sequence INTEGER CHECK (sequence IS NULL OR sequence >= 0),
    host_name TEXT,
    server_id TEXT,
    created TEXT CHECK (kind = 'cloud-sync' OR created IS NULL OR created GLOB
        '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z'),
    expires TEXT CHECK (expires IS NULL OR expires GLOB
        '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z'),
    code TEXT CHECK (code IS NULL OR code GLOB 'AIRLOCK-E-*'),
    detail TEXT,
    record_version INTEGER NOT NULL DEFAULT 1 CHECK (record_version IN (1, 2, 3)),
    files TEXT CHECK (files IS NULL OR (json_valid(files) AND json_type(files) = 'array')),
    lease_pid INTEGER CHECK (lease_pid IS NULL OR (kind = 'handover' AND outcome = 'started' AND lease_pid > 0)),
    sync_time TEXT CHECK (sync_time IS NULL OR (kind = 'cloud-sync' AND sync_time GLOB
        '[0-9][0-9][0-9][0-9]-[0-1][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]Z')),
    file TEXT,
    file_size INTEGER CHECK (file_size IS NULL OR file_size >= 0),
    read_offset INTEGER CHECK (read_offset IS NULL OR read_offset >= 0),
    read_bytes INTEGER CHECK (read_bytes IS NULL OR read_bytes >= 0),
    read_sha256 TEXT CHECK (read_sha256 IS NULL OR (length(read_sha256) = 64
        AND read_sha256 NOT GLOB '*[^0-9a-f]*')),
    licence TEXT CHECK (licence IS NULL OR (record_version = 3 AND json_valid(licence)
        AND json_type(licence) = 'object' AND json_type(licence, '$.reference') = 'text')),
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
)";

fn opt_i64(v: Option<u64>) -> Option<i64> {
    v.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

impl Event {
    /// A record of `kind` and `outcome` at time `at` (from the caller's
    /// clock), every other field empty; the ledger fills in `seq` and the
    /// hashes when it appends it.
    pub fn new(kind: Kind, outcome: Outcome, at: Timestamp) -> Event {
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
            files: Vec::new(),
            lease_pid: None,
            github_date: None,
            sync_time: None,
            read: None,
            licence: None,
            record_version: 3,
            prev_hash: String::new(),
            hash: String::new(),
        }
    }

    /// The stored form.
    fn to_row(&self) -> Row {
        let created = match self.kind {
            Kind::CloudSync => self.github_date.clone(),
            _ => self.created.map(|t| t.to_string()),
        };
        // A v1 record kept its hand-over's files in `detail` only.
        let files = (self.record_version >= 2 && !self.files.is_empty())
            .then(|| serde_json::to_string(&self.files).unwrap_or_default());
        Row {
            seq: opt_i64(Some(self.seq)).unwrap_or(0),
            kind: self.kind.as_str().into(),
            at: self.at.to_string(),
            outcome: self.outcome.as_str().into(),
            bundle_sha256: self.bundle_sha256.as_ref().map(|d| d.to_string()),
            bundle_id: self.bundle_id.as_ref().map(|d| d.to_string()),
            signer: self.signer.as_ref().map(|d| d.to_string()),
            principal: self.principal.clone(),
            sequence: opt_i64(self.sequence),
            host_name: self.host_name.clone(),
            server_id: self.server_id.clone(),
            created,
            expires: self.expires.map(|t| t.to_string()),
            code: self.code.clone(),
            detail: self.detail.clone(),
            record_version: i64::from(self.record_version),
            files,
            lease_pid: self.lease_pid.map(i64::from),
            sync_time: self.sync_time.map(|t| t.to_string()),
            file: self.read.as_ref().map(|r| r.file_name.clone()),
            file_size: opt_i64(self.read.as_ref().map(|r| r.file_size)),
            read_offset: opt_i64(self.read.as_ref().map(|r| r.read_offset)),
            read_bytes: opt_i64(self.read.as_ref().map(|r| r.read_bytes)),
            read_sha256: self.read.as_ref().map(|r| r.read_sha256.to_string()),
            licence: self
                .licence
                .as_ref()
                .map(|l| serde_json::to_string(l).unwrap_or_default()),
            licence_json: self.licence.clone(),
            read: self.read.as_ref().map(|r| JsonRead {
                size: opt_i64(Some(r.file_size)).unwrap_or(0),
                read_offset: opt_i64(Some(r.read_offset)).unwrap_or(0),
                read_bytes: opt_i64(Some(r.read_bytes)).unwrap_or(0),
                read_sha256: r.read_sha256.to_string(),
            }),
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        }
    }
}

impl Serialize for Event {
    /// As stored: `airlock log --json` prints what the chain covers.
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_row().serialize(s)
    }
}

impl Row {
    /// SHA-256 over the previous hash, a newline and the canonical JSON
    /// array of the stored fields: the 15 v1 fields, and for a v2 record
    /// its version and the v2 fields after them.
    fn compute_hash(&self, prev: &str) -> String {
        let mut fields = vec![
            serde_json::json!(self.seq),
            serde_json::json!(self.kind),
            serde_json::json!(self.at),
            serde_json::json!(self.outcome),
            serde_json::json!(self.bundle_sha256),
            serde_json::json!(self.bundle_id),
            serde_json::json!(self.signer),
            serde_json::json!(self.principal),
            serde_json::json!(self.sequence),
            serde_json::json!(self.host_name),
            serde_json::json!(self.server_id),
            serde_json::json!(self.created),
            serde_json::json!(self.expires),
            serde_json::json!(self.code),
            serde_json::json!(self.detail),
        ];
        if self.record_version != 1 {
            fields.extend([
                serde_json::json!(self.record_version),
                serde_json::json!(self.files),
                serde_json::json!(self.lease_pid),
                serde_json::json!(self.sync_time),
                serde_json::json!(self.file),
                serde_json::json!(self.file_size),
                serde_json::json!(self.read_offset),
                serde_json::json!(self.read_bytes),
                serde_json::json!(self.read_sha256),
            ]);
        }
        if self.record_version >= 3 {
            fields.push(serde_json::json!(self.licence));
        }
        let mut h = Sha256::new();
        h.update(prev.as_bytes());
        h.update(b"\n");
        h.update(serde_json::Value::Array(fields).to_string().as_bytes());
        hex::encode(h.finalize())
    }

    fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
        Ok(Row {
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
            record_version: r.get(15)?,
            files: r.get(16)?,
            lease_pid: r.get(17)?,
            sync_time: r.get(18)?,
            file: r.get(19)?,
            file_size: r.get(20)?,
            read_offset: r.get(21)?,
            read_bytes: r.get(22)?,
            read_sha256: r.get(23)?,
            licence: r.get(24)?,
            prev_hash: r.get(25)?,
            hash: r.get(26)?,
            licence_json: None,
            read: None,
        })
    }

    /// A refusal's read facts: all five columns, or none.
    fn read_facts(&self) -> std::result::Result<Option<ReadFacts>, &'static str> {
        let u = |v: i64, what| u64::try_from(v).map_err(|_| what);
        match (
            &self.file,
            self.file_size,
            self.read_offset,
            self.read_bytes,
            &self.read_sha256,
        ) {
            (Some(n), Some(s), Some(o), Some(b), Some(h)) => Ok(Some(ReadFacts {
                file_name: n.clone(),
                file_size: u(s, "file_size")?,
                read_offset: u(o, "read_offset")?,
                read_bytes: u(b, "read_bytes")?,
                read_sha256: HexDigest::parse(h).ok_or("read_sha256")?,
            })),
            (None, None, None, None, None) => Ok(None),
            _ => Err("file"),
        }
    }

    /// The typed record. `None` names the first field that does not read
    /// (the schema's checks make that a record not written by airlock).
    fn to_event(&self) -> std::result::Result<Event, &'static str> {
        let kind = Kind::from_stored(&self.kind).ok_or("kind")?;
        let outcome = Outcome::from_stored(kind, &self.outcome).ok_or("outcome")?;
        let time = |v: &Option<String>, what| match v {
            None => Ok(None),
            Some(t) => Timestamp::parse(t).map(Some).ok_or(what),
        };
        let u = |v: Option<i64>, what| match v {
            None => Ok(None),
            Some(n) => u64::try_from(n).map(Some).map_err(|_| what),
        };
        let (created, github_date) = match kind {
            Kind::CloudSync => (None, self.created.clone()),
            _ => (time(&self.created, "created")?, None),
        };
        let files = match (&self.files, kind, &outcome) {
            (Some(f), _, _) => serde_json::from_str(f).map_err(|_| "files")?,
            // v1 hand-overs listed their files in `detail`, joined by "; ".
            (None, Kind::Handover, Outcome::Done) if self.record_version == 1 => self
                .detail
                .as_deref()
                .unwrap_or("")
                .split("; ")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        };
        let read = self.read_facts()?;
        let licence = match &self.licence {
            None => None,
            Some(l) => Some(serde_json::from_str(l).map_err(|_| "licence")?),
        };
        Ok(Event {
            seq: u(Some(self.seq), "seq")?.unwrap_or(0),
            kind,
            at: Timestamp::parse(&self.at).ok_or("at")?,
            outcome,
            bundle_sha256: match &self.bundle_sha256 {
                None => None,
                Some(s) => Some(HexDigest::parse(s).ok_or("bundle_sha256")?),
            },
            bundle_id: match &self.bundle_id {
                None => None,
                Some(s) => Some(BundleId::parse(s).ok_or("bundle_id")?),
            },
            signer: match &self.signer {
                None => None,
                Some(s) => Some(Fingerprint::parse(s).ok_or("signer")?),
            },
            principal: self.principal.clone(),
            sequence: u(self.sequence, "sequence")?,
            host_name: self.host_name.clone(),
            server_id: self.server_id.clone(),
            created,
            expires: time(&self.expires, "expires")?,
            code: self.code.clone(),
            detail: self.detail.clone(),
            files,
            lease_pid: match self.lease_pid {
                None => None,
                Some(p) => Some(u32::try_from(p).map_err(|_| "lease_pid")?),
            },
            github_date,
            sync_time: time(&self.sync_time, "sync_time")?,
            read,
            licence,
            record_version: match self.record_version {
                1 => 1,
                2 => 2,
                _ => 3,
            },
            prev_hash: self.prev_hash.clone(),
            hash: self.hash.clone(),
        })
    }
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
        e.seq = seq as u64;
        e.record_version = 3;
        e.prev_hash = prev.clone();
        let mut row = e.to_row();
        e.hash = row.compute_hash(&prev);
        row.hash = e.hash.clone();
        self.tx
            .execute(
                &format!("INSERT INTO events ({COLUMNS}) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19,?20,?21,?22,?23,?24,?25,?26,?27)"),
                params![
                    row.seq, row.kind, row.at, row.outcome, row.bundle_sha256, row.bundle_id,
                    row.signer, row.principal, row.sequence, row.host_name, row.server_id,
                    row.created, row.expires, row.code, row.detail, row.record_version, row.files,
                    row.lease_pid, row.sync_time, row.file, row.file_size, row.read_offset,
                    row.read_bytes, row.read_sha256, row.licence, row.prev_hash, row.hash
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

    /// The hand-over records of one instance, in order, as this
    /// transaction sees them: what the lease rule reads on every import
    /// (by the instance index, not the whole ledger each time).
    pub(crate) fn handovers_of(
        &self,
        host_name: &str,
        server_id: Option<&str>,
    ) -> Result<Vec<Event>> {
        let mut st = self
            .tx
            .prepare(&format!(
                "SELECT {COLUMNS} FROM events WHERE kind = 'handover' AND host_name = ?1 \
                 AND server_id IS ?2 ORDER BY seq"
            ))
            .map_err(|e| db_err(self.path, e))?;
        let rows = st
            .query_map(params![host_name, server_id], Row::from_sql)
            .map_err(|e| db_err(self.path, e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(self.path, e))?;
        typed(&rows, self.path)
    }
}

impl Tx<'_> {
    /// Every record about a licence bundle, in order (the isolated side's
    /// licence rules read them all: a few per year).
    pub(crate) fn licence_events(&self) -> Result<Vec<Event>> {
        let mut st = self
            .tx
            .prepare(&format!(
                "SELECT {COLUMNS} FROM events WHERE licence IS NOT NULL ORDER BY seq"
            ))
            .map_err(|e| db_err(self.path, e))?;
        let rows = st
            .query_map([], Row::from_sql)
            .map_err(|e| db_err(self.path, e))?
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| db_err(self.path, e))?;
        typed(&rows, self.path)
    }
}

/// The freshness rules' queries over accepted imports. Each can leave out
/// the bundles in `except` (a batch's own acceptances: what is older than
/// one of them is superseded, not a rollback).
impl Tx<'_> {
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
    pub(crate) fn bundle_state(&self, bundle_sha256: &HexDigest) -> Result<(bool, bool)> {
        let count = |kind: Kind, outcome: Outcome| -> Result<Option<i64>> {
            self.one(
                "SELECT COUNT(*) FROM events WHERE kind=?1 AND outcome=?2 AND bundle_sha256=?3",
                params![kind, outcome, bundle_sha256.as_str()],
            )
        };
        let accepted = count(Kind::Import, Outcome::Accepted)?;
        let done = count(Kind::Handover, Outcome::Done)?;
        Ok((accepted.unwrap_or(0) > 0, done.unwrap_or(0) > 0))
    }

    /// Was this bundle judged superseded by a newer bundle of its own run
    /// before? (Then it is superseded again, not a rollback.)
    pub(crate) fn was_superseded(&self, bundle_sha256: &HexDigest) -> Result<bool> {
        let n: Option<i64> = self.one(
            "SELECT COUNT(*) FROM events WHERE kind='import' AND outcome='superseded' AND bundle_sha256=?1",
            params![bundle_sha256.as_str()],
        )?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// Highest accepted sequence number from a signer for an instance.
    pub(crate) fn max_sequence(
        &self,
        signer: &Fingerprint,
        host: &str,
        server_id: Option<&str>,
        except: &[HexDigest],
    ) -> Result<Option<u64>> {
        let n: Option<i64> = self.one(
            "SELECT MAX(sequence) FROM events WHERE kind='import' AND outcome='accepted' \
             AND signer=?1 AND host_name=?2 AND server_id IS ?3 \
             AND bundle_sha256 NOT IN (SELECT value FROM json_each(?4))",
            params![signer.as_str(), host, server_id, except_json(except)],
        )?;
        Ok(n.and_then(|n| u64::try_from(n).ok()))
    }

    /// Newest accepted creation time for an instance, from any signer.
    pub(crate) fn newest_created(
        &self,
        host: &str,
        server_id: Option<&str>,
        except: &[HexDigest],
    ) -> Result<Option<Timestamp>> {
        // Canonical RFC 3339 UTC times sort as text.
        let t: Option<String> = self.one(
            "SELECT MAX(created) FROM events WHERE kind='import' AND outcome='accepted' \
             AND host_name=?1 AND server_id IS ?2 \
             AND bundle_sha256 NOT IN (SELECT value FROM json_each(?3))",
            params![host, server_id, except_json(except)],
        )?;
        Ok(t.as_deref().and_then(Timestamp::parse))
    }

    /// Whether a bundle for the instance created at exactly `created` was
    /// accepted from another key than `signer` (the same-second rule: from
    /// one key the sequence orders bundles of the same second; across keys
    /// nothing does).
    pub(crate) fn other_key_at(
        &self,
        host: &str,
        server_id: Option<&str>,
        created: Timestamp,
        signer: &Fingerprint,
        except: &[HexDigest],
    ) -> Result<bool> {
        let n: Option<i64> = self.one(
            "SELECT COUNT(*) FROM events WHERE kind='import' AND outcome='accepted' \
             AND host_name=?1 AND server_id IS ?2 AND created=?3 AND signer IS NOT ?4 \
             AND bundle_sha256 NOT IN (SELECT value FROM json_each(?5))",
            params![
                host,
                server_id,
                created.to_string(),
                signer.as_str(),
                except_json(except)
            ],
        )?;
        Ok(n.unwrap_or(0) > 0)
    }

    /// A bundle accepted for the instance that overtakes one created at
    /// `created` with `signer`/`sequence`: created later, or a higher
    /// sequence from the same signer. Its bundle id and creation time.
    pub(crate) fn overtaken_by(
        &self,
        host: &str,
        server_id: Option<&str>,
        created: Timestamp,
        signer: &Fingerprint,
        sequence: u64,
    ) -> Result<Option<(String, String)>> {
        self.tx
            .query_row(
                "SELECT bundle_id, created FROM events WHERE kind='import' AND outcome='accepted' \
                 AND host_name=?1 AND server_id IS ?2 AND (created > ?3 OR (signer=?4 AND sequence > ?5)) \
                 ORDER BY seq LIMIT 1",
                params![host, server_id, created.to_string(), signer.as_str(), opt_i64(Some(sequence))],
                |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)),
            )
            .optional()
            .map(|o| o.map(|(a, b)| (a.unwrap_or_default(), b.unwrap_or_default())))
            .map_err(|e| db_err(self.path, e))
    }
}

fn except_json(except: &[HexDigest]) -> String {
    serde_json::to_string(&except.iter().map(|d| d.as_str()).collect::<Vec<_>>())
        .unwrap_or_else(|_| "[]".into())
}

#[cfg(test)]
mod tests;
