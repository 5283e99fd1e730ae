//! Accord: a secure node through which countries share migration statistics.
//!
//! Data flows through the modules in this order:
//!
//! - [`record`]: parse and validate input microdata (CSV / JSON Lines).
//! - [`store`]: the only module that touches sled: records (pseudonymised), live aggregates,
//!   feeds, peer state.
//! - [`aggregate`]: cube cells from records, and disclosure control.
//! - [`dataset`]: dataset payloads, entry headers, DSSE envelopes, signing, verification, feeds.
//! - [`exchange`]: gRPC services and sync over mutual TLS (the only module that sees the
//!   generated wire types, beside `dataset`'s codec).
//! - [`reconcile`]: the common view, a pure function of the accepted datasets.
//!
//! Around them: [`config`] and [`policy`] (node and consortium configuration), [`tls`] (the only
//! module that builds rustls configurations), [`certs`] (example PKI), [`synth`] (synthetic
//! records), [`ingest`] (file ingest with progress), [`node`] (the daemon), [`admin`] (the local
//! admin socket) and [`demo`].
#![forbid(unsafe_code)]

pub mod admin;
pub mod aggregate;
pub mod certs;
pub mod cluster;
pub mod config;
pub mod dataset;
pub mod date;
pub mod demo;
pub mod exchange;
pub mod export;
pub mod hex;
pub mod ingest;
pub mod node;
pub mod policy;
pub mod reconcile;
pub mod record;
pub mod store;
pub mod synth;
pub mod tls;

/// Generated protobuf and gRPC types for package `accord.v1`.
pub mod proto {
    tonic::include_proto!("accord.v1");
}
