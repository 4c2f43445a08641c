//! The connected side: import and the hand-over to the outbox or an
//! endpoint, the drop-folder watcher, the Cloud client, the fleet view and
//! its report.

pub mod cloud;
pub mod confirm;
pub mod fleet;
pub mod handover;
pub mod import;
pub mod report;
pub mod watch;
