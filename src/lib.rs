//! Accord: a secure node through which countries share migration statistics.
//!
//! Tiers in data-flow order (a module uses only lower tiers, and within a tier only the layers
//! below its own; `tests/it/tidy.rs` checks it):
//!
//! - [`proto`]: the generated wire types.
//! - `domain`: the pure tier, no I/O: model, records, aggregates and disclosure control,
//!   datasets and signatures, attestations, the consortium and its versions, the common view.
//! - `io`: record files, the sled store, TLS, configuration files, the gRPC exchange, ingest,
//!   certified bundles.
//! - `node`: the operations over one member's store.
//! - `shell`: the admin socket, the text of results, the dashboard, the daemon.
//! - `tools`: the example PKI, synthetic records, local clusters, the demo.
//!
//! The tiers are private; the modules below are the library's surface, for the binary, the
//! integration tests and the benches.
#![forbid(unsafe_code)]

mod domain;
mod io;
pub mod node;
mod shell;
mod tools;

pub use domain::{aggregate, attest, consortium, dataset, date, excerpt, export, hex, model, reconcile, record};
pub use io::{certify, config, exchange, http, ingest, reader, store, tls};
pub use shell::{admin, daemon, dashboard, report, sdmx};
pub use tools::{certs, cluster, demo, synth};

/// Generated protobuf and gRPC types for package `accord.v1`.
pub mod proto {
    tonic::include_proto!("accord.v1");
}
