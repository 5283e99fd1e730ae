//! Accord: a secure node through which countries share migration statistics.
//!
//! Layers, bottom to top (a module uses only lower ones; `tests/it/tidy.rs` checks it):
//!
//! - [`hex`], [`date`], [`excerpt`], [`proto`]: utilities (excerpt: the short quote of input an
//!   error may carry) and the generated wire types; [`http`]: serving an HTTP router with
//!   deadlines and caps (the dashboard and metrics listeners).
//! - [`model`]: countries, cubes, periods, cells, consortium policy: the shared vocabulary.
//! - [`record`]: parse and validate input microdata (CSV / JSON Lines).
//! - [`aggregate`]: cube cells from records, and disclosure control.
//! - [`dataset`]: dataset payloads, entry headers, DSSE envelopes, signing, verification, feeds.
//! - [`store`]: the only module that touches sled: records (pseudonymised), live aggregates,
//!   feeds, peer state.
//! - [`tls`] (the only module that builds rustls configurations), [`certs`] (example PKI).
//! - [`config`]: node and consortium configuration from TOML.
//! - [`exchange`] (gRPC services and sync over mutual TLS, through the [`exchange::Feeds`]
//!   trait), [`reconcile`] (the common view, a pure function of the accepted datasets),
//!   [`export`], [`ingest`] (file ingest with progress), [`synth`] (synthetic records).
//! - [`node`]: the operations over one member's store.
//! - Shells: [`admin`] (the local admin socket, server and client), [`report`] (the text of
//!   command results), [`daemon`], [`cluster`], [`demo`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod aggregate;
pub mod attest;
pub mod certify;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod dashboard;
pub mod dataset;
pub mod date;
pub mod demo;
pub mod excerpt;
pub mod exchange;
pub mod export;
pub mod governance;
pub mod hex;
pub mod http;
pub mod ingest;
pub mod model;
pub mod node;
pub mod reconcile;
pub mod record;
pub mod report;
pub mod store;
pub mod synth;
pub mod tls;

/// Generated protobuf and gRPC types for package `accord.v1`.
pub mod proto {
    tonic::include_proto!("accord.v1");
}
