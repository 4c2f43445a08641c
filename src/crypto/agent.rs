//! Signing through a running ssh-agent (`SSH_AUTH_SOCK`), so the private key
//! never enters airlock's memory — keys on hardware tokens included. Speaks
//! the agent protocol's sign request (draft-miller-ssh-agent §3.6).

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use crate::base::error::{Code, Error, Result};
use crate::crypto::sshsig::{put_string, signed_data, HashAlg, PublicKey, SkInfo, SshSig};

const SIGN_REQUEST: u8 = 13;
const SIGN_RESPONSE: u8 = 14;
const FAILURE: u8 = 5;
/// Largest agent reply read.
const MAX_REPLY: u32 = 256 * 1024;

fn agent_err(msg: impl Into<String>) -> Error {
    Error::new(Code::AgentFailed, msg)
}

/// Ask the agent at `socket` to make an SSHSIG over `message` in
/// `namespace` with `key`. The result is verified before it is returned.
pub fn sign(socket: &Path, key: &PublicKey, namespace: &str, message: &[u8]) -> Result<SshSig> {
    let mut s = UnixStream::connect(socket).map_err(|e| {
        agent_err(format!(
            "cannot reach ssh-agent at {}: {e}",
            socket.display()
        ))
    })?;
    // A hardware token may wait for a touch.
    s.set_read_timeout(Some(Duration::from_secs(120))).ok();
    let data = signed_data(namespace, HashAlg::Sha512, message);
    let reply = exchange(&mut s, key, &data)?;
    let (signature, sk) = signature_of(&reply, key)?;
    let sig = SshSig {
        public_key: key.clone(),
        namespace: namespace.to_string(),
        hash_alg: HashAlg::Sha512,
        signature,
        sk,
    };
    sig.verify(message)
        .map_err(|e| agent_err(format!("the agent's signature does not verify: {e}")))?;
    Ok(sig)
}

/// Send the sign request for `data` and read the agent's reply (its type
/// checked: a signature, not a refusal).
fn exchange(s: &mut UnixStream, key: &PublicKey, data: &[u8]) -> Result<Vec<u8>> {
    let mut body = vec![SIGN_REQUEST];
    put_string(&mut body, &key.blob());
    put_string(&mut body, data);
    body.extend_from_slice(&0u32.to_be_bytes());
    let mut req = (body.len() as u32).to_be_bytes().to_vec();
    req.extend_from_slice(&body);
    s.write_all(&req)
        .map_err(|e| agent_err(format!("writing to ssh-agent: {e}")))?;
    let mut len = [0u8; 4];
    s.read_exact(&mut len)
        .map_err(|e| agent_err(format!("reading from ssh-agent: {e}")))?;
    let len = u32::from_be_bytes(len);
    if len == 0 || len > MAX_REPLY {
        return Err(agent_err("ssh-agent sent a malformed reply"));
    }
    let mut reply = vec![0u8; len as usize];
    s.read_exact(&mut reply)
        .map_err(|e| agent_err(format!("reading from ssh-agent: {e}")))?;
    match reply[0] {
        SIGN_RESPONSE => {}
        FAILURE => {
            return Err(agent_err(format!(
                "ssh-agent refused to sign with {} (is the key loaded? `ssh-add -l`)",
                key.fingerprint()
            )))
        }
        t => return Err(agent_err(format!("ssh-agent answered message type {t}"))),
    }
    Ok(reply)
}

/// The Ed25519 signature (and, for a FIDO key, its flags and counter) in
/// the agent's reply.
fn signature_of(reply: &[u8], key: &PublicKey) -> Result<([u8; 64], Option<SkInfo>)> {
    // string signature = string "ssh-ed25519" || string sig
    let sig_blob =
        read_string(&reply[1..]).ok_or_else(|| agent_err("malformed signature from ssh-agent"))?;
    let kind =
        read_string(sig_blob).ok_or_else(|| agent_err("malformed signature from ssh-agent"))?;
    if kind != key.key_type().as_bytes() {
        return Err(agent_err(format!(
            "ssh-agent made a {} signature for a {} key",
            String::from_utf8_lossy(kind),
            key.key_type()
        )));
    }
    let rest = &sig_blob[4 + kind.len()..];
    let raw = read_string(rest).ok_or_else(|| agent_err("malformed signature from ssh-agent"))?;
    let signature: [u8; 64] = raw
        .try_into()
        .map_err(|_| agent_err("the agent's Ed25519 signature is not 64 bytes"))?;
    let sk = if key.application.is_some() {
        let tail = &rest[4 + 64..];
        if tail.len() != 5 {
            return Err(agent_err("malformed FIDO signature from ssh-agent"));
        }
        Some(SkInfo {
            flags: tail[0],
            counter: u32::from_be_bytes([tail[1], tail[2], tail[3], tail[4]]),
        })
    } else {
        None
    };
    Ok((signature, sk))
}

fn read_string(b: &[u8]) -> Option<&[u8]> {
    let n = u32::from_be_bytes(b.get(..4)?.try_into().ok()?) as usize;
    b.get(4..4 + n)
}

/// The agent socket from the environment.
pub fn socket_from_env() -> Result<std::path::PathBuf> {
    std::env::var_os("SSH_AUTH_SOCK")
        .filter(|v| !v.is_empty())
        .map(std::path::PathBuf::from)
        .ok_or_else(|| {
            Error::new(Code::AgentFailed, "SSH_AUTH_SOCK is not set: no ssh-agent to sign with")
                .with_hint("start one with `eval $(ssh-agent)` and `ssh-add KEY`, or sign with --key PRIVATE_KEY without --agent")
        })
}
