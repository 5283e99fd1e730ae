//! Accord's integration tests, in one test binary: one module per subject, each the same tests
//! under the same names as when every file was a binary of its own (`cargo test --test it
//! faults::`, `cargo test --test it attacks::governance::`), and one [`support`] module for what
//! they share. One binary links the crate once instead of once per file.
//!
//! Every test runs in this one process, beside the others: no test changes the working directory
//! or the environment, the file limit is only ever raised (`support::raise_file_limit`), and what
//! needs a process of its own (a lowered file limit, a full disk, a killed daemon) is a child
//! process. Nodes run in process listen for SIGHUP (a process-wide handler); no test sends one to
//! this process. What nodes log goes to one subscriber that keeps each test's lines apart
//! (`support::logs`).

mod support;

mod admin;
mod attacks;
mod attest_interop;
mod attestations;
mod cli;
mod cli_ingest;
mod cli_node;
mod cluster;
mod dashboard;
mod disclosure;
mod faults;
mod fidelity;
mod fuzz_regressions;
mod governance;
mod governance_agreements;
mod governance_bounds;
mod governance_cluster;
mod governance_members;
mod hostile;
mod interop;
mod operations;
mod quiet;
mod sdmx;
mod tidy;
mod unreported;
