//! The shim runtime driver: implements berth-core's `Runtime` port over
//! berth's per-container shim (`berth shim`, then `berth-shim`), which is
//! given the OCI spec the container service built (berth-oci). The shim's
//! wire protocol stays inside this crate; the engine sees only berth-core's
//! types.

mod cwd;
mod shim;
mod shim_client;

pub use cwd::{HOOK_ACTION as MKCWD_ACTION, make_cwd_helper};
pub use shim::ShimRuntime;

// the port's stream format is the shim's: frames pass through untouched
const _: () = {
    use berth_core::runtime as port;
    use berth_shim::protocol as wire;
    assert!(port::STREAM_STDIN == wire::STREAM_STDIN);
    assert!(port::STREAM_STDOUT == wire::STREAM_STDOUT);
    assert!(port::STREAM_STDERR == wire::STREAM_STDERR);
    assert!(port::STREAM_EXIT == wire::STREAM_EXIT);
};
