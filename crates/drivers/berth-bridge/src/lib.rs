//! The bridge network driver (`bridge.rs`, the network driver port of
//! berth-core) and the default IPAM (`ipam.rs`, the IPAM port): address
//! management for subnets, the links
//! (a Linux bridge per network, a veth pair per endpoint, a network
//! namespace per container) and berth's nftables table (masquerade,
//! published ports, isolation, and the user's own chain).
//!
//! Everything here is synchronous: netlink calls run on a small runtime of
//! their own, and namespace switches happen on threads made for them, so a
//! caller's thread never changes namespace.

pub mod bridge;
pub mod dns;
pub mod ipam;
pub mod links;
pub mod nft;

pub use bridge::{BridgeDriver, DEFAULT_BRIDGE_IF};
pub use ipam::DefaultIpam;
pub use ipam::{Subnet, Subnet6, SubnetError};
