//! The stand-in appliance and the sample data that the demo, the fixtures
//! and the tests share (decision 92). Not part of the API: hidden from the
//! docs, and labelled as stand-ins wherever they answer. The stand-in for
//! GitHub's REST API and the appliance's SSH face are the binary's own
//! (`src/cli/standin_cloud.rs`, `src/cli/standin_ssh.rs`).

pub mod appliance;
pub mod sample;
