//! The per-container shim (the role of containerd-shim or conmon) and the
//! protocol the daemon speaks to it.
//!
//! A shim creates its container with libcontainer (in the big `berth`
//! binary), then replaces itself with the small `berth-shim` binary, which
//! holds the container's stdio, runs its logging driver (berth-logdriver),
//! reaps the container and records its exit status in `exit.json`. It outlives the daemon, so a daemon killed
//! with SIGKILL loses neither log lines nor exit codes.

mod create;
pub mod join;
pub use berth_logdriver::jsonlog;
pub mod protocol;
mod seccomp;
mod server;
mod tty;

pub use create::{exec_helper, lifecycle_helper, run};
pub use server::{ExecHelperSpec, ShimArgs, read_exit, steady_main};
