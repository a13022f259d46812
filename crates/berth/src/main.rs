//! berth: one binary. `berth daemon` runs the engine, `berth shim` (hidden)
//! creates a container and hands it to the small `berth-shim` binary, and
//! everything else is the docker-style CLI.

mod daemon;
mod registry;

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
        Some("shim-exec") => match args.get(2).and_then(|a| a.to_str()) {
            Some(spec) => ExitCode::from(berth_shim::exec_helper(spec) as u8),
            None => ExitCode::from(2),
        },
        _ => ExitCode::from(berth_cli::main(args) as u8),
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
    #[arg(long)]
    log: Option<std::path::PathBuf>,
    #[arg(long, default_value_t = 0)]
    log_max_size: u64,
    #[arg(long, default_value_t = 1)]
    log_max_files: u32,
    #[arg(long)]
    stdin: bool,
    #[arg(long)]
    log_compress: bool,
    /// KEY=VALUE attribute stored with each log record
    #[arg(long = "log-attr")]
    log_attrs: Vec<String>,
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
    let args = berth_shim::ShimArgs {
        id: cli.id,
        bundle: cli.bundle,
        state_dir: cli.state_dir,
        socket: cli.socket,
        log: cli.log,
        log_max_size: cli.log_max_size,
        log_max_files: cli.log_max_files,
        log_compress: cli.log_compress,
        log_attrs: cli
            .log_attrs
            .iter()
            .filter_map(|a| a.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
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
