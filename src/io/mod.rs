//! The I/O tier: everything that touches a file, a socket or the store, over the pure tier.
//! Bottom to top:
//!
//! - [`reader`]: streaming CSV and JSON Lines record readers that name file, line and field on
//!   error; [`http`]: serving an HTTP router with deadlines and caps.
//! - [`store`]: the only module that touches sled: records (pseudonymised), live aggregates,
//!   feeds, peer state.
//! - [`tls`]: the only module that builds rustls configurations.
//! - [`config`]: node and consortium configuration from TOML files.
//! - [`exchange`] (gRPC services and sync over mutual TLS, through the [`exchange::Feeds`]
//!   trait), [`ingest`] (file ingest into the store, with progress).
//! - [`certify`]: a certified view written to and checked from a bundle directory.

pub mod certify;
pub mod config;
pub mod exchange;
pub mod http;
pub mod ingest;
pub mod reader;
pub mod store;
pub mod tls;
