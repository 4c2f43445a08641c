//! Keys and what they do: SSHSIG signatures, signing keys and the agent,
//! age encryption, and trust files as OpenSSH reads them.

pub mod agent;
pub mod crypt;
pub mod keys;
pub mod sshsig;
pub mod trust;
