//! Tools for trying Accord out and testing it: [`certs`] (an example PKI), [`synth`] (synthetic
//! records with their truth), [`cluster`] (several daemons on this host), [`demo`] (the local
//! multi-node demo).

pub mod certs;
pub mod cluster;
pub mod demo;
pub mod synth;
