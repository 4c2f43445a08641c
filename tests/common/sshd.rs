//! A real OpenSSH server on loopback for tests: its own host key, one
//! authorised client key whose forced command is given, `sshd -D -e` as a
//! child of the test, stopped when dropped. `None` where `/usr/sbin/sshd`
//! is not installed (tests/run.sh installs openssh-server).

use std::ffi::OsString;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const SSHD: &str = "/usr/sbin/sshd";

pub struct Sshd {
    child: Child,
    pub port: u16,
    /// `[127.0.0.1]:PORT <host key>`: the pinned host key.
    pub known_hosts: PathBuf,
    /// The authorised client key (private).
    pub client_key: PathBuf,
    /// The host key's public line (`ssh-ed25519 AAAA… comment`).
    pub host_pub: String,
    /// sshd's own log (`-e`).
    pub log: PathBuf,
}

/// The login sshd accepts: the user running the tests.
pub fn user() -> String {
    let out = Command::new("id").arg("-un").output().unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn keygen(path: &Path) {
    let st = super::tool("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "airlock-test", "-f"])
        .arg(path)
        .status()
        .unwrap();
    assert!(st.success());
}

impl Sshd {
    /// Start sshd in `dir` with `forced_command` for the one client key;
    /// `None` when sshd is not installed.
    pub fn start(dir: &Path, forced_command: &str) -> Option<Sshd> {
        if !Path::new(SSHD).is_file() {
            return None;
        }
        // sshd started as root wants its privilege-separation directory.
        let _ = std::fs::create_dir_all("/run/sshd");
        let host_key = dir.join("ssh_host_ed25519_key");
        let client_key = dir.join("client_key");
        keygen(&host_key);
        keygen(&client_key);
        let client_pub = super::read_pub(&dir.join("client_key.pub"));
        let authorized = dir.join("authorized_keys");
        std::fs::write(
            &authorized,
            format!("command=\"{forced_command}\",restrict {client_pub}\n"),
        )
        .unwrap();
        let host_pub = super::read_pub(&dir.join("ssh_host_ed25519_key.pub"));
        let log = dir.join("sshd.log");
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let config = dir.join("sshd_config");
            std::fs::write(
                &config,
                format!(
                    "ListenAddress 127.0.0.1\nPort {port}\nHostKey {}\nAuthorizedKeysFile {}\n\
                     StrictModes no\nPidFile none\nUsePAM no\nPasswordAuthentication no\n\
                     KbdInteractiveAuthentication no\nPubkeyAuthentication yes\n\
                     PermitRootLogin prohibit-password\nAllowTcpForwarding no\n\
                     X11Forwarding no\nPrintMotd no\nLogLevel VERBOSE\n",
                    host_key.display(),
                    authorized.display()
                ),
            )
            .unwrap();
            let mut child = Command::new(SSHD)
                .args(["-D", "-e", "-f"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).unwrap())
                .spawn()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(15);
            let mut up = false;
            while Instant::now() < deadline {
                if child.try_wait().unwrap().is_some() {
                    break;
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    up = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            if up {
                let known_hosts = dir.join("known_hosts");
                std::fs::write(&known_hosts, format!("[127.0.0.1]:{port} {host_pub}\n")).unwrap();
                return Some(Sshd {
                    child,
                    port,
                    known_hosts,
                    client_key,
                    host_pub,
                    log,
                });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!(
            "sshd did not start: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// The SSH command a test gives airlock: `ssh -F /dev/null -i KEY -o
    /// IdentitiesOnly=yes` (airlock appends the rest).
    pub fn ssh_command(&self, key: &Path) -> Vec<OsString> {
        vec![
            "ssh".into(),
            "-F".into(),
            "/dev/null".into(),
            "-i".into(),
            key.into(),
            "-o".into(),
            "IdentitiesOnly=yes".into(),
        ]
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
