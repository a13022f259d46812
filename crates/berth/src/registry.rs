//! `berth registry serve|gc`: berth's built-in OCI registry.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "berth registry",
    about = "Run berth's OCI distribution registry"
)]
struct RegistryCli {
    #[command(subcommand)]
    command: RegistryCommand,
}

#[derive(Subcommand, Debug)]
enum RegistryCommand {
    /// Serve the distribution API
    Serve {
        /// address to listen on
        #[arg(long, default_value = "127.0.0.1:5000")]
        addr: String,
        /// directory that holds the registry's content
        #[arg(long, default_value = "/var/lib/berth-registry")]
        root: PathBuf,
        /// require basic authentication against this htpasswd file (bcrypt)
        #[arg(long)]
        htpasswd: Option<PathBuf>,
        /// serve HTTPS with this PEM certificate (chain)
        #[arg(long, requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// the certificate's PEM private key
        #[arg(long, requires = "tls_cert")]
        tls_key: Option<PathBuf>,
    },
    /// Delete blobs no manifest references (run with the registry stopped)
    Gc {
        #[arg(long, default_value = "/var/lib/berth-registry")]
        root: PathBuf,
        /// only report what would be deleted
        #[arg(long)]
        dry_run: bool,
        /// also delete manifests that no tag reaches
        #[arg(long)]
        delete_untagged: bool,
    },
}

pub fn main(args: &[OsString]) -> ExitCode {
    let cli = match RegistryCli::try_parse_from(
        std::iter::once("berth registry".into()).chain(args.iter().cloned()),
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_max_level(tracing::Level::INFO)
        .init();
    let res = match cli.command {
        RegistryCommand::Serve {
            addr,
            root,
            htpasswd,
            tls_cert,
            tls_key,
        } => serve(&addr, root, htpasswd, tls_cert.zip(tls_key)),
        RegistryCommand::Gc {
            root,
            dry_run,
            delete_untagged,
        } => gc(root, dry_run, delete_untagged),
    };
    match res {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("berth registry: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn serve(
    addr: &str,
    root: PathBuf,
    htpasswd: Option<PathBuf>,
    tls: Option<(PathBuf, PathBuf)>,
) -> anyhow::Result<()> {
    let reg = berth_registry::ServeOptions { root, htpasswd }.open()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the runtime")?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        tracing::info!("registry listening on {}", listener.local_addr()?);
        let served = async {
            match &tls {
                Some((cert, key)) => berth_registry::serve_tls(listener, reg, cert, key).await,
                None => berth_registry::serve(listener, reg).await,
            }
        };
        tokio::select! {
            r = served => r,
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

fn gc(root: PathBuf, dry_run: bool, delete_untagged: bool) -> anyhow::Result<()> {
    let st = berth_registry::Storage::open(&root)?;
    let report = berth_registry::gc::collect(
        &st,
        &berth_registry::gc::GcOptions {
            dry_run,
            delete_untagged,
        },
    )?;
    for d in &report.deleted {
        println!("blob eligible for deletion: {d}");
    }
    println!(
        "{} blobs marked, {} blobs{} deleted, {} manifests{} deleted",
        report.marked,
        report.deleted.len(),
        if dry_run { " to be" } else { "" },
        report.manifests_deleted,
        if dry_run { " to be" } else { "" },
    );
    Ok(())
}
