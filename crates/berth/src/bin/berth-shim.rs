//! The per-container shim after its container exists: waits for it, writes
//! its log and serves the daemon. `berth shim` creates the container and
//! replaces itself with this binary; it links none of the daemon or of
//! libcontainer, so each running container costs little memory.

use std::process::ExitCode;

fn main() -> ExitCode {
    // one malloc arena for all threads: each output, accept and request
    // thread would otherwise get its own (glibc makes up to 8 per core),
    // a few dozen KiB of dirty heap apiece in every idle shim; the shim's
    // threads rarely allocate at once, so they contend for nothing much.
    // Before any thread starts, as glibc wants.
    // SAFETY: mallopt only sets an allocator parameter
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    // warnings go to the stderr the creating shim had: a file the daemon
    // keeps beside the container's state
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();
    ExitCode::from(berth_shim::steady_main() as u8)
}
