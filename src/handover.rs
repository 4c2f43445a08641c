//! Hand-over of a verified payload: into an outbox directory beside upload
//! instructions for GitHub Enterprise Cloud (the default; GitHub has no API
//! to upload server usage), or by HTTP POST to an internal endpoint.
//!
//! Both are idempotent, so an import interrupted after the hand-over and
//! re-run finishes without a second copy.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::bundle::manifest::PayloadEntry;
use crate::bundle::verify::{output_name, Replace, Staged};
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

/// The file name prefix for an instance and time: `HOST_YYYYMMDDTHHMMSSZ`.
pub fn prefix(m: &Manifest) -> String {
    format!("{}_{}", m.source.host_name, m.created_compact())
}

/// The upload steps, as text. `files` are (outbox name, SHA-256) in the
/// manifest's payload order; only GHES license usage files are to be
/// uploaded to GitHub, other carried files are listed as such.
pub fn instructions(
    m: &Manifest,
    files: &[(String, String)],
    enterprise: Option<&str>,
    bundle_sha256: &str,
) -> String {
    let is_usage = |i: usize| {
        m.payload
            .get(i)
            .is_some_and(|p| p.kind == crate::bundle::manifest::KIND_USAGE)
    };
    if !(0..files.len()).any(is_usage) {
        let mut s = format!(
            "Not for GitHub: bundle {} from {} carries no GHES license usage file\n\n",
            m.bundle_id, m.source.host_name
        );
        for (name, sha) in files {
            s.push_str(&format!("File     {name}\nSHA-256  {sha}\n"));
        }
        s.push_str(&format!(
            "\nVerified by {} from bundle {} (SHA-256 {bundle_sha256}),\nsigned by {} (sequence {}), created {}.\n\n\
             These files were carried as ordinary files (export --kind file). Do not upload them on\n\
             GitHub Enterprise Cloud's \"Add server usage\" page: it takes only the license usage file\n\
             that GHES exports (ghe-license usage -o -y).\n",
            crate::tool_version(),
            m.bundle_id,
            m.sequence.key,
            m.sequence.number,
            m.created
        ));
        return s;
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
    let files = &files[..];
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
    if !others.is_empty() {
        s.push_str(&format!(
            "   (Not for GitHub, carried in the same bundle: {}.)\n",
            others.join(", ")
        ));
    }
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

/// The name a payload file gets in the outbox: `HOST_TIME_NAME`.
pub fn outbox_name(m: &Manifest, p: &PayloadEntry) -> String {
    format!("{}_{}", prefix(m), output_name(p))
}

/// The name of a bundle's upload instructions in the outbox:
/// `HOST_TIME.UPLOAD.txt`. Payload files are `HOST_TIME_NAME`, so within a
/// bundle the two can never collide, whatever the payload names are; across
/// bundles nothing in the outbox is ever replaced by other content.
pub fn instructions_name(m: &Manifest) -> String {
    format!("{}.UPLOAD.txt", prefix(m))
}

fn failed(e: Error) -> Error {
    let hint = (e.code == Code::OutputExists)
        .then_some("move the file aside and run the same import again");
    let e = Error::new(Code::HandoverFailed, e.cause);
    match hint {
        Some(h) => e.with_hint(h),
        None => e,
    }
}

/// Hand over to an outbox: publish the staged payload files (verified and
/// written in the outbox by the verifying read) and the upload steps.
/// Returns the paths written.
pub fn to_outbox(
    dir: &Path,
    m: &Manifest,
    staged: Staged,
    enterprise: Option<&str>,
    bundle_sha256: &str,
) -> Result<Vec<PathBuf>> {
    let listed: Vec<(String, String)> = staged
        .files
        .iter()
        .map(|f| {
            (
                f.target
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                f.sha256.clone(),
            )
        })
        .collect();
    let mut out = staged
        .publish(0o644, Replace::IfIdentical)
        .map_err(failed)?;
    fsutil::fault_point("handover:payload-published");
    let text = instructions(m, &listed, enterprise, bundle_sha256);
    let txt = dir.join(instructions_name(m));
    // A re-run (say with another --enterprise) may rewrite this bundle's own
    // instructions; any other file of that name is left alone.
    let ours = std::fs::read_to_string(&txt).is_ok_and(|t| {
        (t.starts_with("Upload to GitHub Enterprise Cloud:") || t.starts_with("Not for GitHub:"))
            && t.contains(bundle_sha256)
    });
    fsutil::write_atomic(&txt, text.as_bytes(), 0o644, ours).map_err(failed)?;
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

/// POST each staged payload file to `url`. The bundle digest is the
/// idempotency key, so a retried or re-run hand-over is recognisable by the
/// endpoint.
pub fn to_http(
    url: &str,
    token: Option<&str>,
    m: &Manifest,
    staged: &Staged,
    bundle_sha256: &str,
) -> Result<Vec<String>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into();
    let mut results = Vec::new();
    for (f, p) in staged.files.iter().zip(&m.payload) {
        let name = output_name(p);
        let mut attempt = 0;
        loop {
            let file = File::open(f.path()).map_err(|e| Error::io_read(f.path(), e))?;
            let mut req = agent
                .post(url)
                .header("Content-Type", "application/json")
                .header("Idempotency-Key", bundle_sha256)
                .header("X-Airlock-Bundle-Id", &m.bundle_id)
                .header("X-Airlock-Source-Host", &m.source.host_name)
                .header("X-Airlock-File-Name", name)
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
                        results.push(format!("{name} -> HTTP {status}"));
                        break;
                    } else if (400..500).contains(&status) {
                        return Err(Error::new(
                            Code::HandoverRejected,
                            format!("{url} answered HTTP {status} for {name}"),
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
