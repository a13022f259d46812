//! The swarm's node-to-node protocol: tonic services generated from
//! `proto/swarm.proto` (compiled with protox at build time), served and
//! dialled over berth's own rustls configurations (berth-swarm-ca), so
//! that every handler knows the caller's node identity from its verified
//! certificate (`Peer`).

mod mtls;
#[cfg(test)]
mod tests;

pub use mtls::{
    Peer, ServerTls, bootstrap_channel, channel, incoming, incoming_with, peer, require_role,
    stream_channel,
};

/// The largest message a swarm peer takes: tonic's default of 4 MiB is
/// less than a Raft batch holding a few 1000 KB configs (a stack deploy
/// writes them back to back), and a message over the limit would stall
/// replication for good.
pub const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub mod pb {
    tonic::include_proto!("berth.swarm.v1");
}
