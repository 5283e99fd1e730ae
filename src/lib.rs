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
//! The tiers are private. The modules below are the library's surface, for the binary, the
//! integration tests, the benches and the fuzz targets: each names the items those use, so an
//! item is public by a line here and everything else stays inside its tier.
#![forbid(unsafe_code)]

mod domain;
mod io;
pub mod node;
mod shell;
mod tools;

// ------------------------------------------------------------------ domain: pure

/// The statistical model: countries, cubes, periods, cells.
pub mod model {
    pub use crate::domain::model::{Cell, CellValue, Country, Cube, Period, AGE_BANDS};
}

/// One migration record and its validation.
pub mod record {
    pub use crate::domain::record::{EventType, Reason, Record, Sex};
    pub mod validate {
        pub use crate::domain::record::validate::ValidationContext;
    }
}

/// Aggregation and disclosure control.
pub mod aggregate {
    pub use crate::domain::aggregate::margins;
    pub mod disclosure {
        pub use crate::domain::aggregate::disclosure::protect;
    }
}

/// Datasets, signed entries and their verification.
pub mod dataset {
    pub use crate::domain::dataset::{
        verify, AcceptedDataset, Dataset, EntryHeader, Governance, Head, Limits, Placement, Subject,
    };
    pub mod envelope {
        pub use crate::domain::dataset::envelope::{pae, sha256, sign, PAYLOAD_TYPE};
    }
    pub mod publish {
        pub use crate::domain::dataset::publish::{sign_entry, sign_governance, EntryParams};
    }
}

/// Attestations of the common view.
pub mod attest {
    pub use crate::domain::attest::{check, open, sign, verifier_key, verify, Attestation, Fork};
}

/// The consortium: members, keys, rules and its canonical document.
pub mod consortium {
    pub use crate::domain::consortium::{
        canonical_toml, digest, Accuracy, Consortium, Definition, Disclosure, EstimateMethod, Estimates, Measurement,
        Member, Reconcile, Register, Rule, SharingDefault, SigningKey, Undercount,
    };
}

/// The common view, its renderings, estimates and fidelity against truth.
pub mod reconcile {
    pub use crate::domain::reconcile::{
        compute, estimate_fidelity, pair_total_mape, read_truth, render, under, ConsortiumRef, Format, PairKey,
        Reported, View, ViewFilter,
    };
    pub mod estimate {
        pub use crate::domain::reconcile::estimate::prior;
    }
    pub mod fidelity {
        pub use crate::domain::reconcile::fidelity::Truth;
    }
}

/// Calendar dates and RFC 3339 instants.
pub mod date {
    pub use crate::domain::date::{
        format_instant_millis, format_timestamp, parse_instant_millis, parse_timestamp, unix_now, Date,
    };
}

/// Lower-case hex.
pub mod hex {
    pub use crate::domain::hex::{decode, encode};
}

/// Checking an exported view file against its signatures.
pub mod export {
    pub use crate::domain::export::verify_file;
}

// ------------------------------------------------------------------ io

/// Record files.
pub mod reader {
    pub use crate::io::reader::{CsvRecordWriter, RecordReader, Row};
}

/// The sled store.
pub mod store {
    pub use crate::io::store::{
        migrate, restore, verify_backup, BackupTrust, IngestOutcome, Store, CACHE_BYTES, FORMAT_VERSION,
    };
}

/// Mutual TLS.
pub mod tls {
    pub use crate::io::tls::{
        channel, client_config, incoming, member_of, server_config, TlsFiles, MAX_CONNECTIONS_PER_MEMBER,
    };
}

/// `node.toml`.
pub mod config {
    pub use crate::io::config::{NodeConfig, Peer};
}

/// The gRPC exchange between nodes.
pub mod exchange {
    pub use crate::io::exchange::{Feeds, RejectReason, Rejection, Syncer, MAX_MESSAGE_BYTES, MAX_REQUEST_BYTES};
    pub mod server {
        pub use crate::io::exchange::server::MAX_FETCH_STREAMS_PER_MEMBER;
    }
    pub mod sync {
        pub use crate::io::exchange::sync::{client, pull, PeerSync, MAX_REJECTIONS_KEPT};
    }
}

/// Ingesting record files.
pub mod ingest {
    pub use crate::io::ingest::{ingest_file, IngestError, Progress, BATCH_SIZE};
}

/// Certified view bundles.
pub mod certify {
    pub use crate::io::certify::verify;
}

// ------------------------------------------------------------------ shell

/// The admin socket's client.
pub mod admin {
    pub use crate::shell::admin::{connect, from_message, to_message, view_args, Remote, VIEW_CHUNK_BYTES};
}

/// The daemon.
pub mod daemon {
    pub use crate::shell::daemon::{bind, run};
}

/// The dashboard's pure parts.
pub mod dashboard {
    pub use crate::shell::dashboard::{
        filter_query, loopback_host, parse_filters, CHART_JS, CHART_JS_SHA256, CHART_JS_VERSION, ROWS_PER_PAGE,
    };
}

/// The text of every command's result.
pub mod report {
    // Every line the CLI prints, and nothing else: the whole module is surface.
    pub use crate::shell::report::*;
}

/// SDMX REST requests.
pub mod sdmx {
    pub mod data {
        pub use crate::shell::sdmx::data::KeyFilter;
    }
    pub mod query {
        pub use crate::shell::sdmx::query::{parse, Query};
    }
}

// ------------------------------------------------------------------ tools

/// The example PKI.
pub mod certs {
    pub use crate::tools::certs::{generate, generate_foreign_ca, revoke, CertsOptions};
}

/// Local clusters of nodes.
pub mod cluster {
    pub use crate::tools::cluster::{full_mesh, line, ClusterOptions, LocalCluster};
}

/// The demo.
pub mod demo {
    pub use crate::tools::demo::{reference_members, run, DemoOptions};
}

/// Synthetic records.
pub mod synth {
    pub use crate::tools::synth::{synthesize, Registers, SynthOptions, SynthSummary};
}

/// Generated protobuf and gRPC types for package `accord.v1`.
pub mod proto {
    tonic::include_proto!("accord.v1");
}
