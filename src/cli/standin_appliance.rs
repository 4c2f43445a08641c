//! A STAND-IN for a GHES appliance, for tests and `airlock demo` only. It
//! is not GHES, cannot read a real licence, and says so in every answer
//! (`X-Airlock-Stand-In: not GHES`, "(airlock stand-in, not GHES)" in its
//! messages).
//!
//! It keeps its state in a directory:
//! - [`ACTIVE_FILE`] (`enterprise.ghl`): the active licence file, a
//!   stand-in licence made by `sample::appliance_licence`;
//! - marker files that change its behaviour: [`BUSY`] (a config-apply is
//!   running: apply refuses), [`LIE`] (after an apply it reports success
//!   but keeps the old licence), [`CHECK_INVALID`] (the check says
//!   invalid), [`DENY_LOGIN`] and [`UNREACHABLE`] (SSH fails as ssh would);
//! - [`SEATS_USED`]: the seats in use it reports (a number; default 0);
//! - [`APPLIED_LOG`]: one line per licence really applied (reference).
//!
//! Two faces over the same directory:
//! - SSH ([`ssh_main`], the hidden `airlock standin-appliance --state DIR`
//!   subcommand): the commands airlock runs over SSH (decision 84), either
//!   as an sshd forced command (`SSH_ORIGINAL_COMMAND`) or as the
//!   configurable SSH command itself, taking ssh's arguments (then it also
//!   checks the pinned host key against [`HOST_KEY`], when that file
//!   exists, as `ssh -o StrictHostKeyChecking=yes` would);
//! - HTTP ([`ManageStandIn`]): the Manage API's licence endpoints with
//!   basic auth (`api_key:PASSWORD`) and the REST API's
//!   `/api/v3/enterprise/settings/license` with a bearer token, plain http
//!   on 127.0.0.1 (tests put a TLS front before it).

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use base64::Engine;
use serde::Serialize;

use airlock::error::Result;
use airlock::format::licence::MAX_LICENCE_LEN;
use airlock::sample::APPLIANCE_LICENCE_LABEL;

use super::standin_server::Loopback;

mod files;
pub use files::*;

/// Said in every message.
pub const TAG: &str = "(airlock stand-in, not GHES)";

/// What the stand-in reads from a stand-in licence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StandInLicence {
    /// `reference_number`.
    pub reference: String,
    /// `seats`; `None`: unlimited seating.
    pub seats: Option<u64>,
    /// `expire_at`, as written.
    pub expire_at: String,
}

/// Read a stand-in licence (`sample::appliance_licence`); `None` for any
/// other bytes, a real licence included.
pub fn read_licence(bytes: &[u8]) -> Option<StandInLicence> {
    let rest = bytes.strip_prefix(APPLIANCE_LICENCE_LABEL)?;
    let end = rest.iter().position(|&b| b == b'\n')?;
    let v: serde_json::Value = serde_json::from_slice(&rest[..end]).ok()?;
    let unlimited = v.get("unlimited_seating").and_then(|u| u.as_bool()) == Some(true);
    Some(StandInLicence {
        reference: v.get("reference_number")?.as_str()?.to_string(),
        seats: if unlimited {
            None
        } else {
            Some(v.get("seats")?.as_u64()?)
        },
        expire_at: v.get("expire_at")?.as_str()?.to_string(),
    })
}

/// A licence's details as `ghe-license info -j` gives them (snake_case);
/// the Manage API gives the same in camelCase (`manage_json`).
#[derive(Serialize)]
struct Details<'a> {
    company: &'static str,
    evaluation: bool,
    expire_at: &'a str,
    perpetual: bool,
    reference_number: &'a str,
    seats: u64,
    ssh_allowed: bool,
    unlimited_seating: bool,
}

/// `expire_at` → `expireAt`.
fn camel_case(key: &str) -> String {
    let mut parts = key.split('_');
    let mut out = parts.next().unwrap_or("").to_string();
    for p in parts {
        let mut c = p.chars();
        out.extend(c.next().map(|f| f.to_ascii_uppercase()));
        out.push_str(c.as_str());
    }
    out
}

/// A seat count, or `"unlimited"`, as GitHub's REST API gives it.
#[derive(Serialize)]
#[serde(untagged)]
enum Seats {
    Unlimited(&'static str),
    Count(u64),
}

impl Seats {
    fn of(n: Option<u64>) -> Seats {
        n.map_or(Seats::Unlimited("unlimited"), Seats::Count)
    }
}

/// `GET /api/v3/enterprise/settings/license`, in the shape of GitHub's
/// published example.
#[derive(Serialize)]
struct Settings<'a> {
    days_until_expiration: i64,
    expire_at: &'a str,
    kind: &'static str,
    seats: Seats,
    seats_available: Seats,
    seats_used: u64,
}

/// JSON of a value whose serialising cannot fail (no maps with non-string
/// keys): the stand-in's answers.
fn to_json(v: &impl Serialize) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

const COMPANY: &str = "airlock stand-in (not GHES)";

impl StandInLicence {
    fn details(&self) -> Details<'_> {
        Details {
            company: COMPANY,
            evaluation: false,
            expire_at: &self.expire_at,
            perpetual: false,
            reference_number: &self.reference,
            seats: self.seats.unwrap_or(0),
            ssh_allowed: true,
            unlimited_seating: self.seats.is_none(),
        }
    }

    /// As `ghe-license info -j` spells it (snake_case).
    fn info_json(&self) -> String {
        to_json(&self.details())
    }

    /// As `GET /manage/v1/config/license` spells it (camelCase).
    fn manage_json(&self) -> String {
        let map: serde_json::Map<String, serde_json::Value> =
            match serde_json::to_value(self.details()) {
                Ok(serde_json::Value::Object(m)) => m,
                _ => serde_json::Map::new(),
            };
        to_json(
            &map.into_iter()
                .map(|(k, v)| (camel_case(&k), v))
                .collect::<serde_json::Map<_, _>>(),
        )
    }

    fn expired(&self) -> bool {
        airlock::appliance::parse_time(&self.expire_at)
            .is_none_or(|t| t.system_time() < SystemTime::now())
    }

    fn days_left(&self) -> i64 {
        let Some(t) = airlock::appliance::parse_time(&self.expire_at) else {
            return 0;
        };
        let now = SystemTime::now();
        match t.system_time().duration_since(now) {
            Ok(d) => (d.as_secs() / 86_400) as i64,
            Err(e) => -((e.duration().as_secs() / 86_400) as i64) - 1,
        }
    }
}

/// The state directory.
struct State(PathBuf);

/// Why an apply did not happen.
enum NotApplied {
    Busy,
    Invalid,
    Io(String),
}

impl State {
    fn has(&self, marker: &str) -> bool {
        self.0.join(marker).exists()
    }

    fn active_bytes(&self) -> Option<Vec<u8>> {
        std::fs::read(self.0.join(ACTIVE_FILE)).ok()
    }

    fn active(&self) -> Option<StandInLicence> {
        self.active_bytes().as_deref().and_then(read_licence)
    }

    fn seats_used(&self) -> u64 {
        std::fs::read_to_string(self.0.join(SEATS_USED))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    }

    fn apply(&self, licence: &[u8]) -> std::result::Result<(), NotApplied> {
        if self.has(BUSY) {
            return Err(NotApplied::Busy);
        }
        let Some(l) = read_licence(licence) else {
            return Err(NotApplied::Invalid);
        };
        if self.has(LIE) {
            return Ok(());
        }
        airlock::fsutil::write_atomic(&self.0.join(ACTIVE_FILE), licence, 0o644, true)
            .map_err(|e| NotApplied::Io(e.cause))?;
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.0.join(APPLIED_LOG))
            .map_err(|e| NotApplied::Io(e.to_string()))?;
        writeln!(log, "{}", l.reference).map_err(|e| NotApplied::Io(e.to_string()))
    }
}

/// Read at most `max` bytes; `None` when there are more.
fn read_max(r: &mut dyn Read, max: u64) -> Option<Vec<u8>> {
    let mut b = Vec::new();
    r.take(max + 1).read_to_end(&mut b).ok()?;
    (b.len() as u64 <= max).then_some(b)
}

/// Answer one remote command (`SSH_ORIGINAL_COMMAND`, words separated by
/// spaces) over the state directory; the exit status.
pub fn serve_command(
    state: &Path,
    command: &str,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let s = State(state.to_path_buf());
    let words: Vec<&str> = command.split_whitespace().collect();
    let r = match words.as_slice() {
        ["ghe-license", "info", "--pipe", "-j"] | ["ghe-license", "info", "-j", "--pipe"] => {
            match read_max(stdin, MAX_LICENCE_LEN)
                .as_deref()
                .and_then(read_licence)
            {
                Some(l) => writeln!(out, "{}", l.info_json()).map(|_| 0),
                None => writeln!(err, "ERROR: the license file is not valid {TAG}").map(|_| 1),
            }
        }
        ["ghe-license", "info", "-j"] => match s.active() {
            Some(l) => writeln!(out, "{}", l.info_json()).map(|_| 0),
            None => writeln!(err, "ERROR: no license installed {TAG}").map(|_| 1),
        },
        ["cat", "/data/user/common/enterprise.ghl"] => match s.active_bytes() {
            Some(b) => out.write_all(&b).map(|_| 0),
            None => writeln!(
                err,
                "cat: /data/user/common/enterprise.ghl: No such file or directory {TAG}"
            )
            .map(|_| 1),
        },
        ["ghe-license", "import", "--pipe", "--apply"] => import_apply(&s, stdin, out, err),
        ["ghe-license", "check"] => match s.active() {
            _ if s.has(CHECK_INVALID) => writeln!(out, "License is invalid. {TAG}").map(|_| 1),
            Some(l) if l.expired() => writeln!(out, "License is expired. {TAG}").map(|_| 1),
            Some(_) => writeln!(out, "License is valid. {TAG}").map(|_| 0),
            None => writeln!(out, "No license installed. {TAG}").map(|_| 1),
        },
        _ => writeln!(
            err,
            "{}: command not found {TAG}",
            airlock::names::one_line(words.first().copied().unwrap_or(""))
        )
        .map(|_| 127),
    };
    let _ = out.flush();
    r.unwrap_or(1)
}

/// `ghe-license import --pipe --apply`: the file on `stdin` becomes the
/// active licence, unless the stand-in is busy or the file is not one.
fn import_apply(
    s: &State,
    stdin: &mut dyn Read,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> std::io::Result<i32> {
    let Some(b) = read_max(stdin, MAX_LICENCE_LEN) else {
        return writeln!(err, "ERROR: the license file is too large {TAG}").map(|_| 1);
    };
    match s.apply(&b) {
        Ok(()) => writeln!(out, "License imported and applied {TAG}").map(|_| 0),
        Err(NotApplied::Busy) => writeln!(
            err,
            "ERROR: a configuration run is already in progress (config-apply is running); try again later {TAG}"
        )
        .map(|_| 1),
        Err(NotApplied::Invalid) => {
            writeln!(err, "ERROR: the license file is not valid {TAG}").map(|_| 1)
        }
        Err(NotApplied::Io(e)) => writeln!(err, "ERROR: {e} {TAG}").map(|_| 1),
    }
}

/// The running HTTP face. Dropping it stops the server.
pub struct ManageStandIn {
    /// The address it listens on.
    pub addr: SocketAddr,
    _server: Loopback,
}

/// A request: method, target, headers (names lowercase), body.
struct Request {
    method: String,
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

fn read_request(s: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = s.read(&mut chunk).ok()?;
        if n == 0 || buf.len() > 16 * 1024 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?.to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split_whitespace();
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let len: u64 = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    if len > MAX_LICENCE_LEN + 64 * 1024 {
        return None;
    }
    let mut body = buf[head_end + 4..].to_vec();
    while (body.len() as u64) < len {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len as usize);
    Some(Request {
        method,
        target,
        headers,
        body,
    })
}

fn respond(s: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        s,
        "HTTP/1.1 {status}\r\nContent-Type: application/json; charset=utf-8\r\n\
         Content-Length: {}\r\nX-Airlock-Stand-In: not GHES\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.flush();
}

fn message(m: &str) -> String {
    #[derive(Serialize)]
    struct Message {
        message: String,
    }
    to_json(&Message {
        message: format!("{m} {TAG}"),
    })
}

/// The `license` field of a multipart/form-data body.
fn multipart_field(content_type: &str, body: &[u8], name: &str) -> Option<Vec<u8>> {
    let b = content_type.split(';').find_map(|p| {
        p.trim()
            .strip_prefix("boundary=")
            .map(|b| b.trim_matches('"').to_string())
    })?;
    let delim = format!("--{b}");
    let mut parts = Vec::new();
    let mut rest = body;
    while let Some(i) = find(rest, delim.as_bytes()) {
        parts.push(&rest[..i]);
        rest = &rest[i + delim.len()..];
    }
    for p in parts.into_iter().skip(1) {
        let p = p.strip_prefix(b"\r\n")?;
        let he = find(p, b"\r\n\r\n")?;
        let head = String::from_utf8_lossy(&p[..he]).to_ascii_lowercase();
        if head.contains(&format!("name=\"{name}\"")) {
            let data = &p[he + 4..];
            return Some(data.strip_suffix(b"\r\n").unwrap_or(data).to_vec());
        }
    }
    None
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `PUT /manage/v1/config/license?apply=true`, multipart field `license`.
fn put_licence(s: &mut TcpStream, state: &State, r: &Request, query: &str) {
    let ct = r
        .headers
        .get("content-type")
        .map(String::as_str)
        .unwrap_or("");
    let Some(file) = multipart_field(ct, &r.body, "license") else {
        respond(
            s,
            "400 Bad Request",
            &message("no license field in a multipart/form-data body"),
        );
        return;
    };
    if !query.split('&').any(|q| q == "apply=true") {
        respond(
            s,
            "400 Bad Request",
            &message("the stand-in only applies at once (apply=true)"),
        );
        return;
    }
    match state.apply(&file) {
        Ok(()) => respond(s, "202 Accepted", ""),
        Err(NotApplied::Busy) => respond(
            s,
            "409 Conflict",
            &message("a configuration run (config-apply) is already in progress"),
        ),
        Err(NotApplied::Invalid) => respond(
            s,
            "400 Bad Request",
            &message("the license file is not valid"),
        ),
        Err(NotApplied::Io(e)) => respond(s, "500 Internal Server Error", &message(&e)),
    }
}

/// `GET /api/v3/enterprise/settings/license`, in the shape of GitHub's
/// published example.
fn settings_licence(s: &mut TcpStream, state: &State) {
    let Some(l) = state.active() else {
        respond(
            s,
            "500 Internal Server Error",
            &message("no license installed"),
        );
        return;
    };
    let used = state.seats_used();
    let body = to_json(&Settings {
        days_until_expiration: l.days_left(),
        expire_at: &l.expire_at,
        kind: "standard",
        seats: Seats::of(l.seats),
        seats_available: Seats::of(l.seats.map(|n| n.saturating_sub(used))),
        seats_used: used,
    });
    respond(s, "200 OK", &body)
}

fn handle(s: &mut TcpStream, state: &State, basic: &str, bearer: &str) {
    let Some(r) = read_request(s) else {
        respond(s, "400 Bad Request", &message("bad request"));
        return;
    };
    let auth = r
        .headers
        .get("authorization")
        .map(String::as_str)
        .unwrap_or("");
    let path = r.target.split('?').next().unwrap_or("");
    let query = r.target.split_once('?').map(|(_, q)| q).unwrap_or("");
    if path.starts_with("/manage/") && auth != basic {
        respond(s, "401 Unauthorized", &message("Unauthorized"));
        return;
    }
    if path.starts_with("/api/v3/")
        && auth != format!("Bearer {bearer}")
        && auth != format!("token {bearer}")
    {
        respond(s, "401 Unauthorized", &message("Bad credentials"));
        return;
    }
    match (r.method.as_str(), path) {
        ("GET", "/manage/v1/config/license") => match state.active() {
            Some(l) => respond(s, "200 OK", &l.manage_json()),
            None => respond(
                s,
                "500 Internal Server Error",
                &message("no license installed"),
            ),
        },
        ("PUT", "/manage/v1/config/license") => put_licence(s, state, &r, query),
        ("GET", "/manage/v1/config/license/check") => {
            let status = match state.active() {
                _ if state.has(CHECK_INVALID) => "invalid",
                Some(l) if l.expired() => "expired",
                Some(_) => "valid",
                None => "invalid",
            };
            respond(s, "200 OK", &format!("[{{\"status\":\"{status}\"}}]"))
        }
        ("GET", "/api/v3/enterprise/settings/license") => settings_licence(s, state),
        _ => respond(s, "404 Not Found", &message("Not Found")),
    }
}

impl ManageStandIn {
    /// Serve the state directory `state` on 127.0.0.1 (a free port): the
    /// Manage API with basic auth `api_key:password`, the REST API's
    /// licence endpoint with `token`.
    pub fn start(state: &Path, password: &str, token: &str) -> Result<ManageStandIn> {
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("api_key:{password}"))
        );
        let bearer = token.to_string();
        let st = State(state.to_path_buf());
        let server = Loopback::start("appliance stand-in", move |s| {
            handle(s, &st, &basic, &bearer)
        })?;
        Ok(ManageStandIn {
            addr: server.addr,
            _server: server,
        })
    }
}

#[cfg(test)]
mod tests;
