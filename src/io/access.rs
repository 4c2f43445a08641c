//! Who may read what airlock writes, and who runs it: the outbox group,
//! user and group names by id, other processes.

use std::fs::{self, File};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The group whose members may read outbox files: the packaged units run
/// as user and group `airlock` (decision 64).
pub const OUTBOX_GROUP: &str = "airlock";

/// Who may read the files placed in an outbox (decision 74): their owner
/// only (0600), whatever the directory's mode, or also the group
/// [`OUTBOX_GROUP`] when the outbox directory belongs to that group (0640).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxAccess {
    /// The outbox directory's group id, when that group is `airlock`.
    pub group: Option<u32>,
}

impl OutboxAccess {
    /// The access for files placed in `dir`.
    pub fn of(dir: &Path) -> OutboxAccess {
        let group = fs::metadata(dir).ok().map(|m| m.gid()).filter(|g| {
            fs::read_to_string("/etc/group")
                .is_ok_and(|t| group_named(&t, *g).as_deref() == Some(OUTBOX_GROUP))
        });
        OutboxAccess { group }
    }

    /// Give `file` the group when there is one (a member of it may); the
    /// mode the file is to have: 0640 when it belongs to the group, else
    /// 0600 (never readable by a group it was not meant for).
    pub(crate) fn grant(&self, file: &File) -> u32 {
        let Some(g) = self.group else {
            return 0o600;
        };
        let ours = file.metadata().is_ok_and(|m| m.gid() == g)
            || rustix::fs::fchown(file, None, Some(rustix::fs::Gid::from_raw(g))).is_ok();
        if ours {
            0o640
        } else {
            0o600
        }
    }
}

/// The name of group `gid` in the text of `/etc/group`.
fn group_named(text: &str, gid: u32) -> Option<String> {
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == gid).then(|| name.to_string())
    })
}

/// The name and login shell of user `uid` in the text of `/etc/passwd`.
fn user_entry(text: &str, uid: u32) -> Option<(String, String)> {
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        let id: u32 = f.get(2)?.parse().ok()?;
        (id == uid).then(|| (f[0].to_string(), f.get(6).unwrap_or(&"").to_string()))
    })
}

/// This process's effective user: the owner of `/proc/self` (Linux).
pub fn effective_uid() -> Option<u32> {
    fs::metadata("/proc/self").ok().map(|m| m.uid())
}

/// Whether another process `pid` runs on this host (`/proc/PID` exists):
/// a lease or spool of this very process does not count.
pub(crate) fn other_process_running(pid: u32) -> bool {
    pid != std::process::id() && Path::new(&format!("/proc/{pid}")).exists()
}

/// The user to run a command as that reads `path`'s state, for a person
/// pasting it: `path`'s owner when that is not this process's user, or is
/// an account without a login shell (the packaged `airlock`, which only a
/// unit runs as). The name from `/etc/passwd`, else `#UID` as `sudo -u`
/// takes it; `None` when this user may run it as it is.
pub fn run_as_owner(path: &Path) -> Option<String> {
    let uid = fs::metadata(path).ok()?.uid();
    let entry = fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|t| user_entry(&t, uid));
    let no_login = entry
        .as_ref()
        .is_some_and(|(_, shell)| shell.ends_with("/nologin") || shell.ends_with("/false"));
    if effective_uid() == Some(uid) && !no_login {
        return None;
    }
    Some(
        entry
            .map(|(name, _)| name)
            .unwrap_or_else(|| format!("#{uid}")),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::io::publish::write_atomic_as;

    #[test]
    fn group_and_user_names_are_read_by_id() {
        let text = "root:x:0:\nairlock:x:998:alice,bob\nbad line\nstaff:x:50:\n";
        assert_eq!(group_named(text, 998).as_deref(), Some("airlock"));
        assert_eq!(group_named(text, 50).as_deref(), Some("staff"));
        assert_eq!(group_named(text, 7), None);
        let pw = "root:x:0:0:root:/root:/bin/sh\nairlock:x:997:998::/var/lib/airlock:/usr/sbin/nologin\n";
        assert_eq!(
            user_entry(pw, 997),
            Some(("airlock".into(), "/usr/sbin/nologin".into()))
        );
        assert_eq!(user_entry(pw, 0).unwrap().0, "root");
        assert_eq!(user_entry(pw, 5), None);
    }

    #[test]
    fn outbox_files_are_private_without_the_airlock_group() {
        let dir = tempfile::tempdir().unwrap();
        let f = tempfile::tempfile().unwrap();
        assert_eq!(OutboxAccess::default().grant(&f), 0o600);
        // A group this process may not give the file: still private.
        let other = OutboxAccess {
            group: Some(u32::MAX - 7),
        };
        let mode = other.grant(&f);
        let gid = f.metadata().unwrap().gid();
        assert!(mode == 0o600 || gid == u32::MAX - 7);
        // A temporary directory is not the airlock group's.
        assert_eq!(OutboxAccess::of(dir.path()).group, None);
        let t = dir.path().join("UPLOAD.txt");
        write_atomic_as(&t, b"x", OutboxAccess::default(), false).unwrap();
        assert_eq!(fs::metadata(&t).unwrap().mode() & 0o777, 0o600);
    }
}
