//! The shells over the node: thin adapters from a wire or a screen to the node's operations.
//! Bottom to top: [`admin`] (the local admin socket, server and client) and [`report`] (the text
//! of command results); [`sdmx`] (SDMX REST for statistical tools) and [`dashboard`] (the web
//! dashboard, whose listener serves both); [`daemon`] (the composition root that runs the node,
//! its servers and its syncer).

pub mod admin;
pub mod daemon;
pub mod dashboard;
pub mod report;
pub mod sdmx;
