//! `airlock watch DIR`: the unattended importer for a drop folder (behind a
//! data diode or a cross-domain gateway). Runs until SIGTERM, SIGINT or
//! SIGHUP; a bundle being imported is finished first, then it exits 0.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use airlock::error::{Code, Error, Result};
use airlock::import::Disposition;
use airlock::names;
use airlock::watch::{watch, WatchEvent, WatchOptions};

use super::import::{import_one, open_state, ImportArgs};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The drop folder: *.airlock.zip files are imported, then moved to DIR/done/ or DIR/quarantine/
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    #[command(flatten)]
    pub opts: ImportArgs,
    /// A file is complete once unchanged this long and ending in a zip trailer
    #[arg(long, value_name = "DURATION", default_value = "2s", value_parser = super::parse_duration)]
    pub settle: Duration,
    /// Quarantine a file still incomplete this long after it appeared
    #[arg(long, value_name = "DURATION", default_value = "1h", value_parser = super::parse_duration)]
    pub incomplete_after: Duration,
    /// Rescan the folder at least this often (needed where inotify sees nothing: NFS, SMB, some removable media)
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::parse_duration)]
    pub poll: Duration,
    /// After a failure of this host (disk, outbox, endpoint, lock), try the file again after this long
    #[arg(long, value_name = "DURATION", default_value = "1m", value_parser = super::parse_duration)]
    pub retry_after: Duration,
    /// Judge what is in the folder, then exit (instead of watching)
    #[arg(long)]
    pub once: bool,
}

pub fn run(a: Args) -> Result<()> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, Arc::clone(&stop))
            .map_err(|e| Error::new(Code::Internal, format!("cannot handle signal {sig}: {e}")))?;
    }
    let opts = WatchOptions {
        dir: a.dir.clone(),
        settle: a.settle,
        incomplete_after: a.incomplete_after,
        poll: a.poll,
        retry_after: a.retry_after,
        until_idle: a.once,
        now: airlock::bundle::verify::Clock::System,
    };
    let json = super::json();
    // Options, trust and identities are read again for every bundle, so a
    // changed trust file applies without a restart.
    let mut import = |path: &std::path::Path| {
        let r = a.opts.resolve(path)?;
        let state = open_state(&r.state_path, true)?;
        Ok(import_one(&r, &state, path))
    };
    let mut on = |ev: WatchEvent<'_>| {
        report(&ev, json, &a.dir);
        // Nobody reads the events any more (`airlock watch … | head`): stop
        // as on SIGTERM, after the bundle in hand.
        if super::stdout_closed() {
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    };
    watch(&opts, &stop, &mut import, &mut on)
}

fn report(ev: &WatchEvent<'_>, json: bool, dir: &std::path::Path) {
    let line = match ev {
        WatchEvent::Started { inotify } => {
            let how = match inotify {
                Ok(()) => "inotify, and a rescan".to_string(),
                Err(e) => format!("rescans only (no inotify: {e})"),
            };
            if json {
                let mut v = serde_json::json!({"event": "started", "inotify": inotify.is_ok()});
                names::insert(&mut v, "dir", dir);
                v
            } else {
                eprintln!(
                    "airlock watch: watching {} ({})",
                    names::shown(dir),
                    names::one_line(&how)
                );
                return;
            }
        }
        WatchEvent::Placed {
            name,
            disposition,
            to,
            report,
            error,
        } => {
            if json {
                let mut v = serde_json::json!({"event": "placed", "disposition": disposition});
                names::insert(&mut v, "file", name);
                names::insert(&mut v, "to", to);
                if let Some(r) = report {
                    v["import"] = serde_json::json!(r);
                }
                if let Some(e) = error {
                    v["error"] = serde_json::json!({"code": e.code.as_str(), "cause": e.cause});
                }
                v
            } else {
                let what = match disposition {
                    Disposition::Imported => "imported",
                    Disposition::AlreadyImported => "already imported",
                    Disposition::Superseded => "superseded",
                    Disposition::Refused => "QUARANTINED",
                    Disposition::Retry => "retry",
                };
                let why = error
                    .map(|e| format!(" ({}: {})", e.code.as_str(), names::one_line(&e.cause)))
                    .unwrap_or_default();
                // One line per file, whatever its name (decision 71).
                crate::outln!(
                    "{what}: {} -> {}{why}",
                    names::shown(name),
                    names::shown(to)
                );
                return;
            }
        }
        WatchEvent::Retry { name, error } => {
            if json {
                let mut v = serde_json::json!({"event": "retry",
                    "error": {"code": error.code.as_str(), "cause": error.cause}});
                names::insert(&mut v, "file", name);
                v
            } else {
                eprintln!(
                    "airlock watch: {}: {}: {} (will try again)",
                    names::shown(name),
                    error.code.as_str(),
                    names::one_line(&error.cause)
                );
                return;
            }
        }
    };
    crate::cli::raw_out(&format!("{line}\n"));
}
