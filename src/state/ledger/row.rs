//! The events table: its row, its columns, and an event's conversion to and from them.

use super::*;

/// A record exactly as stored: the text the hash chain covers, and the
/// form `airlock log --json` prints (the v1 fields, then the v2 fields that
/// are set).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(super) struct Row {
    pub(super) seq: i64,
    pub(super) kind: String,
    pub(super) at: String,
    pub(super) outcome: String,
    pub(super) bundle_sha256: Option<String>,
    pub(super) bundle_id: Option<String>,
    pub(super) signer: Option<String>,
    pub(super) principal: Option<String>,
    pub(super) sequence: Option<i64>,
    pub(super) host_name: Option<String>,
    pub(super) server_id: Option<String>,
    pub(super) created: Option<String>,
    pub(super) expires: Option<String>,
    pub(super) code: Option<String>,
    pub(super) detail: Option<String>,
    #[serde(skip)]
    pub(super) record_version: i64,
    #[serde(skip)]
    pub(super) files: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) lease_pid: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) sync_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) file: Option<String>,
    #[serde(skip)]
    pub(super) file_size: Option<i64>,
    #[serde(skip)]
    pub(super) read_offset: Option<i64>,
    #[serde(skip)]
    pub(super) read_bytes: Option<i64>,
    #[serde(skip)]
    pub(super) read_sha256: Option<String>,
    #[serde(skip)]
    pub(super) licence: Option<String>,
    /// `log --json`: the licence facts as one object.
    #[serde(rename = "licence", skip_serializing_if = "Option::is_none")]
    pub(super) licence_json: Option<LicenceFacts>,
    /// `log --json`: the read facts as one object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) read: Option<JsonRead>,
    pub(super) prev_hash: String,
    pub(super) hash: String,
}

/// A refusal's read facts in `log --json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(super) struct JsonRead {
    size: i64,
    read_offset: i64,
    read_bytes: i64,
    read_sha256: String,
}

pub(super) const COLUMNS: &str =
    "seq, kind, at, outcome, bundle_sha256, bundle_id, signer, principal, sequence, \
     host_name, server_id, created, expires, code, detail, record_version, files, lease_pid, \
     sync_time, file, file_size, read_offset, read_bytes, read_sha256, licence, prev_hash, hash";

/// Schema v2. Every value an airlock writes passes these checks; an auditor
/// reads them with `sqlite3 ledger.sqlite .schema`.
pub(super) const CREATE_EVENTS: &str = "CREATE TABLE events (
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

pub(super) fn opt_i64(v: Option<u64>) -> Option<i64> {
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
    pub(super) fn to_row(&self) -> Row {
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
    pub(super) fn compute_hash(&self, prev: &str) -> String {
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

    pub(super) fn from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
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
    pub(super) fn to_event(&self) -> std::result::Result<Event, &'static str> {
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
        let files = self.files_of(kind, &outcome)?;
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
            bundle_sha256: parsed(&self.bundle_sha256, HexDigest::parse, "bundle_sha256")?,
            bundle_id: parsed(&self.bundle_id, BundleId::parse, "bundle_id")?,
            signer: parsed(&self.signer, Fingerprint::parse, "signer")?,
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

    /// The files of the record: its `files` column, or for a v1 hand-over
    /// its `detail`, where they were listed joined by "; ".
    fn files_of(
        &self,
        kind: Kind,
        outcome: &Outcome,
    ) -> std::result::Result<Vec<String>, &'static str> {
        Ok(match (&self.files, kind, outcome) {
            (Some(f), _, _) => serde_json::from_str(f).map_err(|_| "files")?,
            (None, Kind::Handover, Outcome::Done) if self.record_version == 1 => self
                .detail
                .as_deref()
                .unwrap_or("")
                .split("; ")
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect(),
            _ => Vec::new(),
        })
    }
}

/// An optional stored text parsed with `parse`; `what` names it if it does
/// not parse.
fn parsed<T>(
    v: &Option<String>,
    parse: impl Fn(&str) -> Option<T>,
    what: &'static str,
) -> std::result::Result<Option<T>, &'static str> {
    match v {
        None => Ok(None),
        Some(s) => Some(parse(s).ok_or(what)).transpose(),
    }
}
