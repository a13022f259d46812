//! berth: one binary. `berth daemon` runs the engine, `berth shim` (hidden)
//! creates a container and hands it to the small `berth-shim` binary, and
//! everything else is the docker-style CLI.

mod daemon;
mod registry;
mod swarm_attacher;
mod swarm_events;
mod swarm_executor;
mod swarm_netplane;
mod wiring;

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    match args.get(1).and_then(|a| a.to_str()) {
        Some("daemon") | Some("dockerd") => daemon::main(&args[2..]),
        Some("shim") => shim_main(&args[2..]),
        Some("registry") => registry::main(&args[2..]),
        Some(action @ ("shim-start" | "shim-delete")) => match (args.get(2), args.get(3)) {
            (Some(root), Some(id)) => ExitCode::from(berth_shim::lifecycle_helper(
                action.trim_start_matches("shim-"),
                std::path::Path::new(root),
                &id.to_string_lossy(),
            ) as u8),
            _ => ExitCode::from(2),
        },
        Some(berth_runtime::MKCWD_ACTION) => match (args.get(2), args.get(3)) {
            (Some(root), Some(cwd)) => ExitCode::from(berth_runtime::make_cwd_helper(
                std::path::Path::new(root),
                &cwd.to_string_lossy(),
            ) as u8),
            _ => ExitCode::from(2),
        },
        Some("shim-exec") => match args.get(2).and_then(|a| a.to_str()) {
            Some(spec) => ExitCode::from(berth_shim::exec_helper(spec) as u8),
            None => ExitCode::from(2),
        },
        _ => {
            // `berth ps | head`: a closed stdout ends the CLI quietly, as
            // it ends the docker CLI (Rust ignores SIGPIPE and would panic
            // in print!)
            // SAFETY: setting a signal disposition before any thread starts
            unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
            ExitCode::from(berth_cli::main(args) as u8)
        }
    }
}

#[derive(clap::Parser)]
#[command(
    name = "berth shim",
    about = "per-container shim (started by the daemon)"
)]
struct ShimCli {
    #[arg(long)]
    id: String,
    #[arg(long)]
    bundle: std::path::PathBuf,
    #[arg(long)]
    state_dir: std::path::PathBuf,
    #[arg(long)]
    socket: std::path::PathBuf,
    /// the logging driver, its options and the container's details (JSON)
    #[arg(long)]
    log_config: String,
    #[arg(long)]
    stdin: bool,
}

fn shim_main(args: &[std::ffi::OsString]) -> ExitCode {
    use clap::Parser;
    let cli = match ShimCli::try_parse_from(
        std::iter::once("berth-shim".into()).chain(args.iter().cloned()),
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(2);
        }
    };
    // the shim's stderr is a file the daemon reads when creation fails
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .init();
    let log = match serde_json::from_str(&cli.log_config) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("shim: bad --log-config: {e}");
            return ExitCode::from(2);
        }
    };
    let args = berth_shim::ShimArgs {
        id: cli.id,
        bundle: cli.bundle,
        state_dir: cli.state_dir,
        socket: cli.socket,
        log,
        stdin: cli.stdin,
    };
    match berth_shim::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shim: {e:#}");
            ExitCode::FAILURE
        }
    }
}
