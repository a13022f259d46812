//! The Docker Engine REST API over unix sockets. Routes are thin: they
//! parse the request, call a berth-engine service and encode the answer.

mod error;
mod params;
mod routes;
mod server;
mod wire;

pub use server::{serve, serve_metrics};
