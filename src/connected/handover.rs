//! Hand-over of a verified payload: into an outbox directory beside upload
//! instructions for GitHub Enterprise Cloud (the default; GitHub has no API
//! to upload server usage), or by HTTP POST to an internal endpoint.
//!
//! Both are idempotent, so an import interrupted after the hand-over and
//! re-run finishes without a second copy.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::base::error::{Code, Error, Result};
use crate::format::manifest::Manifest;
use crate::format::manifest::PayloadEntry;
use crate::format::rules::output_name;
use crate::io::fsutil;
use crate::net::{self, Failure};
use crate::state::lifecycle::{Replaced, SUPERSEDED_DIR};
use crate::verify::{Replace, Staged};

/// Where verified payloads go.
#[derive(Clone)]
pub enum Target {
    /// Publish into this outbox directory, beside upload steps for GitHub
    /// Enterprise Cloud (created when missing).
    Outbox(PathBuf),
    /// POST each payload file to an internal endpoint.
    Http {
        /// The endpoint (`https://`, or `http://` to loopback only); the
        /// payload and token go to its origin only.
        url: String,
        /// Sent as `Authorization: Bearer TOKEN` when given.
        token: Option<Zeroizing<String>>,
        /// Extra CA certificates (PEM) for the endpoint's TLS.
        ca_file: Option<PathBuf>,
        /// The proxy, if any (loopback and `NO_PROXY` hosts direct).
        proxies: net::Proxies,
        /// How long one request, and the whole hand-over, may take.
        timing: HttpTiming,
    },
}

/// How to run `airlock cloud status` so that it reads the ledger this
/// import wrote: UPLOAD.txt's confirm step names it (decision 74).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusCommand {
    /// `sudo -u USER` first: the state directory belongs to another user,
    /// or to an account without a login shell (the packaged watcher's
    /// `airlock`).
    pub run_as: Option<String>,
    /// `--config FILE`: the configuration file this run read.
    pub config: Option<PathBuf>,
    /// `--state-dir DIR`: the state directory, unless it is the invoking
    /// user's default one.
    pub state_dir: Option<PathBuf>,
}

impl StatusCommand {
    /// The command for a run that used `state_dir` and read `config`;
    /// `default_state` is the invoking user's default state directory
    /// (`config::Settings::default_state_dir`), left out of the command.
    pub fn new(
        state_dir: &Path,
        config: Option<&Path>,
        default_state: Option<&Path>,
    ) -> StatusCommand {
        let absolute = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let run_as = fsutil::run_as_owner(state_dir);
        let state_dir =
            (run_as.is_some() || default_state != Some(state_dir)).then(|| absolute(state_dir));
        StatusCommand {
            run_as,
            config: config.map(absolute),
            state_dir,
        }
    }

    /// The command line, ready to paste into a POSIX shell.
    pub fn line(&self, enterprise: &str) -> String {
        let mut s = String::new();
        if let Some(u) = &self.run_as {
            s.push_str(&format!("sudo -u {} ", shell_word(u.as_bytes())));
        }
        s.push_str("airlock cloud status");
        use std::os::unix::ffi::OsStrExt;
        if let Some(c) = &self.config {
            s.push_str(&format!(
                " --config {}",
                shell_word(c.as_os_str().as_bytes())
            ));
        }
        if let Some(d) = &self.state_dir {
            s.push_str(&format!(
                " --state-dir {}",
                shell_word(d.as_os_str().as_bytes())
            ));
        }
        s.push_str(&format!(" --enterprise {enterprise}"));
        s
    }
}

/// One word for a POSIX shell: as it is when it holds only safe characters,
/// else in single quotes; bytes that are not printable UTF-8 as `$'\xNN'`.
fn shell_word(w: &[u8]) -> String {
    let safe = |b: &u8| b.is_ascii_alphanumeric() || b"@%+=:,./_-".contains(b);
    if !w.is_empty() && w.iter().all(safe) {
        return String::from_utf8_lossy(w).into_owned();
    }
    if let Ok(t) = std::str::from_utf8(w) {
        if !t.chars().any(char::is_control) {
            return format!("'{}'", t.replace('\'', r"'\''"));
        }
    }
    let mut s = String::from("$'");
    for b in w {
        match b {
            b'\'' | b'\\' => s.push_str(&format!("\\{}", *b as char)),
            0x20..=0x7e => s.push(*b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s.push('\'');
    s
}

/// The file name prefix for an instance and time: `HOST_YYYYMMDDTHHMMSSZ`.
fn prefix(m: &Manifest) -> String {
    format!("{}_{}", m.source.host(), m.created_compact())
}

/// The upload steps, as text. `files` are (outbox name, SHA-256) in the
/// manifest's payload order; only GHES license usage files are to be
/// uploaded to GitHub, other carried files are listed as such.
fn instructions(
    m: &Manifest,
    files: &[(String, String)],
    enterprise: Option<&str>,
    status: &StatusCommand,
    bundle_sha256: &str,
    replaced: &[Replaced],
) -> String {
    let is_usage = |i: usize| m.payload.get(i).is_some_and(|p| p.is_usage());
    if !(0..files.len()).any(is_usage) {
        return not_for_github(m, files, bundle_sha256);
    }
    let others: Vec<String> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| !is_usage(*i))
        .map(|(_, f)| f.0.clone())
        .collect();
    let files: Vec<(String, String)> = files
        .iter()
        .enumerate()
        .filter(|(i, _)| is_usage(*i))
        .map(|(_, f)| f.clone())
        .collect();
    let mut s = String::new();
    s.push_str(&format!(
        "Upload to GitHub Enterprise Cloud: license usage of {} ({})\n\n",
        m.source.host(),
        m.source.server_id.as_deref().unwrap_or("no server id")
    ));
    match files.len() {
        1 => s.push_str(&format!(
            "This is the one file to upload for {}:\n\n",
            m.source.host()
        )),
        _ => s.push_str(&format!(
            "Upload each of these files for {}:\n\n",
            m.source.host()
        )),
    }
    push_files(&mut s, &files);
    push_replaced(&mut s, m, replaced);
    push_verified_by(&mut s, m, bundle_sha256);
    push_steps(&mut s, enterprise, status, &others);
    s
}

/// The steps of a bundle that carries no usage file: its files are listed,
/// and not to be uploaded.
fn not_for_github(m: &Manifest, files: &[(String, String)], bundle_sha256: &str) -> String {
    let mut s = format!(
        "Not for GitHub: bundle {} from {} carries no GHES license usage file\n\n",
        m.bundle_id,
        m.source.host()
    );
    push_files(&mut s, files);
    push_verified_by(&mut s, m, bundle_sha256);
    s.push_str(
        "These files were carried as ordinary files (export --kind file). Do not upload them on\n\
         GitHub Enterprise Cloud's \"Add server usage\" page: it takes only the license usage file\n\
         that GHES exports (ghe-license usage -o -y).\n",
    );
    s
}

/// One `File`/`SHA-256` pair of lines per file.
fn push_files(s: &mut String, files: &[(String, String)]) {
    for (name, sha) in files {
        s.push_str(&format!("File     {name}\nSHA-256  {sha}\n"));
    }
}

/// The earlier hand-overs this one replaces, not to be uploaded.
fn push_replaced(s: &mut String, m: &Manifest, replaced: &[Replaced]) {
    if replaced.is_empty() {
        return;
    }
    s.push_str(&format!(
        "\nIt replaces {} earlier hand-over(s) of {} that GitHub has not confirmed;\ndo NOT upload them (an older file after this one would roll back seat counts).\nTheir files are moved into {SUPERSEDED_DIR}/ in this outbox:\n",
        replaced.len(),
        m.source.host()
    ));
    for r in replaced {
        let names: Vec<&str> = r
            .files
            .iter()
            .filter(|f| !f.ends_with(".UPLOAD.txt"))
            .map(|f| f.rsplit('/').next().unwrap_or(f))
            .collect();
        s.push_str(&format!(
            "  bundle {} (created {}): {}\n",
            r.bundle_id.as_deref().unwrap_or("?"),
            r.created
                .map(|c| c.to_string())
                .unwrap_or_else(|| "?".into()),
            names.join(", ")
        ));
    }
}

/// Which airlock verified which bundle, signed by whom, created when.
fn push_verified_by(s: &mut String, m: &Manifest, bundle_sha256: &str) {
    s.push_str(&format!(
        "\nVerified by {} from bundle {} (SHA-256 {bundle_sha256}),\nsigned by {} (sequence {}), created {}.\n\n",
        crate::tool_version(),
        m.bundle_id,
        m.sequence.key,
        m.sequence.number,
        m.created
    ));
}

/// The numbered steps on GitHub, with the enterprise's licensing page when
/// the slug is known; `others` are carried files not for GitHub. The
/// confirm step reads the ledger this import wrote (`status`).
fn push_steps(s: &mut String, enterprise: Option<&str>, status: &StatusCommand, others: &[String]) {
    s.push_str("Steps (GitHub Docs: \"Syncing license usage between GitHub Enterprise Server and GitHub Enterprise Cloud\"):\n");
    match enterprise {
        Some(slug) => s.push_str(&format!(
            "1. Open https://github.com/enterprises/{slug}/enterprise_licensing\n   (enterprise account -> Settings -> Licensing).\n"
        )),
        None => s.push_str("1. On GitHub Enterprise Cloud, open your enterprise account -> Settings -> Licensing.\n"),
    }
    s.push_str("2. Under \"Enterprise Server instances\", click \"Add server usage\".\n");
    s.push_str("3. Upload the file above, unchanged.\n");
    if !others.is_empty() {
        s.push_str(&format!(
            "   (Not for GitHub, carried in the same bundle: {}.)\n",
            others.join(", ")
        ));
    }
    s.push_str(&format!(
        "4. Confirm GitHub processed it: {}\n",
        status.line(enterprise.unwrap_or("SLUG"))
    ));
}

/// The name a payload file gets in the outbox: `HOST_TIME_NAME`.
pub(crate) fn outbox_name(m: &Manifest, p: &PayloadEntry) -> String {
    format!("{}_{}", prefix(m), output_name(p))
}

/// The name of a bundle's upload instructions in the outbox:
/// `HOST_TIME.UPLOAD.txt`. Payload files are `HOST_TIME_NAME`, so within a
/// bundle the two can never collide, whatever the payload names are; across
/// bundles nothing in the outbox is ever replaced by other content.
fn instructions_name(m: &Manifest) -> String {
    format!("{}.UPLOAD.txt", prefix(m))
}

/// A publication into the outbox failed: `HANDOVER-FAILED` (a re-run
/// retries), with the original error as its source and a hint for what
/// actually went wrong: an existing file is not a full disk.
fn failed(e: Error) -> Error {
    let hint = match e.code {
        Code::OutputExists => "move the file aside and run the same import again".to_string(),
        _ => format!("{}; then run the same import again", e.hint()),
    };
    e.recode(Code::HandoverFailed).with_hint(hint)
}

/// Hand over to an outbox: publish the staged payload files (verified and
/// written in the outbox by the verifying read) and the upload steps.
/// Returns the paths written.
///
/// Every file placed there is 0600, or 0640 when the outbox directory's
/// group is `airlock` (decision 74), whatever the directory's mode.
pub(crate) fn to_outbox(
    dir: &Path,
    m: &Manifest,
    staged: Staged,
    enterprise: Option<&str>,
    status: &StatusCommand,
    bundle_sha256: &str,
    replaced: &[Replaced],
) -> Result<Vec<PathBuf>> {
    // The files to upload: the GHES usage files (all files when the bundle
    // carries none, for other cargo).
    let usage: Vec<bool> = m.payload.iter().map(|p| p.is_usage()).collect();
    let any_usage = usage.iter().any(|u| *u);
    let listed: Vec<(String, String)> = staged
        .files
        .iter()
        .zip(usage.iter().chain(std::iter::repeat(&false)))
        .filter(|(_, u)| **u || !any_usage)
        .map(|(f, _)| f)
        .map(|f| {
            (
                f.target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                f.sha256
                    .as_ref()
                    .map(ToString::to_string)
                    .unwrap_or_default(),
            )
        })
        .collect();
    fsutil::injected_disk_full(fsutil::Fault::HandoverDiskFull, dir).map_err(failed)?;
    let access = fsutil::OutboxAccess::of(dir);
    let mode = staged.grant(access);
    let mut out = staged.publish(mode, Replace::IfIdentical).map_err(failed)?;
    fsutil::fault_point(fsutil::Fault::HandoverPayloadPublished);
    let text = instructions(m, &listed, enterprise, status, bundle_sha256, replaced);
    let txt = dir.join(instructions_name(m));
    // A re-run (say with another --enterprise) may rewrite this bundle's own
    // instructions; any other file of that name is left alone.
    let ours = std::fs::read_to_string(&txt).is_ok_and(|t| {
        (t.starts_with("Upload to GitHub Enterprise Cloud:") || t.starts_with("Not for GitHub:"))
            && t.contains(bundle_sha256)
    });
    fsutil::write_atomic_as(&txt, text.as_bytes(), access, ours).map_err(failed)?;
    out.push(txt);
    Ok(out)
}

/// Retry schedule for HTTP hand-over: 5xx and connection errors are retried
/// after these pauses, as long as the deadline allows; 4xx are not.
const HTTP_BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// Redirects followed (307/308, same origin) before giving up.
const MAX_REDIRECTS: usize = 5;

/// How long an HTTP hand-over may take (`http_timeout`, `http_deadline`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTiming {
    /// The most one request may take, from connecting to the answer's
    /// headers (the whole body is sent within it).
    pub timeout: Duration,
    /// The most the whole hand-over of a bundle may take: every file, every
    /// retry and every pause between them.
    pub deadline: Duration,
}

impl HttpTiming {
    /// Default per-request timeout (`http_timeout`).
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default total deadline (`http_deadline`).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(300);
}

impl Default for HttpTiming {
    fn default() -> Self {
        HttpTiming {
            timeout: Self::DEFAULT_TIMEOUT,
            deadline: Self::DEFAULT_DEADLINE,
        }
    }
}

/// The `Idempotency-Key` of one file of a bundle:
/// `airlock-BUNDLE_ID-SHA256`, the bundle id (32 hex digits) and the SHA-256
/// of the bytes POSTed (64 hex digits), 105 characters. Every file of a
/// bundle gets its own key (an endpoint that follows the IETF idempotency
/// draft refuses a key reused with another body, or replays the first
/// answer), and a re-run sends the same keys. When the same bytes come again
/// in one bundle under another name, the `n`th copy (n ≥ 2, in payload
/// order) gets `-n` appended, so that no two files of a bundle share a key.
pub fn idempotency_key(bundle_id: &str, file_sha256: &str, copy: usize) -> String {
    match copy {
        0 | 1 => format!("airlock-{bundle_id}-{file_sha256}"),
        n => format!("airlock-{bundle_id}-{file_sha256}-{n}"),
    }
}

/// POST each staged payload file to `url`, each with its own idempotency key
/// (`idempotency_key`), so a retried or re-run hand-over is recognisable by
/// the endpoint. Each request may take `timing.timeout`, the whole
/// hand-over `timing.deadline` (counted from this call): past it, the
/// hand-over fails with `HANDOVER-TIMEOUT` and no pause sleeps beyond it.
/// Holds no lock: the caller decides what it holds while this waits on the
/// network. The token and the payload go only to `url`'s origin: a redirect
/// elsewhere is refused, and so are redirects that would turn the POST into
/// a GET (301, 302, 303).
pub(crate) fn to_http(
    url: &str,
    token: Option<&str>,
    ca_file: Option<&Path>,
    proxies: &net::Proxies,
    timing: HttpTiming,
    m: &Manifest,
    staged: &Staged,
) -> Result<Vec<String>> {
    let deadline = Instant::now() + timing.deadline;
    let origin = net::check_url(url, "--submit-url")?;
    let trust = net::Trust::load(ca_file)?;
    let post = Post {
        agent: net::agent(&trust, proxies, timing.timeout),
        origin,
        url,
        token,
        m,
        timing,
        deadline,
    };
    let mut results = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for (f, p) in staged.files.iter().zip(&m.payload) {
        // The digest of the bytes sent; the member's (as stored) when the
        // read did not take it.
        let sha = f.sha256.as_ref().unwrap_or(&p.sha256).as_str();
        seen.push(sha);
        let copy = seen.iter().filter(|s| **s == sha).count();
        let key = idempotency_key(m.bundle_id.as_str(), sha, copy);
        results.push(post.file(f.path(), output_name(p), &key)?);
    }
    Ok(results)
}

/// The HTTP hand-over of one bundle: where to, with what credentials, until
/// when.
struct Post<'a> {
    agent: net::Agent,
    /// `url`'s origin: the only place the payload and token may go.
    origin: net::Origin,
    url: &'a str,
    token: Option<&'a str>,
    m: &'a Manifest,
    timing: HttpTiming,
    /// When the whole hand-over must have ended.
    deadline: Instant,
}

impl Post<'_> {
    /// The hand-over ran out of time (`HANDOVER-TIMEOUT`); `last` says what
    /// the last attempt got.
    fn timed_out(&self, target: &str, name: &str, last: &str) -> Error {
        Error::new(
            Code::HandoverTimeout,
            format!(
                "{target}: {name} not delivered within the hand-over deadline of {} (last attempt: {last})",
                humantime::format_duration(self.timing.deadline)
            ),
        )
    }

    /// POST the file at `path` as `name` with idempotency key `key`: 5xx
    /// and connection errors are retried after `HTTP_BACKOFF`'s pauses while
    /// the deadline allows, 4xx are not, 307/308 within the origin are
    /// followed. Returns `NAME -> HTTP STATUS`.
    fn file(&self, path: &Path, name: &str, key: &str) -> Result<String> {
        let mut attempt = 0;
        let mut redirects = 0;
        let mut target = self.url.to_string();
        loop {
            // Each request gets the per-request timeout, or what is left of
            // the deadline when that is less.
            let left = self.deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(self.timed_out(&target, name, "none, no time left"));
            }
            let file = File::open(path).map_err(|e| Error::io_read(path, e))?;
            let sent = self
                .request(&target, name, key, self.timing.timeout.min(left))
                .send(file);
            let outcome = match self.answered(&mut target, &mut redirects, name, sent)? {
                Sent::Done(line) => return Ok(line),
                Sent::Redirected => continue,
                Sent::Transient(outcome) => outcome,
            };
            let Some(&pause) = HTTP_BACKOFF.get(attempt) else {
                if Instant::now() >= self.deadline {
                    return Err(self.timed_out(&target, name, &outcome));
                }
                return Err(Error::new(
                    Code::HandoverFailed,
                    format!("{target}: {outcome} after {} attempts", attempt + 1),
                ));
            };
            // Never sleep past the deadline: a pause that would end there
            // leaves no time for another attempt.
            if Instant::now() + pause >= self.deadline {
                return Err(self.timed_out(&target, name, &outcome));
            }
            std::thread::sleep(pause);
            attempt += 1;
        }
    }

    /// What one POST's answer means: done (2xx), follow a redirect within
    /// the origin (3xx, `target` updated), refused (4xx, TLS, proxy: an
    /// error), or a failure worth retrying (5xx, connection).
    fn answered(
        &self,
        target: &mut String,
        redirects: &mut usize,
        name: &str,
        sent: std::result::Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<Sent> {
        let resp = match sent {
            Ok(resp) => resp,
            Err(e) => {
                return match self.agent.classify(target, &e) {
                    Failure::Tls(msg) => {
                        Err(Error::new(Code::HandoverFailed, format!("{target}: {msg}"))
                            .with_hint(net::TLS_HINT)
                            .with_source(e))
                    }
                    Failure::Proxy(msg) => {
                        Err(Error::new(Code::HandoverFailed, format!("{target}: {msg}"))
                            .with_hint(net::PROXY_HINT)
                            .with_source(e))
                    }
                    Failure::Transient(msg) => Ok(Sent::Transient(msg)),
                }
            }
        };
        let status = resp.status().as_u16();
        if (200..300).contains(&status) {
            return Ok(Sent::Done(format!("{name} -> HTTP {status}")));
        }
        if (300..400).contains(&status) {
            let location = resp
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(String::from);
            *target = follow(
                &self.origin,
                target,
                status,
                location.as_deref(),
                *redirects,
            )?;
            *redirects += 1;
            return Ok(Sent::Redirected);
        }
        if (400..500).contains(&status) {
            return Err(Error::new(
                Code::HandoverRejected,
                format!("{target} answered HTTP {status} for {name}"),
            ));
        }
        Ok(Sent::Transient(format!("HTTP {status}")))
    }

    /// The POST of file `name` to `target`, with the bundle's headers and
    /// the file's idempotency key, within `timeout`.
    fn request(
        &self,
        target: &str,
        name: &str,
        key: &str,
        timeout: Duration,
    ) -> ureq::RequestBuilder<ureq::typestate::WithBody> {
        let m = self.m;
        let mut req = self
            .agent
            .post(target)
            .config()
            .timeout_global(Some(timeout))
            .build()
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key)
            .header("X-Airlock-Bundle-Id", m.bundle_id.as_str())
            .header("X-Airlock-Source-Host", m.source.host())
            .header("X-Airlock-File-Name", name);
        if let Some(id) = &m.source.server_id {
            req = req.header("X-Airlock-Server-Id", id);
        }
        if let Some(t) = self.token {
            req = req.header("Authorization", format!("Bearer {t}"));
        }
        req
    }
}

/// One POST's answer, for the retry loop.
enum Sent {
    /// Accepted: `NAME -> HTTP STATUS`.
    Done(String),
    /// Redirected within the origin: post again there.
    Redirected,
    /// A failure worth retrying, in words.
    Transient(String),
}

/// Where a redirect of the hand-over POST may go: 307/308 within the
/// origin of `--submit-url`, a few times; anything else is refused.
fn follow(
    origin: &net::Origin,
    from: &str,
    status: u16,
    location: Option<&str>,
    redirects: usize,
) -> Result<String> {
    let refuse = |why: String| {
        Err(Error::new(Code::HandoverRejected, format!("{from} answered HTTP {status}: {why}"))
            .with_hint("set --submit-url (submit_url) to the endpoint's final URL; airlock sends the payload and token only to that origin"))
    };
    if !(status == 307 || status == 308) {
        return refuse("a redirect that would turn the POST into a GET; not followed".into());
    }
    let Some(loc) = location else {
        return refuse("a redirect without a Location".into());
    };
    if redirects >= MAX_REDIRECTS {
        return refuse(format!("more than {MAX_REDIRECTS} redirects"));
    }
    match net::resolve(origin, loc) {
        Some(u) if net::origin(&u).as_ref() == Some(origin) => Ok(u),
        Some(u) => refuse(format!(
            "a redirect to {u}, outside {origin}; not followed, the payload and token were not sent there"
        )),
        None => refuse(format!("a redirect to {loc:?}, not an absolute or root-relative URL; not followed")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Regression (issue 27): the watcher's steps said `airlock cloud status
    /// --enterprise …`, which in the administrator's shell reads another
    /// ledger. The step names the state directory and configuration used,
    /// and the owner to run it as.
    #[test]
    fn the_confirm_step_reads_the_ledger_of_this_import() {
        let packaged = StatusCommand {
            run_as: Some("airlock".into()),
            config: Some("/etc/airlock/airlock.toml".into()),
            state_dir: Some("/var/lib/airlock".into()),
        };
        assert_eq!(
            packaged.line("octo-corp"),
            "sudo -u airlock airlock cloud status --config /etc/airlock/airlock.toml --state-dir /var/lib/airlock --enterprise octo-corp"
        );
        assert_eq!(
            StatusCommand::default().line("SLUG"),
            "airlock cloud status --enterprise SLUG"
        );
        let odd = StatusCommand {
            run_as: Some("#1001".into()),
            config: None,
            state_dir: Some(PathBuf::from("/srv/it's here")),
        };
        assert_eq!(
            odd.line("x"),
            r"sudo -u '#1001' airlock cloud status --state-dir '/srv/it'\''s here' --enterprise x"
        );
        assert_eq!(shell_word(b"/a\nb\xff"), r"$'/a\x0ab\xff'");
        // Another directory than the default needs the flag; the default
        // itself needs none.
        let d = tempfile::tempdir().unwrap();
        let other = StatusCommand::new(d.path(), None, Some(Path::new("/nonexistent/default")));
        assert_eq!(other.run_as, None);
        assert_eq!(other.state_dir.as_deref(), Some(d.path()));
        let own = StatusCommand::new(d.path(), None, Some(d.path()));
        assert_eq!(own.state_dir, None);
    }

    #[test]
    fn idempotency_keys_are_per_file_and_fit_a_header() {
        let id = "0123456789abcdef0123456789abcdef";
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let k = idempotency_key(id, &a, 1);
        assert_eq!(k, format!("airlock-{id}-{a}"));
        assert_eq!(k.len(), 105);
        assert_ne!(k, idempotency_key(id, &b, 1));
        // The same bytes twice in one bundle: still distinct keys.
        assert_eq!(idempotency_key(id, &a, 2), format!("{k}-2"));
        assert!(k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
    }
}
