//! The appliance through the Manage GHES API (GHES 3.12+, port 8443, TLS,
//! basic auth).
