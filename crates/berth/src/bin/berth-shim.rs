//! The per-container shim after its container exists: waits for it, writes
//! its log and serves the daemon. `berth shim` creates the container and
//! replaces itself with this binary; it links none of the daemon or of
//! libcontainer, so each running container costs little memory.

use std::process::ExitCode;

fn main() -> ExitCode {
    // warnings go to the stderr the creating shim had: a file the daemon
    // keeps beside the container's state
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();
    ExitCode::from(berth_shim::steady_main() as u8)
}
