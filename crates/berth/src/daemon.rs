//! `berth daemon`: flags and daemon.json, the data-root lock, the API
//! sockets, signals.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Parser;

const DEFAULT_CONFIG: &str = "/etc/berth/daemon.json";
/// Docker's certs.d layout, under berth's name
const CERTS_DIR: &str = "/etc/berth/certs.d";

#[derive(Parser, Debug, Clone)]
#[command(
    name = "berth daemon",
    about = "Run the berth engine (a Docker-compatible daemon)"
)]
struct DaemonCli {
    /// root of persistent state
    #[arg(long)]
    data_root: Option<PathBuf>,
    /// root of runtime state (sockets, bundles)
    #[arg(long)]
    exec_root: Option<PathBuf>,
    /// socket(s) to listen on, e.g. unix:///run/berth/berth.sock
    #[arg(short = 'H', long = "host")]
    hosts: Vec<String>,
    /// daemon configuration file (Docker's daemon.json keys)
    #[arg(long)]
    config_file: Option<PathBuf>,
    /// debug, info, warn, error or fatal
    #[arg(short = 'l', long)]
    log_level: Option<String>,
    /// where to write the daemon's pid
    #[arg(short = 'p', long)]
    pidfile: Option<PathBuf>,
    /// enable debug mode
    #[arg(short = 'D', long)]
    debug: bool,
    /// group that owns the unix sockets
    #[arg(short = 'G', long)]
    group: Option<String>,
    /// check the configuration and exit
    #[arg(long)]
    validate: bool,
    /// keep containers running when the daemon stops
    #[arg(long)]
    live_restore: bool,
    /// run an init inside containers by default (--init)
    #[arg(long)]
    init: bool,
    /// path to the init binary for --init (default: docker-init or tini-static on PATH)
    #[arg(long)]
    init_path: Option<PathBuf>,
    /// the default bridge's address and subnet (CIDR)
    #[arg(long)]
    bip: Option<String>,
    /// where the default bridge's containers get addresses (CIDR)
    #[arg(long)]
    fixed_cidr: Option<String>,
    /// default address pools for new networks (base=CIDR,size=N)
    #[arg(long = "default-address-pool")]
    default_address_pool: Vec<String>,
    /// registries (host[:port] or CIDR) spoken to in plain HTTP
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// CA and client certificates per registry (<dir>/<host[:port]>/*.crt)
    #[arg(long, default_value = CERTS_DIR)]
    certs_dir: PathBuf,
    /// a mirror of Docker Hub, tried before it (http:// or https:// URL)
    #[arg(long = "registry-mirror")]
    registry_mirror: Vec<String>,
    /// serve Prometheus metrics at http://ADDR/metrics (host:port)
    #[arg(long)]
    metrics_addr: Option<String>,
    /// layers downloaded at once per pull
    #[arg(long)]
    max_concurrent_downloads: Option<usize>,
    /// layers uploaded at once per push
    #[arg(long)]
    max_concurrent_uploads: Option<usize>,
    /// a key=value label of the daemon (shown by `info`)
    #[arg(long = "label")]
    labels: Vec<String>,
    /// the default logging driver of containers
    #[arg(long)]
    log_driver: Option<String>,
    /// a key=value option of the default logging driver
    #[arg(long = "log-opt")]
    log_opts: Vec<String>,
    /// enable experimental features
    #[arg(long)]
    experimental: bool,
}

/// One of daemon.json's `default-address-pools`.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct AddressPool {
    base: String,
    size: u8,
}

/// The keys of daemon.json berth understands (Docker's names).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(rename = "data-root")]
    data_root: Option<PathBuf>,
    #[serde(rename = "exec-root")]
    exec_root: Option<PathBuf>,
    hosts: Option<Vec<String>>,
    #[serde(rename = "log-level")]
    log_level: Option<String>,
    pidfile: Option<PathBuf>,
    debug: Option<bool>,
    group: Option<String>,
    #[serde(rename = "live-restore")]
    live_restore: Option<bool>,
    init: Option<bool>,
    #[serde(rename = "init-path")]
    init_path: Option<PathBuf>,
    bip: Option<String>,
    #[serde(rename = "fixed-cidr")]
    fixed_cidr: Option<String>,
    #[serde(rename = "default-address-pools")]
    default_address_pools: Option<Vec<AddressPool>>,
    #[serde(rename = "insecure-registries")]
    insecure_registries: Option<Vec<String>>,
    #[serde(rename = "registry-mirrors")]
    registry_mirrors: Option<Vec<String>>,
    #[serde(rename = "max-concurrent-downloads")]
    max_concurrent_downloads: Option<usize>,
    #[serde(rename = "max-concurrent-uploads")]
    max_concurrent_uploads: Option<usize>,
    #[serde(rename = "metrics-addr")]
    metrics_addr: Option<String>,
    labels: Option<Vec<String>>,
    #[serde(rename = "log-driver")]
    log_driver: Option<String>,
    #[serde(rename = "log-opts")]
    log_opts: Option<BTreeMap<String, String>>,
    experimental: Option<bool>,
}

#[derive(Debug)]
struct Settings {
    data_root: PathBuf,
    exec_root: PathBuf,
    hosts: Vec<String>,
    log_level: String,
    pidfile: PathBuf,
    debug: bool,
    group: Option<String>,
    live_restore: bool,
    init: bool,
    init_path: Option<PathBuf>,
    bip: Option<String>,
    fixed_cidr: Option<String>,
    address_pools: Vec<(String, u8)>,
    insecure_registries: Vec<String>,
    registry_mirrors: Vec<String>,
    max_concurrent_downloads: usize,
    max_concurrent_uploads: usize,
    certs_dir: PathBuf,
    metrics_addr: Option<String>,
    labels: Vec<String>,
    log_driver: String,
    log_opts: BTreeMap<String, String>,
    experimental: bool,
}

fn load_settings(cli: DaemonCli) -> Result<Settings> {
    let explicit = cli.config_file.is_some();
    let path = cli
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let mut file: FileConfig = match fs::read(&path) {
        // an empty file is an empty configuration
        Ok(raw) if raw.iter().all(|b| b.is_ascii_whitespace()) => FileConfig::default(),
        Ok(raw) => serde_json::from_slice(&raw).map_err(|e| {
            let msg = e.to_string();
            if msg.starts_with("unknown field") {
                anyhow::anyhow!("invalid configuration in {}: the following directives don't match any configuration option: {msg}", path.display())
            } else {
                anyhow::anyhow!("invalid configuration in {}: {msg}", path.display())
            }
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => FileConfig::default(),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    let mut conflicts = BTreeMap::new();
    let mut pick = |name: &str, flag: bool, in_file: bool| {
        if flag && in_file {
            conflicts.insert(name.to_string(), ());
        }
    };
    pick(
        "data-root",
        cli.data_root.is_some(),
        file.data_root.is_some(),
    );
    pick(
        "exec-root",
        cli.exec_root.is_some(),
        file.exec_root.is_some(),
    );
    pick("hosts", !cli.hosts.is_empty(), file.hosts.is_some());
    pick("labels", !cli.labels.is_empty(), file.labels.is_some());
    pick(
        "log-driver",
        cli.log_driver.is_some(),
        file.log_driver.is_some(),
    );
    pick(
        "log-opts",
        !cli.log_opts.is_empty(),
        file.log_opts.is_some(),
    );
    pick(
        "experimental",
        cli.experimental,
        file.experimental.is_some(),
    );
    pick(
        "log-level",
        cli.log_level.is_some(),
        file.log_level.is_some(),
    );
    pick("pidfile", cli.pidfile.is_some(), file.pidfile.is_some());
    pick("group", cli.group.is_some(), file.group.is_some());
    pick(
        "live-restore",
        cli.live_restore,
        file.live_restore.is_some(),
    );
    pick("init", cli.init, file.init.is_some());
    pick(
        "init-path",
        cli.init_path.is_some(),
        file.init_path.is_some(),
    );
    pick("bip", cli.bip.is_some(), file.bip.is_some());
    pick(
        "fixed-cidr",
        cli.fixed_cidr.is_some(),
        file.fixed_cidr.is_some(),
    );
    pick(
        "insecure-registries",
        !cli.insecure_registry.is_empty(),
        file.insecure_registries.is_some(),
    );
    pick(
        "metrics-addr",
        cli.metrics_addr.is_some(),
        file.metrics_addr.is_some(),
    );
    pick(
        "registry-mirrors",
        !cli.registry_mirror.is_empty(),
        file.registry_mirrors.is_some(),
    );
    pick(
        "max-concurrent-downloads",
        cli.max_concurrent_downloads.is_some(),
        file.max_concurrent_downloads.is_some(),
    );
    pick(
        "max-concurrent-uploads",
        cli.max_concurrent_uploads.is_some(),
        file.max_concurrent_uploads.is_some(),
    );
    if !conflicts.is_empty() {
        let names: Vec<String> = conflicts.into_keys().collect();
        bail!(
            "the following directives are specified both as a flag and in the configuration file: {}",
            names.join(", ")
        );
    }
    if !cli.default_address_pool.is_empty() && file.default_address_pools.is_some() {
        bail!(
            "the following directives are specified both as a flag and in the configuration file: default-address-pools"
        );
    }
    let mut address_pools: Vec<(String, u8)> = file
        .default_address_pools
        .take()
        .unwrap_or_default()
        .into_iter()
        .map(|p| (p.base, p.size))
        .collect();
    for spec in &cli.default_address_pool {
        let mut base = None;
        let mut size = None;
        for kv in spec.split(',') {
            match kv.split_once('=') {
                Some(("base", v)) => base = Some(v.to_string()),
                Some(("size", v)) => size = v.parse::<u8>().ok(),
                _ => bail!("invalid default address pool: {spec} (want base=CIDR,size=N)"),
            }
        }
        match (base, size) {
            (Some(b), Some(s)) => address_pools.push((b, s)),
            _ => bail!("invalid default address pool: {spec} (want base=CIDR,size=N)"),
        }
    }
    let exec_root = cli
        .exec_root
        .or(file.exec_root)
        .unwrap_or_else(|| PathBuf::from("/run/berth"));
    let hosts = if !cli.hosts.is_empty() {
        cli.hosts
    } else {
        file.hosts
            .unwrap_or_else(|| vec![format!("unix://{}", exec_root.join("berth.sock").display())])
    };
    let debug = cli.debug || file.debug.unwrap_or(false);
    let log_level = cli
        .log_level
        .or(file.log_level)
        .unwrap_or_else(|| if debug { "debug".into() } else { "info".into() });
    if !matches!(
        log_level.as_str(),
        "debug" | "info" | "warn" | "error" | "fatal" | "trace"
    ) {
        bail!("unable to parse logging level: {log_level}");
    }
    let log_driver = cli
        .log_driver
        .or(file.log_driver)
        .unwrap_or_else(|| "json-file".into());
    let log_opts: BTreeMap<String, String> = if cli.log_opts.is_empty() {
        file.log_opts.unwrap_or_default()
    } else {
        let mut m = BTreeMap::new();
        for kv in &cli.log_opts {
            let Some((k, v)) = kv.split_once('=') else {
                bail!("invalid key/value pair format in logging opts: {kv}");
            };
            m.insert(k.to_string(), v.to_string());
        }
        m
    };
    berth_logdriver::validate(&log_driver, &log_opts)
        .map_err(|e| anyhow::anyhow!("failed to set log opts: {e:#}"))?;
    Ok(Settings {
        log_driver,
        log_opts,
        experimental: cli.experimental || file.experimental.unwrap_or(false),
        data_root: cli
            .data_root
            .or(file.data_root)
            .unwrap_or_else(|| PathBuf::from("/var/lib/berth")),
        pidfile: cli
            .pidfile
            .or(file.pidfile)
            .unwrap_or_else(|| exec_root.join("berth.pid")),
        exec_root,
        hosts,
        log_level,
        debug,
        group: cli.group.or(file.group),
        live_restore: cli.live_restore || file.live_restore.unwrap_or(false),
        init: cli.init || file.init.unwrap_or(false),
        init_path: cli.init_path.or(file.init_path),
        bip: cli.bip.or(file.bip),
        fixed_cidr: cli.fixed_cidr.or(file.fixed_cidr),
        address_pools,
        insecure_registries: if cli.insecure_registry.is_empty() {
            file.insecure_registries.unwrap_or_default()
        } else {
            cli.insecure_registry
        },
        certs_dir: cli.certs_dir,
        metrics_addr: cli.metrics_addr.or(file.metrics_addr),
        labels: if cli.labels.is_empty() {
            file.labels.unwrap_or_default()
        } else {
            cli.labels
        },
        registry_mirrors: if cli.registry_mirror.is_empty() {
            file.registry_mirrors.unwrap_or_default()
        } else {
            cli.registry_mirror
        },
        max_concurrent_downloads: cli
            .max_concurrent_downloads
            .or(file.max_concurrent_downloads)
            .unwrap_or(3),
        max_concurrent_uploads: cli
            .max_concurrent_uploads
            .or(file.max_concurrent_uploads)
            .unwrap_or(5),
    })
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

fn reloadable_of(s: &Settings) -> berth_engine::Reloadable {
    berth_engine::Reloadable {
        debug: s.debug,
        log_level: s.log_level.clone(),
        labels: s.labels.clone(),
        live_restore: s.live_restore,
        insecure_registries: s.insecure_registries.clone(),
        registry_mirrors: s.registry_mirrors.clone(),
        max_concurrent_downloads: s.max_concurrent_downloads,
        max_concurrent_uploads: s.max_concurrent_uploads,
        log_driver: s.log_driver.clone(),
        log_opts: s.log_opts.clone(),
    }
}

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
                engine.reload(reloadable_of(&s));
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
    let engine = berth_engine::Engine::open(berth_engine::EngineConfig {
        data_root: s.data_root.clone(),
        exec_root: s.exec_root.clone(),
        shim_binary,
        debug: s.debug,
        live_restore: s.live_restore,
        init: s.init,
        init_path: s.init_path.clone(),
        bip: s.bip.clone(),
        fixed_cidr: s.fixed_cidr.clone(),
        address_pools: s.address_pools.clone(),
        insecure_registries: s.insecure_registries.clone(),
        registry_mirrors: s.registry_mirrors.clone(),
        certs_dir: s.certs_dir.clone(),
        max_concurrent_downloads: s.max_concurrent_downloads,
        max_concurrent_uploads: s.max_concurrent_uploads,
        log_level: s.log_level.clone(),
        labels: s.labels.clone(),
        log_driver: s.log_driver.clone(),
        log_opts: s.log_opts.clone(),
        experimental: s.experimental,
    })
    .await?;
    tokio::spawn(reload_on_sighup(cli, log_filter, engine.clone()));
    if let Some(addr) = &s.metrics_addr {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening for metrics on {addr}"))?;
        tracing::info!(%addr, "metrics at /metrics");
        tokio::spawn(berth_api::serve_metrics(engine.clone(), l));
    }
    tracing::info!(hosts = ?s.hosts, data_root = %s.data_root.display(), "API listening");

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
    berth_api::serve(engine.clone(), listeners, shutdown).await;
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
