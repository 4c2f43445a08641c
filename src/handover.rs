//! Hand-over of a verified payload: into an outbox directory beside upload
//! instructions for GitHub Enterprise Cloud (the default; GitHub has no API
//! to upload server usage), or by HTTP POST to an internal endpoint.
//!
//! Both are idempotent, so an import interrupted after the hand-over and
//! re-run finishes without a second copy.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::bundle::Manifest;
use crate::error::{Code, Error, Result};
use crate::fsutil;

/// Where verified payloads go.
pub enum Target {
    Outbox(PathBuf),
    Http {
        url: String,
        token: Option<Zeroizing<String>>,
    },
}

/// One payload file ready to hand over (already verified and decrypted).
pub struct Item {
    /// The payload's own file name.
    pub name: String,
    /// Where its plaintext is (a file in the spool).
    pub path: PathBuf,
}

/// The file name prefix for an instance and time: `HOST_YYYYMMDDTHHMMSSZ`.
pub fn prefix(m: &Manifest) -> String {
    format!("{}_{}", m.source.host_name, m.created_compact())
}

/// The upload steps, as text.
pub fn instructions(
    m: &Manifest,
    files: &[(String, String)],
    enterprise: Option<&str>,
    bundle_sha256: &str,
) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Upload to GitHub Enterprise Cloud: license usage of {} ({})\n\n",
        m.source.host_name,
        m.source.server_id.as_deref().unwrap_or("no server id")
    ));
    for (name, sha) in files {
        s.push_str(&format!("File     {name}\nSHA-256  {sha}\n"));
    }
    s.push_str(&format!(
        "\nVerified by {} from bundle {} (SHA-256 {bundle_sha256}),\nsigned by {} (sequence {}), created {}.\n\n",
        crate::tool_version(),
        m.bundle_id,
        m.sequence.key,
        m.sequence.number,
        m.created
    ));
    s.push_str("Steps (GitHub Docs: \"Syncing license usage between GitHub Enterprise Server and GitHub Enterprise Cloud\"):\n");
    match enterprise {
        Some(slug) => s.push_str(&format!(
            "1. Open https://github.com/enterprises/{slug}/enterprise_licensing\n   (enterprise account -> Settings -> Licensing).\n"
        )),
        None => s.push_str("1. On GitHub Enterprise Cloud, open your enterprise account -> Settings -> Licensing.\n"),
    }
    s.push_str("2. Under \"Enterprise Server instances\", click \"Add server usage\".\n");
    s.push_str("3. Upload the file above, unchanged.\n");
    match enterprise {
        Some(slug) => s.push_str(&format!(
            "4. Confirm GitHub processed it: airlock cloud status --enterprise {slug}\n"
        )),
        None => {
            s.push_str("4. Confirm GitHub processed it: airlock cloud status --enterprise SLUG\n")
        }
    }
    s
}

/// Copy `src` to `dst` atomically, unless `dst` already holds the same bytes.
/// Returns the SHA-256 of the bytes now at `dst`.
fn publish_copy(src: &Path, dst: &Path) -> Result<String> {
    let want = fsutil::sha256_file(src).map_err(|e| Error::io_read(src, e))?;
    if dst.exists() {
        match fsutil::sha256_file(dst) {
            Ok(have) if have == want => return Ok(want),
            _ => {
                return Err(Error::new(
                    Code::HandoverFailed,
                    format!("{} exists with other content", dst.display()),
                )
                .with_hint("move the file aside and run the same import again"))
            }
        }
    }
    let mut tmp =
        fsutil::temp_beside(dst, 0o644).map_err(|e| Error::new(Code::HandoverFailed, e.cause))?;
    let mut f = File::open(src).map_err(|e| Error::io_read(src, e))?;
    io::copy(&mut f, tmp.as_file_mut()).map_err(|e| {
        Error::new(
            Code::HandoverFailed,
            format!("writing {}: {e}", dst.display()),
        )
    })?;
    fsutil::fault_point("handover:temp-written");
    fsutil::publish(tmp, dst, true).map_err(|e| Error::new(Code::HandoverFailed, e.cause))?;
    Ok(want)
}

/// Hand over to an outbox. Returns the paths written.
pub fn to_outbox(
    dir: &Path,
    m: &Manifest,
    items: &[Item],
    enterprise: Option<&str>,
    bundle_sha256: &str,
) -> Result<Vec<PathBuf>> {
    if !dir.is_dir() {
        std::fs::create_dir_all(dir).map_err(|e| {
            Error::new(
                Code::HandoverFailed,
                format!("cannot create outbox {}: {e}", dir.display()),
            )
        })?;
    }
    let p = prefix(m);
    let mut out = Vec::new();
    let mut listed = Vec::new();
    for it in items {
        let dst = dir.join(format!("{p}_{}", it.name));
        let sha = publish_copy(&it.path, &dst)?;
        listed.push((
            dst.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            sha,
        ));
        out.push(dst);
    }
    fsutil::fault_point("handover:payload-published");
    let text = instructions(m, &listed, enterprise, bundle_sha256);
    let txt = dir.join(format!("{p}_UPLOAD.txt"));
    fsutil::write_atomic(&txt, text.as_bytes(), 0o644, true)
        .map_err(|e| Error::new(Code::HandoverFailed, e.cause))?;
    out.push(txt);
    Ok(out)
}

/// Retry schedule for HTTP hand-over: 5xx and connection errors are retried
/// after these pauses; 4xx are not.
pub const HTTP_BACKOFF: [Duration; 4] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
];

/// POST each payload file to `url`. The bundle digest is the idempotency
/// key, so a retried or re-run hand-over is recognisable by the endpoint.
pub fn to_http(
    url: &str,
    token: Option<&str>,
    m: &Manifest,
    items: &[Item],
    bundle_sha256: &str,
) -> Result<Vec<String>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut results = Vec::new();
    for it in items {
        let mut attempt = 0;
        loop {
            let file = File::open(&it.path).map_err(|e| Error::io_read(&it.path, e))?;
            let mut req = agent
                .post(url)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", bundle_sha256)
                .header("X-Airlock-Bundle-Id", &m.bundle_id)
                .header("X-Airlock-Source-Host", &m.source.host_name)
                .header("X-Airlock-File-Name", &it.name)
                .header("User-Agent", crate::tool_version());
            if let Some(id) = &m.source.server_id {
                req = req.header("X-Airlock-Server-Id", id);
            }
            if let Some(t) = token {
                req = req.header("Authorization", format!("Bearer {t}"));
            }
            let outcome = match req.send(file) {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if (200..300).contains(&status) {
                        results.push(format!("{} -> HTTP {status}", it.name));
                        break;
                    } else if (400..500).contains(&status) {
                        return Err(Error::new(
                            Code::HandoverRejected,
                            format!("{url} answered HTTP {status} for {}", it.name),
                        ));
                    }
                    format!("HTTP {status}")
                }
                Err(e) => e.to_string(),
            };
            if attempt >= HTTP_BACKOFF.len() {
                return Err(Error::new(
                    Code::HandoverFailed,
                    format!("{url}: {outcome} after {} attempts", attempt + 1),
                ));
            }
            std::thread::sleep(HTTP_BACKOFF[attempt]);
            attempt += 1;
        }
    }
    Ok(results)
}
