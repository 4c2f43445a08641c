//! The work done inside one transaction: appends, reads and the chain's checks.

use super::*;

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
