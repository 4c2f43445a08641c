//! The watcher's loop over claimed files: import, move to done or quarantine, and put back.

use super::*;

/// A file claimed in this pass: its name in the drop folder and the
/// identity of what was opened (device, inode), to detect a replacement.
struct Claimed {
    name: OsString,
    ident: Option<(u64, u64)>,
}

/// The state of one run.
pub(super) struct Watcher<'o, R> {
    pub(super) opts: &'o WatchOptions,
    pub(super) dirs: &'o Dirs,
    pub(super) tracked: HashMap<OsString, Track>,
    pub(super) summary: Summary,
    pub(super) on: &'o mut dyn FnMut(WatchEvent<'_, R>),
}

impl<R> Watcher<'_, R> {
    /// The settled files whose retry (if any) is due, by name.
    pub(super) fn ready(&self, now: Instant) -> Vec<OsString> {
        let mut ready: Vec<OsString> = self
            .tracked
            .iter()
            .filter(|(_, t)| {
                now.duration_since(t.changed_at) >= self.opts.settle
                    && t.retry_at.is_none_or(|r| r <= now)
            })
            .map(|(n, _)| n.clone())
            .collect();
        ready.sort();
        ready
    }

    /// How long to sleep: until the next file could be complete or retried,
    /// at most `poll`, and at most half a second so `stop` is seen promptly.
    pub(super) fn next_wake(&self, now: Instant) -> Duration {
        let mut d = self.opts.poll.min(Duration::from_millis(500));
        for t in self.tracked.values() {
            let due = t.retry_at.unwrap_or(t.changed_at + self.opts.settle);
            d = d.min(due.saturating_duration_since(now));
        }
        d.max(Duration::from_millis(20))
    }

    /// One pass: claim the ready files, then judge them as one batch,
    /// newest first per instance.
    pub(super) fn pass(
        &mut self,
        ready: Vec<OsString>,
        import: &mut ImportFn<'_, R>,
        stop: &AtomicBool,
    ) -> Result<()> {
        let mut claimed: HashMap<PathBuf, Claimed> = HashMap::new();
        let mut opened = Vec::new();
        for name in ready {
            if let Some((c, o)) = self.claim(&name)? {
                claimed.insert(o.path().to_path_buf(), c);
                opened.push(o);
            }
        }
        let mut batch = Batch::new();
        for o in batch_order(opened) {
            let Some(c) = claimed.remove(o.path()) else {
                continue;
            };
            if stop.load(Ordering::SeqCst) {
                // Not judged: back where it came from, for the next run.
                drop(o);
                put_back(self.dirs, &c.name)?;
                continue;
            }
            let result = import(Ok(o), &mut batch);
            self.place(&c, result)?;
        }
        Ok(())
    }

    /// Claim a settled file: look at it by name, rename it into the claim
    /// directory, open it there and check its trailer on that descriptor.
    /// `None`: not claimed now (gone, still arriving, or refused here).
    fn claim(&mut self, name: &OsString) -> Result<Option<(Claimed, Opened)>> {
        let path = self.dirs.root.join(name);
        let incomplete = match peek(&path) {
            Peek::Gone => {
                self.tracked.remove(name);
                return Ok(None);
            }
            Peek::Incomplete => true,
            Peek::Complete | Peek::NotAFile => false,
        };
        if incomplete && !self.give_up_on(name) {
            return Ok(None);
        }
        let claimed = self.dirs.claim.join(name);
        if let Err(e) = rename_noreplace(&path, &claimed) {
            // Gone meanwhile, or a name clash in our own directory.
            if e.kind() != std::io::ErrorKind::NotFound {
                let err = Error::io_write(&claimed, e);
                self.retry(name, &err);
            }
            return Ok(None);
        }
        fsutil::pause_point(fsutil::Pause::WatchClaimed);
        let opened = Opened::open(&claimed);
        let ident = opened.as_ref().ok().and_then(|o| o.identity());
        let c = Claimed {
            name: name.clone(),
            ident,
        };
        let e = match opened {
            Ok(o) if o.has_trailer() => return Ok(Some((c, o))),
            Ok(_) => self.incomplete_error(name),
            Err(e) => e,
        };
        self.quarantine(&c, &e)?;
        Ok(None)
    }

    /// A settled file without a trailer: quarantine it now (`--once`, or
    /// once `incomplete_after` has passed), else look again when it changes.
    fn give_up_on(&mut self, name: &OsString) -> bool {
        let Some(t) = self.tracked.get_mut(name) else {
            return false;
        };
        if self.opts.once || t.first_seen.elapsed() >= self.opts.incomplete_after {
            return true;
        }
        t.changed_at = Instant::now();
        false
    }

    fn incomplete_error(&self, name: &OsStr) -> Error {
        let (len, seen) = self
            .tracked
            .get(name)
            .map(|t| (t.stamp.0, t.first_seen.elapsed().as_secs()))
            .unwrap_or_default();
        Error::new(
            Code::BundleIncomplete,
            format!(
                "{} stopped growing at {len} bytes without a zip trailer, {seen} s after it appeared",
                names::escape(name)
            ),
        )
    }

    /// Act on an import's verdict: put the file back and try again later (a
    /// failure of this host), quarantine a refused file, or move an
    /// imported (already imported, superseded) one into `done/`.
    fn place(&mut self, c: &Claimed, result: Result<Result<R>>) -> Result<()> {
        let result = match result {
            Ok(r) => r,
            Err(setup) => {
                let to = put_back(self.dirs, &c.name)?;
                self.restamp(&c.name, &to);
                self.retry(&c.name, &setup);
                return Ok(());
            }
        };
        let d = disposition(&result);
        match (d, &result) {
            (Disposition::Retry, Err(e)) => {
                let to = put_back(self.dirs, &c.name)?;
                self.restamp(&c.name, &to);
                self.retry(&c.name, e);
            }
            (Disposition::Refused, Err(e)) => self.quarantine(c, e)?,
            _ => {
                self.tracked.remove(&c.name);
                let to = match self.move_claimed(c, &self.dirs.done) {
                    Ok(to) => to,
                    Err(e) => {
                        self.stuck(c, &e);
                        return Ok(());
                    }
                };
                self.summary.done += 1;
                (self.on)(WatchEvent::Placed {
                    name: &c.name,
                    disposition: d,
                    to: &to,
                    report: result.as_ref().ok(),
                    error: result.as_ref().err(),
                });
            }
        }
        Ok(())
    }

    /// A file this watcher put back: the rename changed its status-change
    /// time, which is not a change by anyone else (else `--once` would
    /// leave it as "still changing" instead of trying it again).
    fn restamp(&mut self, name: &OsStr, at: &Path) {
        if at.file_name() != Some(name) {
            return;
        }
        if let (Some(t), Ok(md)) = (self.tracked.get_mut(name), fs::symlink_metadata(at)) {
            t.stamp = stamp(&md);
        }
    }

    /// A failure of this host: try again after `retry_after` (`--once`:
    /// once, after min(retry_after, settle); then it is left).
    fn retry(&mut self, name: &OsStr, e: &Error) {
        let Some(t) = self.tracked.get_mut(name) else {
            return;
        };
        if self.opts.once && t.retries >= 1 {
            self.tracked.remove(name);
            self.summary.failed += 1;
            self.summary.failure(name, e);
            (self.on)(WatchEvent::Left { name, error: e });
            return;
        }
        t.retries += 1;
        let pause = if self.opts.once {
            self.opts.retry_after.min(self.opts.settle)
        } else {
            self.opts.retry_after
        };
        t.retry_at = Some(Instant::now() + pause);
        (self.on)(WatchEvent::Retry { name, error: e });
    }

    /// Write `NAME.reason.json` into the quarantine, then move the claimed
    /// file there.
    fn quarantine(&mut self, c: &Claimed, e: &Error) -> Result<()> {
        let q = &self.dirs.quarantine;
        let to = free_name(q, &c.name);
        let file = to.file_name().unwrap_or_default().to_os_string();
        let reason = Reason {
            file: names::lossy(&file),
            file_bytes: names::bytes_field(&file),
            code: e.code.as_str(),
            class: e.code.class().name(),
            exit_code: e.exit_code(),
            cause: &e.cause,
            hint: e.hint(),
            time: format_time(self.opts.now.now()),
        };
        let mut text = serde_json::to_vec_pretty(&reason)
            .map_err(|err| Error::new(Code::Internal, format!("reason file: {err}")))?;
        text.push(b'\n');
        let reason_path = q.join(names::derived_name(&file, ".reason.json"));
        fsutil::write_atomic(&reason_path, &text, 0o644, true)?;
        self.tracked.remove(&c.name);
        let to = match self.move_claimed_to(c, to) {
            Ok(to) => to,
            Err(err) => {
                self.stuck(c, &err);
                return Ok(());
            }
        };
        self.summary.quarantined += 1;
        self.summary.failure(&c.name, e);
        (self.on)(WatchEvent::Placed {
            name: &c.name,
            disposition: Disposition::Refused,
            to: &to,
            report: None,
            error: Some(e),
        });
        Ok(())
    }

    /// A claimed file that cannot be moved (replaced in the claim
    /// directory, or a rename failed): reported and left there; the next
    /// start puts it back. Never a reason to stop.
    fn stuck(&mut self, c: &Claimed, e: &Error) {
        self.summary.failed += 1;
        self.summary.failure(&c.name, e);
        (self.on)(WatchEvent::Left {
            name: &c.name,
            error: e,
        });
    }

    fn move_claimed(&self, c: &Claimed, dir: &Path) -> Result<PathBuf> {
        self.move_claimed_to(c, free_name(dir, &c.name))
    }

    /// Move what was claimed, and only that: a file in the claim directory
    /// that is not the one opened (another device or inode) stays there.
    fn move_claimed_to(&self, c: &Claimed, to: PathBuf) -> Result<PathBuf> {
        let from = self.dirs.claim.join(&c.name);
        let now = fs::symlink_metadata(&from).map_err(|e| Error::io_read(&from, e))?;
        if c.ident.is_some_and(|id| id != (now.dev(), now.ino())) {
            return Err(Error::new(
                Code::BundleChanged,
                format!(
                    "{} was replaced in {} after it was claimed; it is left there",
                    names::escape(&c.name),
                    self.dirs.claim.display()
                ),
            ));
        }
        rename_noreplace(&from, &to).map_err(|e| Error::io_write(&to, e))?;
        if let Some(dir) = to.parent() {
            fsutil::sync_dir(dir)?;
        }
        fsutil::sync_dir(&self.dirs.claim)?;
        Ok(to)
    }

    /// `--once`: finished when no tracked file has work left. A file still
    /// changing two settle times after it was first seen is left (and
    /// reported).
    pub(super) fn once_finished(&mut self, now: Instant) -> bool {
        let settle = self.opts.settle;
        let growing: Vec<OsString> = self
            .tracked
            .iter()
            .filter(|(_, t)| {
                now.duration_since(t.changed_at) < settle
                    && now.duration_since(t.first_seen) >= settle * 2
            })
            .map(|(n, _)| n.clone())
            .collect();
        for name in growing {
            self.tracked.remove(&name);
            let e = Error::new(
                Code::WatchLeft,
                format!(
                    "{} was still changing when watch --once ended; it stays in the drop folder",
                    names::escape(&name)
                ),
            );
            self.summary.left += 1;
            self.summary.failure(&name, &e);
            (self.on)(WatchEvent::Left {
                name: &name,
                error: &e,
            });
        }
        self.tracked.is_empty()
    }
}
