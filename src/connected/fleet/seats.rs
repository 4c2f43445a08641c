//! The Cloud seat report and the file the consumed-licence pages are written to.

use super::*;

/// The seat-leak list kept from the last `cloud seats` run.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct SeatReport {
    /// The enterprise slug.
    pub enterprise: String,
    /// When GitHub was asked (RFC 3339).
    pub fetched: String,
    /// Seats in use, as GitHub counts them.
    pub total_seats_consumed: u64,
    /// Seats the enterprise bought.
    pub total_seats_purchased: u64,
    /// Server users that match no Cloud account, in GitHub's order.
    pub unmatched: Vec<UnmatchedUser>,
    /// Users GitHub listed, over all pages (absent in files written before
    /// airlock streamed them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
}

/// A user with a server account that matched no Cloud account, so it
/// consumes a seat of its own (the primary-email mismatch).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct UnmatchedUser {
    /// The server accounts, as GitHub lists them (`HOSTNAME:ID`).
    pub server_user_ids: Vec<String>,
    /// The accounts' emails on the servers.
    pub server_emails: Vec<String>,
    /// GitHub's license type for the user.
    pub license_type: Option<String>,
}

/// The file in the state directory where `cloud seats` keeps its last
/// [`SeatReport`] (JSON), for `report`.
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
        users: Some(c.users.len() as u64),
    }
}

/// The unmatched users of a `cloud seats` run, written out as GitHub's
/// pages come (a [`UserSink`]), so that memory does not grow with them: to
/// a temporary file beside [`SEATS_FILE`] in the state directory (published
/// by [`SeatWriter::finish`]), or to an anonymous one when there is no
/// state directory. The file is a [`SeatReport`] in JSON, one unmatched
/// user a line.
pub struct SeatWriter {
    /// The temporary file to publish; `None`: anonymous, not kept.
    named: Option<tempfile::NamedTempFile>,
    target: Option<std::path::PathBuf>,
    out: std::io::BufWriter<std::fs::File>,
    /// Bytes written and unmatched users, as of the last commit.
    committed: (u64, u64),
    /// Bytes written and unmatched users, now.
    now: (u64, u64),
    enterprise: String,
    fetched: String,
}

/// A `cloud seats` run written out: the counts, and the file to read the
/// unmatched users back from ([`SeatFile::each_unmatched`]).
pub struct SeatFile {
    /// The report without its users (`unmatched` is empty).
    pub summary: SeatReport,
    /// How many unmatched users the file holds.
    pub unmatched: u64,
    file: std::fs::File,
}

impl SeatWriter {
    /// Start the file for `enterprise`, fetched at `now`: in `dir` when it
    /// is a directory (then [`SEATS_FILE`] there is replaced at the end).
    pub fn create(dir: &std::path::Path, enterprise: &str, now: SystemTime) -> Result<SeatWriter> {
        let target = dir.join(SEATS_FILE);
        let (named, file) = if dir.is_dir() {
            let t = crate::io::fsutil::temp_beside(&target, 0o600)?;
            let f = t
                .as_file()
                .try_clone()
                .map_err(|e| Error::io_write(&target, e))?;
            (Some(t), f)
        } else {
            let f = tempfile::tempfile().map_err(|e| {
                Error::new(Code::IoWrite, format!("cannot make a temporary file: {e}"))
            })?;
            (None, f)
        };
        let mut w = SeatWriter {
            target: named.as_ref().map(|_| target),
            named,
            out: std::io::BufWriter::with_capacity(64 * 1024, file),
            committed: (0, 0),
            now: (0, 0),
            enterprise: enterprise.to_string(),
            fetched: format_time(now),
        };
        let head = format!(
            "{{\n  \"enterprise\": {},\n  \"fetched\": {},\n  \"unmatched\": [",
            json_str(&w.enterprise),
            json_str(&w.fetched)
        );
        w.write(head.as_bytes())?;
        w.committed = w.now;
        Ok(w)
    }

    fn write(&mut self, b: &[u8]) -> Result<()> {
        use std::io::Write;
        self.out.write_all(b).map_err(|e| self.io_error(e))?;
        self.now.0 += b.len() as u64;
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        match &self.target {
            Some(t) => Error::io_write(t, e),
            None => Error::new(Code::IoWrite, format!("cannot write a temporary file: {e}")),
        }
    }

    /// Close the JSON with the counts, publish the file (when in the state
    /// directory), and return it for reading back.
    pub fn finish(mut self, c: &SeatCounts) -> Result<SeatFile> {
        use std::io::{Seek, Write};
        let tail = format!(
            "{}  ],\n  \"total_seats_consumed\": {},\n  \"total_seats_purchased\": {},\n  \"users\": {}\n}}\n",
            if self.now.1 > 0 { "\n" } else { "" },
            c.total_seats_consumed,
            c.total_seats_purchased,
            c.users
        );
        self.write(tail.as_bytes())?;
        self.out.flush().map_err(|e| self.io_error(e))?;
        let summary = SeatReport {
            enterprise: self.enterprise.clone(),
            fetched: self.fetched.clone(),
            total_seats_consumed: c.total_seats_consumed,
            total_seats_purchased: c.total_seats_purchased,
            unmatched: Vec::new(),
            users: Some(c.users),
        };
        let unmatched = self.now.1;
        let mut file = self
            .out
            .into_inner()
            .map_err(|e| Error::new(Code::IoWrite, format!("cannot write: {}", e.error())))?;
        if let (Some(t), Some(target)) = (self.named, &self.target) {
            crate::io::fsutil::publish(t, target, true)?;
        }
        file.rewind()
            .map_err(|e| Error::new(Code::IoRead, format!("cannot read back: {e}")))?;
        Ok(SeatFile {
            summary,
            unmatched,
            file,
        })
    }
}

impl UserSink for SeatWriter {
    fn user(&mut self, u: LicensedUser) -> Result<()> {
        if !u.is_unmatched_server_user() {
            return Ok(());
        }
        let line = serde_json::to_string(&UnmatchedUser {
            server_user_ids: u.enterprise_server_user_ids,
            server_emails: u.enterprise_server_emails,
            license_type: u.license_type,
        })
        .unwrap_or_default();
        let sep = if self.now.1 == 0 { "\n    " } else { ",\n    " };
        self.write(sep.as_bytes())?;
        self.write(line.as_bytes())?;
        self.now.1 += 1;
        Ok(())
    }

    fn commit(&mut self) -> Result<()> {
        self.committed = self.now;
        Ok(())
    }

    fn rollback(&mut self) -> Result<()> {
        use std::io::{Seek, SeekFrom, Write};
        if self.now == self.committed {
            return Ok(());
        }
        self.out.flush().map_err(|e| self.io_error(e))?;
        let at = self.committed.0;
        let f = self.out.get_mut();
        let res = f
            .set_len(at)
            .and_then(|_| f.seek(SeekFrom::Start(at)).map(drop));
        res.map_err(|e| self.io_error(e))?;
        self.now = self.committed;
        Ok(())
    }
}

impl SeatFile {
    /// Call `f` with each unmatched user, in GitHub's order, read back one
    /// at a time.
    pub fn each_unmatched(&mut self, f: &mut dyn FnMut(UnmatchedUser)) -> Result<()> {
        self.each_line(&mut |line| {
            let l = line.trim().trim_end_matches(',');
            if l.starts_with('{') && l.ends_with('}') && !l.starts_with("{\n") && l.len() > 1 {
                if let Ok(u) = serde_json::from_str::<UnmatchedUser>(l) {
                    f(u);
                }
            }
        })
    }

    /// Call `f` with each line of the file (the report's JSON), from the
    /// start.
    pub fn each_line(&mut self, f: &mut dyn FnMut(&str)) -> Result<()> {
        use std::io::{BufRead, Seek};
        let e = |e: std::io::Error| {
            Error::new(Code::IoRead, format!("cannot read back the seat list: {e}"))
        };
        self.file.rewind().map_err(e)?;
        let mut r = std::io::BufReader::new(&self.file);
        let mut line = String::new();
        loop {
            line.clear();
            if r.read_line(&mut line).map_err(e)? == 0 {
                return Ok(());
            }
            f(line.trim_end_matches('\n'));
        }
    }
}

/// `s` as a JSON string.
fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}
