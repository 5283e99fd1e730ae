//! Node-to-node exchange (SPEC §5): the `accord.v1.Exchange` gRPC service a node serves to its
//! peers ([`server`]) and the anti-entropy client that pulls from them ([`sync`]). Generated
//! protobuf types stay here and in `dataset`'s codec; everything else sees domain types.
//!
//! Trust: the caller's member code comes from its TLS certificate (`tls::peer_member`), never
//! from a message; every entry received is verified against its publisher's keys by
//! `Node::accept` before anything is stored. Every bound is an error naming the bound.

pub mod server;
pub mod sync;

use crate::node::NodeError;

/// Most entries one Fetch may return; clients ask in chunks of this size.
pub const MAX_FETCH_ENTRIES: u64 = 256;
/// Largest gRPC message either side accepts (a dataset payload is bounded below this).
pub const MAX_MESSAGE_BYTES: usize = 40 * 1024 * 1024;
/// Largest request a peer may send: Heads, Fetch and Announce requests are small by nature
/// (an Announce of every feed in a large consortium is a few kilobytes).
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;
/// Concurrent HTTP/2 streams per peer connection.
pub const MAX_STREAMS_PER_PEER: u32 = 16;

/// The one place node errors become gRPC statuses for a peer.
pub fn to_status(error: NodeError) -> tonic::Status {
    match error {
        NodeError::Request(m) => tonic::Status::invalid_argument(m),
        NodeError::Verify(e) => tonic::Status::invalid_argument(e.to_string()),
        NodeError::Store(e) => {
            tracing::error!(error = %e, "store error while serving a peer");
            tonic::Status::internal("store error")
        }
        NodeError::SigningKey { .. } => tonic::Status::internal("signing key error"),
    }
}
