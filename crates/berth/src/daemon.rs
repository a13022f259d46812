//! `berth daemon`: flags and daemon.json, the data-root lock, the API
//! sockets, signals. Each setting is declared once, in berth-config's
//! table; the flags below are derived from it.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use berth_config::Settings;
use clap::Parser;

/// Derives `berth daemon`'s clap flags from berth-config's table: one per
/// entry, its doc line the help, and their conversion to berth-config's
/// `Flags`.
macro_rules! daemon_cli {
    ($(
        $(#[$meta:meta])*
        $f:ident: $ty:ty {
            flag: ($($arg:tt)*) $fty:ty $(=> $parse:path)?,
            $($rest:tt)*
        }
    )*) => {
        #[derive(Parser, Debug, Clone)]
        #[command(
            name = "berth daemon",
            about = "Run the berth engine (a Docker-compatible daemon)"
        )]
        struct DaemonCli {
            $($(#[$meta])* #[arg($($arg)*)] $f: $fty,)*
        }

        impl From<DaemonCli> for berth_config::Flags {
            fn from(cli: DaemonCli) -> Self {
                Self { $($f: cli.$f),* }
            }
        }
    };
}

berth_config::with_settings!(daemon_cli);

/// The flags over daemon.json, checked as at start: berth-config's checks,
/// then the default log driver and its options.
fn load_settings(cli: DaemonCli) -> Result<Settings> {
    let s = berth_config::load(cli.into())?;
    berth_logdriver::validate(&s.log_driver, &s.log_opts)
        .map_err(|e| anyhow::anyhow!("failed to set log opts: {e:#}"))?;
    Ok(s)
}

pub fn main(args: &[OsString]) -> ExitCode {
    let cli = match DaemonCli::try_parse_from(
        std::iter::once(OsString::from("berth daemon")).chain(args.iter().cloned()),
    ) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 125 } else { 0 });
        }
    };
    let validate = cli.validate;
    let settings = match load_settings(cli.clone()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("berth daemon: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if validate {
        println!("configuration OK");
        return ExitCode::SUCCESS;
    }
    use tracing_subscriber::prelude::*;
    let (filter, log_filter) =
        tracing_subscriber::reload::Layer::new(log_filter_for(&settings.log_level));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                // colours only on a terminal: log files stay plain text
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth daemon: starting runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(settings, cli, log_filter)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("berth daemon: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn log_filter_for(level: &str) -> tracing_subscriber::EnvFilter {
    let level = match level {
        "fatal" => "error",
        l => l,
    };
    tracing_subscriber::EnvFilter::new(format!("{level},libcontainer=warn,libcgroups=warn"))
}

type LogFilter =
    tracing_subscriber::reload::Handle<tracing_subscriber::EnvFilter, tracing_subscriber::Registry>;

/// SIGHUP: reads the flags and daemon.json again, as at start (a file
/// that no longer validates changes nothing), and applies the reloadable
/// keys: log level and debug, labels, live-restore, registries and
/// mirrors, concurrent downloads and uploads. Others need a restart.
async fn reload_on_sighup(
    cli: DaemonCli,
    log_filter: LogFilter,
    engine: std::sync::Arc<berth_engine::Engine>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match load_settings(cli.clone()) {
            Ok(s) => {
                if let Err(e) = log_filter.reload(log_filter_for(&s.log_level)) {
                    tracing::error!(error = %e, "changing the log level");
                }
                engine.reload(s.reloadable());
                tracing::info!(log_level = %s.log_level, debug = s.debug, "reloaded the configuration");
            }
            Err(e) => tracing::error!("reloading the configuration: {e:#}; nothing changed"),
        }
    }
}

/// Holds the exclusive lock on the data root for the daemon's lifetime.
struct DataRootLock(#[allow(dead_code)] File);

fn lock_data_root(root: &Path) -> Result<DataRootLock> {
    fs::create_dir_all(root).with_context(|| format!("creating {}", root.display()))?;
    let path = root.join("berth.lock");
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)?;
    // SAFETY: flock on a descriptor we own
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let holder = fs::read_to_string(&path).unwrap_or_default();
        bail!(
            "another berth daemon (pid {}) is already using data root {}",
            holder.trim(),
            root.display()
        );
    }
    f.set_len(0)?;
    write!(f, "{}", std::process::id())?;
    Ok(DataRootLock(f))
}

fn group_id(name: &str) -> Option<u32> {
    nix::unistd::Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}

fn bind_unix(path: &Path, group: Option<&str>) -> Result<tokio::net::UnixListener> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            bail!("{} is in use by another process", path.display());
        }
        fs::remove_file(path)?;
    }
    let l = tokio::net::UnixListener::bind(path)
        .with_context(|| format!("listening on {}", path.display()))?;
    // Docker's rule: root and the socket group may connect, nobody else
    fs::set_permissions(path, fs::Permissions::from_mode(0o660))?;
    let gid = match group {
        Some(g) => Some(group_id(g).with_context(|| format!("group {g} does not exist"))?),
        None => group_id("docker"),
    };
    if let Some(gid) = gid {
        let _ = std::os::unix::fs::chown(path, None, Some(gid));
    }
    Ok(l)
}

/// The CRI socket berth picks when none is set (berth-config's default).
fn default_cri_socket(s: &Settings) -> String {
    format!("unix://{}", s.exec_root.join("cri.sock").display())
}

/// Starts the Kubernetes CRI endpoint unless the settings turn it off;
/// notifying the answer stops it.
fn serve_cri(
    s: &Settings,
    engine: &Arc<berth_engine::Engine>,
) -> Result<Option<Arc<tokio::sync::Notify>>> {
    let Some(path) = berth_cri::socket_path(&s.cri_socket)? else {
        return Ok(None);
    };
    let listener = match bind_unix(&path, s.group.as_deref()) {
        Ok(l) => l,
        // a socket nobody asked for does not keep the Docker API from
        // starting; one that was asked for does
        Err(e) if s.cri_socket == default_cri_socket(s) => {
            tracing::warn!(error = %format!("{e:#}"), "not serving the CRI (set --cri-socket, or none)");
            return Ok(None);
        }
        Err(e) => return Err(e.context("the CRI socket")),
    };
    let stream_addr: std::net::SocketAddr = s.cri_stream_address.parse().map_err(|e| {
        anyhow::anyhow!(
            "invalid --cri-stream-address {:?} (want ip:port): {e}",
            s.cri_stream_address
        )
    })?;
    let stop = Arc::new(tokio::sync::Notify::new());
    let stopped = stop.clone();
    let engine = engine.clone();
    tracing::info!(socket = %path.display(), "CRI listening");
    tokio::spawn(async move {
        let shutdown = async move { stopped.notified().await };
        if let Err(e) = berth_cri::serve(engine, listener, stream_addr, shutdown).await {
            tracing::error!(error = %format!("{e:#}"), "the CRI endpoint stopped");
        }
    });
    Ok(Some(stop))
}

async fn run(s: Settings, cli: DaemonCli, log_filter: LogFilter) -> Result<()> {
    let _lock = lock_data_root(&s.data_root)?;
    fs::create_dir_all(&s.exec_root)?;
    if let Some(dir) = s.pidfile.parent() {
        fs::create_dir_all(dir)?;
    }
    fs::write(&s.pidfile, format!("{}\n", std::process::id()))
        .with_context(|| format!("writing {}", s.pidfile.display()))?;

    let mut listeners = Vec::new();
    let mut sockets = Vec::new();
    for h in &s.hosts {
        if let Some(p) = h.strip_prefix("unix://") {
            let path = PathBuf::from(p);
            listeners.push(bind_unix(&path, s.group.as_deref())?);
            sockets.push(path);
        } else if h.starts_with("tcp://") {
            bail!(
                "refusing to listen on {h}: TCP needs TLS, which berth does not offer yet; use a unix socket"
            );
        } else {
            bail!("unsupported host {h}: use unix:///path/to/socket");
        }
    }
    let shim_binary = std::env::current_exe().context("locating the berth binary")?;
    let (drivers, overlay) = crate::wiring::builtin_drivers(&s, shim_binary.clone())?;
    let engine = berth_engine::Engine::open(
        berth_engine::EngineConfig {
            shim_binary,
            settings: s.clone(),
        },
        drivers,
    )
    .await?;
    tokio::spawn(reload_on_sighup(cli, log_filter, engine.clone()));
    if let Some(addr) = &s.metrics_addr {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        tracing::info!(%addr, "metrics at /metrics");
        tokio::spawn(berth_api::serve_metrics(engine.clone(), l));
    }
    let cri_stop = serve_cri(&s, &engine)?;
    tracing::info!(hosts = ?s.hosts, data_root = %s.data_root.display(), "API listening");
    // an idle daemon keeps only the pages it uses while idle (PERFORMANCE.md)
    if let Err(e) = berth_resident::trim_when_idle() {
        tracing::warn!(error = %e, "not trimming resident memory");
    }

    let shutdown = async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        let mut int = match signal(SignalKind::interrupt()) {
            Ok(t) => t,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    };
    let net = Arc::new(crate::swarm_netplane::NetPlane::new(
        engine.clone(),
        overlay,
    ));
    let swarm = Arc::new(open_swarm(&s, &engine, net.clone()).await?);
    let (gives_back, rt) = ((*swarm).clone(), tokio::runtime::Handle::current());
    let plane = Arc::downgrade(&net);
    net.set_detacher(Box::new(move |container, tasks| {
        let (swarm, plane) = (gives_back.clone(), plane.clone());
        rt.spawn(async move {
            if let Err(e) = swarm.detach_attachments(&container, tasks.clone()).await {
                tracing::warn!(error = %e, "giving back a stopped container's network attachments");
                if let Some(p) = plane.upgrade() {
                    p.give_back_failed(&tasks);
                }
            }
        });
    }));
    engine.set_swarm_attacher(Some(Arc::new(crate::swarm_attacher::Attacher {
        swarm: (*swarm).clone(),
        net,
    })));
    crate::swarm_events::forward(&swarm, engine.clone());
    berth_api::serve(engine.clone(), swarm.clone(), listeners, shutdown).await;
    if let Some(stop) = cri_stop {
        stop.notify_one();
    }
    swarm.shutdown().await;
    // live-restore as it is now: SIGHUP may have changed it
    if engine.settings().live_restore {
        tracing::info!("shutting down; live-restore keeps containers running");
    } else {
        tracing::info!(
            "shutting down; stopping containers (set live-restore to keep them running)"
        );
        engine.stop_all_containers().await;
    }
    for p in sockets {
        let _ = fs::remove_file(p);
    }
    let _ = fs::remove_file(&s.pidfile);
    Ok(())
}

/// This node's swarm membership, resumed from `<data-root>/swarm`.
async fn open_swarm(
    s: &Settings,
    engine: &std::sync::Arc<berth_engine::Engine>,
    net: Arc<crate::swarm_netplane::NetPlane>,
) -> Result<berth_swarm_manager::Swarm> {
    let info = engine.info();
    let settings = berth_swarm_manager::SwarmSettings {
        dir: s.data_root.join("swarm"),
        description: berth_swarm_manager::NodeDescription {
            hostname: info.hostname,
            engine_version: info.server_version,
            os: "linux".into(),
            architecture: info.architecture,
            nano_cpus: info.cpus * 1_000_000_000,
            memory_bytes: info.mem_total,
        },
        executor: berth_swarm_manager::executor::Executor(Some(std::sync::Arc::new(
            crate::swarm_executor::EngineExecutor {
                engine: engine.clone(),
                net,
            },
        ))),
        ..Default::default()
    };
    berth_swarm_manager::Swarm::open(settings)
        .await
        .map_err(|e| anyhow::anyhow!("resuming the swarm: {e}"))
}
