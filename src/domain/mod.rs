//! The pure tier: Accord's vocabulary and every computation over it, with no I/O (no files,
//! sockets, tokio or sled; `tests/it/tidy.rs` checks it). Bottom to top:
//!
//! - [`hex`], [`date`], [`excerpt`]: text forms (the excerpt is the short quote of input an error
//!   may carry).
//! - [`model`]: countries, cubes, periods, cells: the shared vocabulary.
//! - [`config`]: what configuration files share (their error, member codes, disclosure floors).
//! - [`consortium`]: the consortium's policy, its canonical document and digest, and the version
//!   in force (the document as versioned state).
//! - [`record`]: one migration event and the rules that make it valid.
//! - [`aggregate`]: cube cells from records, totals, disclosure control and its audit.
//! - [`dataset`], [`attest`]: dataset payloads, entry headers, DSSE envelopes, signing,
//!   verification, feeds; signed notes over the view (attestations).
//! - [`reconcile`] (the common view, a pure function of the accepted datasets), [`export`] (the
//!   export file's format).

pub mod aggregate;
pub mod attest;
pub mod config;
pub mod consortium;
pub mod dataset;
pub mod date;
pub mod excerpt;
pub mod export;
pub mod hex;
pub mod model;
pub mod reconcile;
pub mod record;
