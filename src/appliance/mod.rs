//! The isolated side's hand-over of a GHES licence to the appliance
//! (licence in, decision 83): what airlock asks of the appliance, and the two
//! ways it asks, SSH (`ghe-license` on port 122) and the Manage GHES API
//! (`/manage/v1/config/license` on port 8443). The licence file itself is
//! opaque to airlock; only the appliance reads it.

use std::time::Duration;

use serde::Serialize;

use crate::bundle::manifest::{HexDigest, LicenceReference, Timestamp};
use crate::error::Result;

pub mod manage;
pub mod ssh;
pub mod status;

/// What the appliance says about a licence (the active one, or a candidate
/// read without importing it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LicenceInfo {
    /// The licence's reference number (`reference_number` /
    /// `referenceNumber`).
    pub reference: LicenceReference,
    /// Seats licensed; `None` for unlimited seating.
    pub seats: Option<u64>,
    /// When the licence expires (`expire_at` / `expireAt`), in UTC.
    pub expire_at: Timestamp,
}

/// How airlock reaches the appliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// `ghe-license` over SSH.
    Ssh,
    /// The Manage GHES API over HTTPS.
    ManageApi,
}

/// What the state directory keeps of the outgoing licence before a new one
/// is applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Backup {
    /// The active licence file itself, byte for byte (SSH).
    File(Vec<u8>),
    /// Only the active licence's details, as the appliance's JSON (Manage
    /// API: no endpoint returns the file).
    Details(String),
}

/// Seats in use and where the figure came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SeatsUsed {
    /// Seats consumed on the appliance.
    pub seats: u64,
    /// The source, named for `license status` (e.g.
    /// `GET /api/v3/enterprise/settings/license`).
    pub source: String,
}

/// One appliance, reached one way. Every call has a deadline; none holds a
/// lock of airlock's (the caller releases the state lock first).
pub trait Appliance {
    /// Which way this is.
    fn path(&self) -> Path;
    /// A one-line description for messages and the ledger (`ssh
    /// admin@ghes.example -p 122`, `https://ghes.example:8443`).
    fn describe(&self) -> String;
    /// The candidate's details read by the appliance without importing it
    /// (`ghe-license info --pipe -j`); `None` when this way cannot (the
    /// Manage API has no such endpoint).
    fn dry_run(&mut self, licence: &[u8]) -> Result<Option<LicenceInfo>>;
    /// The active licence's details.
    fn active(&mut self) -> Result<LicenceInfo>;
    /// What can be kept of the active licence before it is replaced.
    fn backup(&mut self) -> Result<Backup>;
    /// Import and apply `licence`. A config-apply in progress is
    /// `APPLIANCE-BUSY` (retry later), never a refusal of the file.
    fn apply(&mut self, licence: &[u8]) -> Result<()>;
    /// The appliance's own check of the active licence (`valid`).
    fn check(&mut self) -> Result<bool>;
    /// The SHA-256 of the active licence file, when this way can read it.
    fn active_sha256(&mut self) -> Result<Option<HexDigest>>;
    /// Seats in use, when a source for them is configured.
    fn seats_used(&mut self) -> Result<Option<SeatsUsed>>;
}

/// The default deadline of one call to the appliance.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);
