use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use bollard::container::LogOutput;
use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptions, CreateContainerOptions, KillContainerOptions, ListContainersOptions,
    RemoveContainerOptions, StopContainerOptions, WaitContainerOptions,
};
use futures_util::{Stream, StreamExt};
use tokio::io::AsyncWriteExt;

use crate::output::{ago, ellipsis, flush_table, go_quote, print_format, short_id, table};
use crate::{Ctx, daemon_error, is_not_found, rawhttp, status};

/// Flags shared by `create` and `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct CreateFlags {
    /// Assign a name to the container
    #[arg(long)]
    name: Option<String>,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long = "env-file")]
    env_file: Vec<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    hostname: Option<String>,
    /// Set meta data on a container
    #[arg(short = 'l', long = "label")]
    label: Vec<String>,
    /// Connect a container to a network
    #[arg(long = "network", alias = "net")]
    network: Option<String>,
    /// Publish a container's port(s) to the host
    #[arg(short = 'p', long = "publish")]
    publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long = "publish-all")]
    publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    expose: Vec<String>,
    /// IPv4 address (e.g., 172.30.100.104)
    #[arg(long)]
    ip: Option<String>,
    /// IPv6 address (e.g., 2001:db8::33)
    #[arg(long)]
    ip6: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long = "network-alias")]
    network_alias: Vec<String>,
    /// Set custom DNS servers
    #[arg(long)]
    dns: Vec<String>,
    /// Set custom DNS search domains
    #[arg(long = "dns-search")]
    dns_search: Vec<String>,
    /// Set DNS options
    #[arg(long = "dns-option", alias = "dns-opt")]
    dns_option: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long = "add-host")]
    add_host: Vec<String>,
    /// Container MAC address (e.g., 92:d0:c6:0a:29:33)
    #[arg(long = "mac-address")]
    mac_address: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long = "stop-timeout")]
    stop_timeout: Option<i64>,
    /// Restart policy to apply when a container exits (no, always, unless-stopped, on-failure[:max-retries])
    #[arg(long, default_value = "no")]
    restart: String,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only")]
    read_only: bool,
    /// Security Options (no-new-privileges, seccomp=unconfined)
    #[arg(long = "security-opt")]
    security_opt: Vec<String>,
    /// Mount a tmpfs directory (PATH[:OPTIONS])
    #[arg(long)]
    tmpfs: Vec<String>,
    /// Bind mount a volume (SRC:DST[:OPTS], or DST for an anonymous volume)
    #[arg(short = 'v', long = "volume")]
    volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=bind|volume|tmpfs,...)
    #[arg(long)]
    mount: Vec<String>,
    /// Mount volumes from the specified container(s)
    #[arg(long = "volumes-from")]
    volumes_from: Vec<String>,
    /// Optional volume driver for the container
    #[arg(long = "volume-driver")]
    volume_driver: Option<String>,
    /// Command to run to check health
    #[arg(long = "health-cmd")]
    health_cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval")]
    health_interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout")]
    health_timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries")]
    health_retries: Option<i64>,
    /// Start period for the container to initialize before counting retries (ms|s|m|h)
    #[arg(long = "health-start-period")]
    health_start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval")]
    health_start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck")]
    no_healthcheck: bool,
    /// Run an init inside the container that forwards signals and reaps processes
    #[arg(long)]
    init: bool,
    /// Ulimit options (name=soft[:hard])
    #[arg(long)]
    ulimit: Vec<String>,
    /// Sysctl options (name=value)
    #[arg(long)]
    sysctl: Vec<String>,
    /// Size of /dev/shm (e.g. 128m)
    #[arg(long = "shm-size")]
    shm_size: Option<String>,
    /// Add additional groups to join
    #[arg(long = "group-add")]
    group_add: Vec<String>,
    /// Write the container ID to the file
    #[arg(long)]
    cidfile: Option<String>,
    /// Add a host device to the container (HOST[:CONTAINER[:PERMS]])
    #[arg(long)]
    device: Vec<String>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Swap limit equal to memory plus swap: -1 to enable unlimited swap
    #[arg(long = "memory-swap")]
    memory_swap: Option<String>,
    /// Memory limit (e.g. 512m)
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// Logging driver for the container (json-file, none)
    #[arg(long = "log-driver")]
    log_driver: Option<String>,
    /// Log driver options (e.g. max-size=10m)
    #[arg(long = "log-opt")]
    log_opt: Vec<String>,
    /// Print usage
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
}

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    flags: CreateFlags,
    /// Run container in background and print container ID
    #[arg(short = 'd', long)]
    detach: bool,
    /// Automatically remove the container and its associated anonymous volumes when it exits
    #[arg(long)]
    rm: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    /// IMAGE [COMMAND] [ARG...]: one list, so that everything after the
    /// image (`-c` included) belongs to the command, as in the docker CLI
    #[arg(
        value_name = "IMAGE",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    image_and_command: Vec<String>,
}

#[derive(clap::Args, Debug)]
#[command(disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    flags: CreateFlags,
    /// Automatically remove the container when it exits
    #[arg(long)]
    rm: bool,
    /// IMAGE [COMMAND] [ARG...], as for run
    #[arg(
        value_name = "IMAGE",
        trailing_var_arg = true,
        allow_hyphen_values = true,
        required = true
    )]
    image_and_command: Vec<String>,
}

/// The image and the command of `run`/`create`'s one positional list.
fn split_image_command(v: &[String]) -> (&str, &[String]) {
    match v.split_first() {
        Some((image, command)) => (image.as_str(), command),
        None => ("", &[]),
    }
}

fn read_env_files(files: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for f in files {
        let text =
            std::fs::read_to_string(f).map_err(|e| status(125, format!("berth: open {f}: {e}")))?;
        for line in text.lines() {
            let l = line.trim_start();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if l.contains('=') {
                out.push(l.to_string());
            } else if let Ok(v) = std::env::var(l) {
                out.push(format!("{l}={v}"));
            }
        }
    }
    Ok(out)
}

/// `--restart name[:max-retries]`, checked as the docker CLI does.
pub(crate) fn restart_policy(spec: &str, rm: bool) -> Result<bollard::models::RestartPolicy> {
    use bollard::models::RestartPolicyNameEnum as P;
    let (name, max) = match spec.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (spec, None),
    };
    let name = match name {
        "" | "no" => P::NO,
        "always" => P::ALWAYS,
        "unless-stopped" => P::UNLESS_STOPPED,
        "on-failure" => P::ON_FAILURE,
        other => {
            return Err(status(
                125,
                format!(
                    "berth: invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
                ),
            ));
        }
    };
    let max = match max {
        Some(m) => Some(m.parse::<i64>().map_err(|_| {
            status(125, format!("berth: invalid restart policy format: maximum retry count must be an integer: {m}"))
        })?),
        None => None,
    };
    if rm && name != P::NO {
        return Err(status(
            125,
            "berth: Conflicting options: --restart and --rm",
        ));
    }
    Ok(bollard::models::RestartPolicy {
        name: Some(name),
        maximum_retry_count: max,
    })
}

/// `--ulimit name=soft[:hard]`.
fn parse_ulimit(u: &str) -> Result<bollard::models::ResourcesUlimits> {
    let bad = || {
        status(
            125,
            format!(
                "berth: invalid argument \"{u}\" for \"--ulimit\" flag: invalid ulimit argument: {u}"
            ),
        )
    };
    let (name, vals) = u.split_once('=').ok_or_else(bad)?;
    let (soft, hard) = match vals.split_once(':') {
        Some((s, h)) => (s, h),
        None => (vals, vals),
    };
    let soft: i64 = soft.parse().map_err(|_| bad())?;
    let hard: i64 = hard.parse().map_err(|_| bad())?;
    Ok(bollard::models::ResourcesUlimits {
        name: Some(name.to_string()),
        soft: Some(soft),
        hard: Some(hard),
    })
}

/// The health check flags, as the docker CLI turns them into HealthConfig.
fn healthcheck(f: &CreateFlags) -> Result<Option<bollard::models::HealthConfig>> {
    let dur = |v: &Option<String>, flag: &str| -> Result<Option<i64>> {
        match v {
            None => Ok(None),
            Some(s) => berth_units::parse_go_duration(s).map(Some).ok_or_else(|| {
                status(
                    125,
                    format!("berth: invalid argument \"{s}\" for \"--{flag}\" flag: time: invalid duration \"{s}\""),
                )
            }),
        }
    };
    let any = f.health_cmd.is_some()
        || f.health_interval.is_some()
        || f.health_timeout.is_some()
        || f.health_retries.is_some()
        || f.health_start_period.is_some()
        || f.health_start_interval.is_some();
    if f.no_healthcheck {
        if any {
            return Err(status(
                125,
                "berth: --no-healthcheck conflicts with --health-* options",
            ));
        }
        return Ok(Some(bollard::models::HealthConfig {
            test: Some(vec!["NONE".into()]),
            ..Default::default()
        }));
    }
    if !any {
        return Ok(None);
    }
    Ok(Some(bollard::models::HealthConfig {
        test: f
            .health_cmd
            .as_ref()
            .map(|c| vec!["CMD-SHELL".to_string(), c.clone()]),
        interval: dur(&f.health_interval, "health-interval")?,
        timeout: dur(&f.health_timeout, "health-timeout")?,
        retries: f.health_retries,
        start_period: dur(&f.health_start_period, "health-start-period")?,
        start_interval: dur(&f.health_start_interval, "health-start-interval")?,
    }))
}

/// `--mount type=…,source=…,target=…` as the docker CLI reads it.
fn parse_mount_flag(spec: &str) -> Result<bollard::models::Mount> {
    use bollard::models::{
        Mount, MountBindOptions, MountTmpfsOptions, MountType, MountVolumeOptions,
    };
    let bad = |m: String| {
        status(
            125,
            format!("berth: invalid argument \"{spec}\" for \"--mount\" flag: {m}"),
        )
    };
    let mut m = Mount {
        typ: Some(MountType::VOLUME),
        ..Default::default()
    };
    let bool_of = |v: Option<&str>, key: &str| -> Result<bool> {
        match v {
            None | Some("1" | "true") => Ok(true),
            Some("0" | "false") => Ok(false),
            Some(x) => Err(bad(format!("invalid value for {key}: {x}"))),
        }
    };
    for field in spec.split(',').filter(|f| !f.is_empty()) {
        let (k, v) = match field.split_once('=') {
            Some((k, v)) => (k.trim().to_ascii_lowercase(), Some(v)),
            None => (field.trim().to_ascii_lowercase(), None),
        };
        match (k.as_str(), v) {
            ("type", Some(t)) => {
                m.typ = Some(
                    t.parse::<MountType>()
                        .map_err(|_| bad(format!("invalid value for type: {t}")))?,
                )
            }
            ("source" | "src", Some(s)) => m.source = Some(s.to_string()),
            ("target" | "destination" | "dst", Some(t)) => m.target = Some(t.to_string()),
            ("readonly" | "ro", v) => m.read_only = Some(bool_of(v, &k)?),
            ("consistency", Some(c)) => m.consistency = Some(c.to_string()),
            ("bind-propagation", Some(p)) => {
                m.bind_options
                    .get_or_insert_with(MountBindOptions::default)
                    .propagation = Some(
                    p.parse()
                        .map_err(|_| bad(format!("invalid value for bind-propagation: {p}")))?,
                )
            }
            ("volume-nocopy", v) => {
                m.volume_options
                    .get_or_insert_with(MountVolumeOptions::default)
                    .no_copy = Some(bool_of(v, &k)?)
            }
            ("tmpfs-size", Some(s)) => {
                let size = berth_units::parse_ram(s)
                    .map_err(|e| bad(format!("invalid value for tmpfs-size: {e}")))?;
                m.tmpfs_options
                    .get_or_insert_with(MountTmpfsOptions::default)
                    .size_bytes = Some(size)
            }
            ("tmpfs-mode", Some(s)) => {
                let mode = i64::from_str_radix(s, 8)
                    .map_err(|_| bad(format!("invalid value for tmpfs-mode: {s}")))?;
                m.tmpfs_options
                    .get_or_insert_with(MountTmpfsOptions::default)
                    .mode = Some(mode)
            }
            (other, _) => return Err(bad(format!("unexpected key '{other}' in '{field}'"))),
        }
    }
    if m.target.is_none() {
        return Err(bad("target is required".into()));
    }
    Ok(m)
}

/// `seccomp=FILE` travels as the file's content, as the docker CLI sends it.
fn security_opts(opts: &[String]) -> Result<Option<Vec<String>>> {
    if opts.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(opts.len());
    for o in opts {
        match o.split_once(['=', ':']) {
            Some(("seccomp", file)) if !matches!(file, "unconfined" | "builtin") => {
                let raw = std::fs::read_to_string(file).map_err(|e| {
                    status(
                        125,
                        format!("berth: opening seccomp profile ({file}) failed: {e}"),
                    )
                })?;
                out.push(format!("seccomp={raw}"));
            }
            _ => out.push(o.clone()),
        }
    }
    Ok(Some(out))
}

fn build_body(
    f: &CreateFlags,
    image: &str,
    command: &[String],
    attach: bool,
    rm: bool,
) -> Result<ContainerCreateBody> {
    let mut env = read_env_files(&f.env_file)?;
    for e in &f.env {
        // "-e NAME" passes the client's value through, as docker does
        if e.contains('=') {
            env.push(e.clone());
        } else if let Ok(v) = std::env::var(e) {
            env.push(format!("{e}={v}"));
        }
    }
    let mut labels = HashMap::new();
    for l in &f.label {
        let (k, v) = l.split_once('=').unwrap_or((l, ""));
        labels.insert(k.to_string(), v.to_string());
    }
    let (port_bindings, mut exposed) = crate::ports::parse_publish(&f.publish).map_err(|e| {
        status(
            125,
            format!("berth: invalid argument for \"-p, --publish\" flag: {e}"),
        )
    })?;
    for e in &f.expose {
        for p in crate::ports::parse_expose(e).map_err(|e| {
            status(
                125,
                format!("berth: invalid argument for \"--expose\" flag: {e}"),
            )
        })? {
            if !exposed.contains(&p) {
                exposed.push(p);
            }
        }
    }
    let network = f.network.clone().unwrap_or_else(|| "default".into());
    let networking_config = (f.ip.is_some()
        || f.ip6.is_some()
        || !f.network_alias.is_empty()
        || f.mac_address.is_some())
    .then(|| bollard::models::NetworkingConfig {
        endpoints_config: Some(HashMap::from([(
            network.clone(),
            bollard::models::EndpointSettings {
                ipam_config: (f.ip.is_some() || f.ip6.is_some()).then(|| {
                    bollard::models::EndpointIpamConfig {
                        ipv4_address: f.ip.clone(),
                        ipv6_address: f.ip6.clone(),
                        ..Default::default()
                    }
                }),
                aliases: (!f.network_alias.is_empty()).then(|| f.network_alias.clone()),
                mac_address: f.mac_address.clone(),
                ..Default::default()
            },
        )])),
    });
    Ok(ContainerCreateBody {
        exposed_ports: (!exposed.is_empty()).then_some(exposed),
        networking_config,
        image: Some(image.to_string()),
        cmd: (!command.is_empty()).then(|| command.to_vec()),
        entrypoint: f.entrypoint.as_ref().map(|e| {
            if e.is_empty() {
                vec![]
            } else {
                vec![e.clone()]
            }
        }),
        env: Some(env),
        working_dir: f.workdir.clone(),
        healthcheck: healthcheck(f)?,
        volumes: Some(
            f.volume
                .iter()
                .filter(|v| !v.contains(':'))
                .cloned()
                .collect(),
        ),
        user: f.user.clone(),
        hostname: f.hostname.clone(),
        labels: Some(labels),
        tty: Some(f.tty),
        open_stdin: Some(f.interactive),
        stdin_once: Some(f.interactive && attach),
        attach_stdin: Some(f.interactive && attach),
        attach_stdout: Some(attach),
        attach_stderr: Some(attach),
        stop_signal: f.stop_signal.clone(),
        stop_timeout: f.stop_timeout,
        host_config: Some(host_config(f, rm, network, port_bindings)?),
        ..Default::default()
    })
}

/// The host part of `run`/`create`'s flags.
fn host_config(
    f: &CreateFlags,
    rm: bool,
    network: String,
    port_bindings: bollard::models::PortMap,
) -> Result<HostConfig> {
    Ok(HostConfig {
        console_size: f
            .tty
            .then(crate::terminal::size)
            .flatten()
            .map(|(h, w)| vec![h as usize, w as usize]),
        auto_remove: Some(rm),
        restart_policy: Some(restart_policy(&f.restart, rm)?),
        cap_add: (!f.cap_add.is_empty()).then(|| f.cap_add.clone()),
        cap_drop: (!f.cap_drop.is_empty()).then(|| f.cap_drop.clone()),
        privileged: Some(f.privileged),
        readonly_rootfs: Some(f.read_only),
        security_opt: security_opts(&f.security_opt)?,
        binds: Some(
            f.volume
                .iter()
                .filter(|v| v.contains(':'))
                .cloned()
                .collect(),
        ),
        mounts: Some(
            f.mount
                .iter()
                .map(|m| parse_mount_flag(m))
                .collect::<Result<Vec<_>>>()?,
        ),
        volumes_from: (!f.volumes_from.is_empty()).then(|| f.volumes_from.clone()),
        volume_driver: f.volume_driver.clone(),
        init: f.init.then_some(true),
        ulimits: (!f.ulimit.is_empty())
            .then(|| {
                f.ulimit
                    .iter()
                    .map(|u| parse_ulimit(u))
                    .collect::<Result<Vec<_>>>()
            })
            .transpose()?,
        sysctls: sysctls(&f.sysctl)?,
        shm_size: ram_flag(f.shm_size.as_deref(), "--shm-size")?,
        group_add: (!f.group_add.is_empty()).then(|| f.group_add.clone()),
        devices: devices(&f.device),
        cpuset_cpus: f.cpuset_cpus.clone(),
        memory_swap: match f.memory_swap.as_deref() {
            None => None,
            Some("-1") => Some(-1),
            Some(s) => Some(berth_units::parse_ram(s).map_err(|e| {
                status(
                    125,
                    format!("berth: invalid argument \"{s}\" for \"--memory-swap\" flag: {e}"),
                )
            })?),
        },
        tmpfs: (!f.tmpfs.is_empty()).then(|| {
            f.tmpfs
                .iter()
                .map(|t| match t.split_once(':') {
                    Some((p, o)) => (p.to_string(), o.to_string()),
                    None => (t.clone(), String::new()),
                })
                .collect()
        }),
        memory: ram_flag(f.memory.as_deref(), "-m, --memory")?,
        pids_limit: f.pids_limit,
        nano_cpus: f.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: f.cpu_shares,
        log_config: log_config(f)?,
        network_mode: Some(network),
        dns: (!f.dns.is_empty()).then(|| f.dns.clone()),
        dns_search: (!f.dns_search.is_empty()).then(|| f.dns_search.clone()),
        dns_options: (!f.dns_option.is_empty()).then(|| f.dns_option.clone()),
        extra_hosts: (!f.add_host.is_empty()).then(|| f.add_host.clone()),
        port_bindings: (!port_bindings.is_empty()).then_some(port_bindings),
        publish_all_ports: Some(f.publish_all),
        ..Default::default()
    })
}

/// `--sysctl key=value` flags.
fn sysctls(flags: &[String]) -> Result<Option<HashMap<String, String>>> {
    if flags.is_empty() {
        return Ok(None);
    }
    flags
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .ok_or_else(|| {
                    status(125, format!("berth: invalid argument \"{s}\" for \"--sysctl\" flag: sysctl '{s}' is not allowed"))
                })
        })
        .collect::<Result<HashMap<_, _>>>()
        .map(Some)
}

/// `--device host[:container[:permissions]]` flags.
fn devices(flags: &[String]) -> Option<Vec<bollard::models::DeviceMapping>> {
    (!flags.is_empty()).then(|| {
        flags
            .iter()
            .map(|d| {
                let parts: Vec<&str> = d.split(':').collect();
                bollard::models::DeviceMapping {
                    path_on_host: parts.first().map(|s| s.to_string()),
                    path_in_container: parts.get(1).map(|s| s.to_string()),
                    cgroup_permissions: Some(parts.get(2).unwrap_or(&"rwm").to_string()),
                }
            })
            .collect()
    })
}

/// `--log-driver` and `--log-opt key=value`.
fn log_config(f: &CreateFlags) -> Result<Option<bollard::models::HostConfigLogConfig>> {
    if f.log_driver.is_none() && f.log_opt.is_empty() {
        return Ok(None);
    }
    let mut config = HashMap::new();
    for o in &f.log_opt {
        let Some((k, v)) = o.split_once('=') else {
            return Err(status(
                125,
                format!(
                    "berth: invalid argument \"{o}\" for \"--log-opt\" flag: expected key=value"
                ),
            ));
        };
        config.insert(k.to_string(), v.to_string());
    }
    Ok(Some(bollard::models::HostConfigLogConfig {
        typ: f.log_driver.clone(),
        config: Some(config),
    }))
}

/// A size flag (`-m 512m`, `--shm-size 64m`) in bytes.
pub(crate) fn ram_flag(value: Option<&str>, flag: &str) -> Result<Option<i64>> {
    value
        .map(|s| {
            berth_units::parse_ram(s).map_err(|e| {
                status(
                    125,
                    format!("berth: invalid argument \"{s}\" for \"{flag}\" flag: {e}"),
                )
            })
        })
        .transpose()
}

/// Creates the container; a missing image is reported the way docker does
/// (it tries a pull first), with exit status 125.
async fn create_container(
    ctx: &Ctx,
    cmd: &str,
    f: &CreateFlags,
    body: ContainerCreateBody,
) -> Result<String> {
    if let Some(path) = &f.cidfile
        && std::path::Path::new(path).exists()
    {
        return Err(status(
            125,
            format!(
                "berth: Container ID file found, make sure the other container isn't running or delete {path}"
            ),
        ));
    }
    let id = create_container_inner(ctx, cmd, f, body).await?;
    if let Some(path) = &f.cidfile {
        std::fs::write(path, &id).map_err(|e| {
            status(
                125,
                format!("berth: failed to write the container ID to the file: {e}"),
            )
        })?;
    }
    Ok(id)
}

async fn create_container_inner(
    ctx: &Ctx,
    cmd: &str,
    f: &CreateFlags,
    body: ContainerCreateBody,
) -> Result<String> {
    let opts = CreateContainerOptions {
        name: f.name.clone(),
        ..Default::default()
    };
    match ctx
        .docker
        .create_container(Some(opts.clone()), body.clone())
        .await
    {
        Ok(r) => Ok(r.id),
        Err(e) if is_not_found(&e) && daemon_error(&e).contains("No such image") => {
            let image = body.image.clone().unwrap_or_default();
            let shown = if image.contains(':') || image.contains('@') {
                image.clone()
            } else {
                format!("{image}:latest")
            };
            eprintln!("Unable to find image '{shown}' locally");
            let pull = bollard::query_parameters::CreateImageOptions {
                from_image: Some(image),
                ..Default::default()
            };
            let mut s = ctx.docker.create_image(Some(pull), None, None);
            let mut err = None;
            while let Some(item) = s.next().await {
                if let Err(e) = item {
                    err = Some(daemon_error(&e));
                    break;
                }
            }
            match err {
                Some(m) => Err(status(
                    if cmd == "run" { 125 } else { 1 },
                    format!("berth: {m}\n\nRun 'berth {cmd} --help' for more information"),
                )),
                None => ctx
                    .docker
                    .create_container(Some(opts), body)
                    .await
                    .map(|r| r.id)
                    .map_err(|e| run_error(cmd, &e)),
            }
        }
        Err(e) => Err(run_error(cmd, &e)),
    }
}

/// `run` fails with 125 and `create` with 1, as in the docker CLI.
fn run_error(cmd: &str, e: &bollard::errors::Error) -> anyhow::Error {
    let code = if cmd == "run" { 125 } else { 1 };
    status(
        code,
        format!(
            "berth: {}\n\nRun 'berth {cmd} --help' for more information",
            daemon_error(e)
        ),
    )
}

/// The docker CLI's toStatusError: 127 when the command was not found,
/// 126 when it could not be executed, 125 otherwise.
fn start_error(cmd: &str, e: &bollard::errors::Error) -> anyhow::Error {
    let msg = daemon_error(e);
    let code =
        if msg.contains("executable file not found") || msg.contains("no such file or directory") {
            127
        } else if msg.contains("permission denied") || msg.contains("is a directory") {
            126
        } else {
            125
        };
    status(
        code,
        format!("berth: {msg}\n\nRun 'berth {cmd} --help' for more information"),
    )
}

async fn pump_output(
    mut output: impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
) {
    while let Some(item) = output.next().await {
        match item {
            Ok(LogOutput::StdErr { message }) => {
                let mut e = std::io::stderr().lock();
                let _ = e.write_all(&message);
                let _ = e.flush();
            }
            Ok(LogOutput::StdOut { message }) | Ok(LogOutput::Console { message }) => {
                let mut o = std::io::stdout().lock();
                let _ = o.write_all(&message);
                let _ = o.flush();
            }
            Ok(LogOutput::StdIn { .. }) => {}
            Err(_) => break,
        }
    }
}

/// An attached session as docker runs it: raw mode and size updates on a
/// terminal, stdin copied with the detach keys, output printed. Resolves to
/// the result of `also` (what must finish with the output, such as the wait
/// answer), or to None when the user detached.
async fn attached_session<T>(
    ctx: &Ctx,
    io: Io,
    target: ResizeTarget,
    input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    output: impl Stream<Item = Result<LogOutput, bollard::errors::Error>> + Unpin,
    also: impl std::future::Future<Output = T>,
) -> Option<T> {
    let _raw = (io.tty && io.interactive)
        .then(crate::terminal::RawMode::enable)
        .flatten();
    if io.tty {
        spawn_resizer(ctx, target);
    }
    let detached = io
        .interactive
        .then(|| spawn_stdin_copy(input, io.tty.then_some(io.detach_keys)));
    let detach = async {
        match detached {
            Some(rx) => {
                let _ = rx.await;
            }
            None => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        (_, r) = async { tokio::join!(pump_output(output), also) } => Some(r),
        _ = detach => None,
    }
}

/// Copies stdin to the container. On a terminal it watches for the detach
/// keys and reports them on the returned channel; as in Docker, a session
/// without a terminal has no detach keys.
fn spawn_stdin_copy(
    mut input: std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    detach_keys: Option<Vec<u8>>,
) -> tokio::sync::oneshot::Receiver<()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut stdin = tokio::io::stdin();
        let Some(keys) = detach_keys else {
            let _ = tokio::io::copy(&mut stdin, &mut input).await;
            let _ = input.shutdown().await;
            // not a detach: keep the sender alive so the receiver waits on
            std::future::pending::<()>().await;
            drop(tx);
            return;
        };
        if berth_term::copy_until_detach(&mut stdin, &mut input, keys).await {
            let _ = tx.send(());
            return;
        }
        let _ = input.shutdown().await;
        std::future::pending::<()>().await;
    });
    rx
}

/// What a terminal's size changes are sent to.
pub(crate) enum ResizeTarget {
    Container(String),
    Exec(String),
}

/// Sends the terminal's size now and on every SIGWINCH.
fn spawn_resizer(ctx: &Ctx, target: ResizeTarget) {
    let docker = ctx.docker.clone();
    tokio::spawn(async move {
        let send = |h: u16, w: u16| {
            let docker = docker.clone();
            let target = match &target {
                ResizeTarget::Container(id) => ResizeTarget::Container(id.clone()),
                ResizeTarget::Exec(id) => ResizeTarget::Exec(id.clone()),
            };
            async move {
                let _ = match target {
                    ResizeTarget::Container(id) => {
                        docker
                            .resize_container_tty(
                                &id,
                                bollard::query_parameters::ResizeContainerTTYOptions {
                                    h: h as i32,
                                    w: w as i32,
                                },
                            )
                            .await
                    }
                    ResizeTarget::Exec(id) => {
                        docker
                            .resize_exec(
                                &id,
                                bollard::exec::ResizeExecOptions {
                                    height: h,
                                    width: w,
                                },
                            )
                            .await
                    }
                };
            }
        };
        if let Some((h, w)) = crate::terminal::size() {
            send(h, w).await;
        }
        let Ok(mut sig) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        else {
            return;
        };
        while sig.recv().await.is_some() {
            if let Some((h, w)) = crate::terminal::size() {
                send(h, w).await;
            }
        }
    });
}

/// docker refuses `-it` when stdin is not a terminal.
fn check_input_tty(interactive: bool, tty: bool) -> Result<()> {
    if interactive && tty && !crate::terminal::is_tty(0) {
        return Err(status(1, "the input device is not a TTY"));
    }
    Ok(())
}

pub async fn run(ctx: &Ctx, a: RunArgs) -> Result<i32> {
    if !a.detach {
        check_input_tty(a.flags.interactive, a.flags.tty)?;
    }
    let (image, command) = split_image_command(&a.image_and_command);
    let body = build_body(&a.flags, image, command, !a.detach, a.rm)?;
    let id = create_container(ctx, "run", &a.flags, body).await?;
    if a.detach {
        ctx.docker
            .start_container(&id, None)
            .await
            .map_err(|e| start_error("run", &e))?;
        println!("{id}");
        return Ok(0);
    }
    let attach = ctx
        .docker
        .attach_container(
            &id,
            Some(AttachContainerOptions {
                stream: true,
                stdin: a.flags.interactive,
                detach_keys: configured_detach_keys(&a.detach_keys),
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| run_error("run", &e))?;
    let cond = if a.rm { "removed" } else { "next-exit" };
    let io = Io {
        interactive: a.flags.interactive,
        tty: a.flags.tty,
        detach_keys: detach_keys(configured_detach_keys(&a.detach_keys).as_deref())?,
    };
    start_attached(ctx, "run", &id, cond, 125, io, attach).await
}

/// Starts an attached container as the docker CLI does: the wait is
/// registered first (its response headers prove it), so no exit can be
/// missed; then output is copied until the container's exit code arrives.
/// How an attached session uses the local terminal.
struct Io {
    interactive: bool,
    tty: bool,
    /// the sequence that ends the session and leaves the container running
    detach_keys: Vec<u8>,
}

/// `--detach-keys`, else config.json's `detachKeys`, as the docker CLI
/// takes them; both the daemon and the CLI's own scan use the result.
fn configured_detach_keys(flag: &Option<String>) -> Option<String> {
    flag.clone()
        .or_else(|| crate::config::format_for("detachKeys"))
}

/// `--detach-keys`, or docker's ctrl-p ctrl-q
fn detach_keys(flag: Option<&str>) -> Result<Vec<u8>> {
    match flag {
        None => Ok(berth_term::DEFAULT_DETACH_KEYS.to_vec()),
        Some(k) => berth_term::parse_detach_keys(k)
            .map_err(|e| status(1, format!("berth: Invalid detach keys ({k}) provided: {e}"))),
    }
}

async fn start_attached(
    ctx: &Ctx,
    cmd: &str,
    id: &str,
    condition: &str,
    fail_code: i32,
    io: Io,
    attach: bollard::container::AttachContainerResults,
) -> Result<i32> {
    let (code, wait_body) = rawhttp::post_headers(
        &ctx.socket,
        &format!("/containers/{id}/wait?condition={condition}"),
    )
    .await?;
    if code != 200 {
        let body = wait_body.read_all().await.unwrap_or_default();
        return Err(status(
            fail_code,
            format!(
                "berth: error waiting for container: {}",
                String::from_utf8_lossy(&body)
            ),
        ));
    }
    ctx.docker
        .start_container(id, None)
        .await
        .map_err(|e| start_error(cmd, &e))?;
    let target = ResizeTarget::Container(id.to_string());
    let waited = attached_session(
        ctx,
        io,
        target,
        attach.input,
        attach.output,
        wait_body.read_all(),
    );
    let Some(waited) = waited.await else {
        return Ok(0);
    };
    let v: serde_json::Value = serde_json::from_slice(&waited?).unwrap_or_default();
    Ok(v.get("StatusCode")
        .and_then(|c| c.as_i64())
        .unwrap_or(fail_code as i64) as i32)
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let (image, command) = split_image_command(&a.image_and_command);
    let body = build_body(&a.flags, image, command, false, a.rm)?;
    let id = create_container(ctx, "create", &a.flags, body).await?;
    println!("{id}");
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short = 'a', long)]
    attach: bool,
    /// Attach container's STDIN
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn start(ctx: &Ctx, a: StartArgs) -> Result<i32> {
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            return Err(status(
                1,
                "berth: you cannot start and attach multiple containers at once",
            ));
        }
        let name = &a.containers[0];
        let attach = ctx
            .docker
            .attach_container(
                name,
                Some(AttachContainerOptions {
                    stream: true,
                    stdin: a.interactive,
                    detach_keys: configured_detach_keys(&a.detach_keys),
                    stdout: true,
                    stderr: true,
                    ..Default::default()
                }),
            )
            .await
            .map_err(|e| status(1, daemon_error(&e)))?;
        let tty = ctx
            .docker
            .inspect_container(name, None)
            .await
            .ok()
            .and_then(|c| c.config)
            .and_then(|c| c.tty)
            .unwrap_or(false);
        if tty {
            check_input_tty(a.interactive, true)?;
        }
        let io = Io {
            interactive: a.interactive,
            tty,
            detach_keys: detach_keys(configured_detach_keys(&a.detach_keys).as_deref())?,
        };
        return start_attached(ctx, "start", name, "next-exit", 1, io, attach).await;
    }
    each(&a.containers, |n| async move {
        ctx.docker
            .start_container(&n, None)
            .await
            .map_err(|e| daemon_error(&e))
    })
    .await
}

/// Runs `f` for each name, printing the name on success and the error
/// otherwise; exits 1 when any failed, as docker does.
pub async fn each<F, Fut>(names: &[String], f: F) -> Result<i32>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = Result<(), String>>,
{
    let mut failed = false;
    for n in names {
        match f(n.clone()).await {
            Ok(()) => println!("{n}"),
            Err(m) => {
                eprintln!("{m}");
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(clap::Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<i32>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn stop(ctx: &Ctx, a: StopArgs) -> Result<i32> {
    each(&a.containers, |n| {
        let opts = StopContainerOptions {
            t: a.time,
            signal: a.signal.clone(),
        };
        async move {
            match ctx.docker.stop_container(&n, Some(opts)).await {
                Ok(()) => Ok(()),
                // 304: already stopped, which docker reports as success
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304, ..
                }) => Ok(()),
                Err(e) => Err(daemon_error(&e)),
            }
        }
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short = 's', long, default_value = "KILL")]
    signal: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn kill(ctx: &Ctx, a: KillArgs) -> Result<i32> {
    each(&a.containers, |n| {
        let opts = KillContainerOptions {
            signal: a.signal.clone(),
        };
        async move {
            ctx.docker
                .kill_container(&n, Some(opts))
                .await
                .map_err(|e| daemon_error(&e))
        }
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short = 'f', long)]
    force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short = 'v', long)]
    volumes: bool,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    each(&a.containers, |n| {
        let opts = RemoveContainerOptions {
            force: a.force,
            v: a.volumes,
            link: false,
        };
        async move {
            ctx.docker
                .remove_container(&n, Some(opts))
                .await
                .map_err(|e| daemon_error(&e))
        }
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct WaitArgs {
    /// Wait until not-running (default), next-exit or removed (the API's
    /// condition; the docker CLI always waits for not-running)
    #[arg(long, default_value = "not-running")]
    condition: String,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn wait(ctx: &Ctx, a: WaitArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.containers {
        let mut s = ctx.docker.wait_container(
            n,
            Some(WaitContainerOptions {
                condition: a.condition.clone(),
            }),
        );
        match s.next().await {
            Some(Ok(r)) => println!("{}", r.status_code),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                println!("{code}")
            }
            Some(Err(e)) => {
                eprintln!("{}", daemon_error(&e));
                failed = true;
            }
            None => failed = true,
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Only display container IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long)]
    last: Option<i32>,
    /// Show the latest created container (includes all states)
    #[arg(short = 'l', long)]
    latest: bool,
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Display total file sizes
    #[arg(short = 's', long)]
    size: bool,
}

pub fn parse_filters(raw: &[String]) -> Result<Option<HashMap<String, Vec<String>>>> {
    if raw.is_empty() {
        return Ok(None);
    }
    let mut m: HashMap<String, Vec<String>> = HashMap::new();
    for f in raw {
        let Some((k, v)) = f.split_once('=') else {
            return Err(status(
                125,
                format!(
                    "invalid argument \"{f}\" for \"-f, --filter\" flag: bad format of filter (expected name=value)"
                ),
            ));
        };
        m.entry(k.to_string()).or_default().push(v.to_string());
    }
    Ok(Some(m))
}

pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    let limit = if a.latest {
        Some(1)
    } else {
        a.last.filter(|n| *n > 0)
    };
    let format = a
        .format
        .clone()
        .or_else(|| crate::config::format_for("psFormat"));
    // a template that shows sizes asks for them, as the docker CLI does
    let size = a.size || format.as_deref().is_some_and(|f| f.contains(".Size"));
    let opts = ListContainersOptions {
        all: a.all || limit.is_some(),
        limit,
        size,
        filters: parse_filters(&a.filter)?,
    };
    let list = ctx
        .docker
        .list_containers(Some(opts))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    if a.quiet {
        for c in &list {
            let id = c.id.clone().unwrap_or_default();
            println!("{}", if a.no_trunc { id } else { short_id(&id) });
        }
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = list.iter().map(|c| ps_row(c, !a.no_trunc)).collect();
    if print_format(
        format.as_deref(),
        &rows,
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("CreatedAt", "CREATED AT"),
            ("RunningFor", "CREATED"),
            ("Ports", "PORTS"),
            ("Status", "STATUS"),
            ("Size", "SIZE"),
            ("Names", "NAMES"),
            ("Labels", "LABELS"),
            ("Mounts", "MOUNTS"),
            ("Networks", "NETWORKS"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("State", "STATE"),
        ],
    )? {
        return Ok(0);
    }
    let mut tw = table();
    writeln!(
        tw,
        "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES{}",
        if size { "\tSIZE" } else { "" }
    )?;
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        writeln!(
            tw,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}{}",
            s("ID"),
            s("Image"),
            s("Command"),
            s("RunningFor"),
            s("Status"),
            s("Ports"),
            s("Names"),
            if size {
                format!("\t{}", s("Size"))
            } else {
                String::new()
            }
        )?;
    }
    flush_table(tw)?;
    Ok(0)
}

/// A container as the docker CLI's `ps` rows show it (also `system df -v`'s
/// container rows, untruncated).
pub(crate) fn ps_row(c: &bollard::models::ContainerSummary, trunc: bool) -> serde_json::Value {
    let id = c.id.clone().unwrap_or_default();
    let mut names: Vec<String> = c
        .names
        .clone()
        .unwrap_or_default()
        .iter()
        .map(|n| n.trim_start_matches('/').to_string())
        .collect();
    if trunc {
        // docker hides link aliases ("other/alias") unless --no-trunc
        names.retain(|n| !n.contains('/'));
    }
    let command = c.command.clone().unwrap_or_default();
    let command = if trunc {
        ellipsis(&command, 20)
    } else {
        command
    };
    let image = c.image.clone().unwrap_or_default();
    let image = if trunc && image.starts_with("sha256:") {
        short_id(&image)
    } else {
        image
    };
    let labels: std::collections::BTreeMap<_, _> =
        c.labels.clone().unwrap_or_default().into_iter().collect();
    serde_json::json!({
        "ID": if trunc { short_id(&id) } else { id },
        "Image": image,
        "Command": go_quote(&command),
        "RunningFor": ago(c.created.unwrap_or(0)),
        "CreatedAt": crate::output::created_at(c.created.unwrap_or(0)),
        "Status": c.status.clone().unwrap_or_default(),
        "State": c.state.as_ref().map(|s| s.to_string()).unwrap_or_default(),
        "Ports": crate::output::displayable_ports(c.ports.as_deref().unwrap_or_default()),
        "Names": names.join(","),
        "Labels": labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","),
        "Size": size_text(c),
        "Mounts": mounts_text(c, trunc),
        "Networks": networks_text(c),
        "LocalVolumes": c.mounts.iter().flatten().filter(|m| m.driver.as_deref() == Some("local")).count().to_string(),
        "Platform": serde_json::Value::Null,
    })
}

/// The docker CLI's `.Size` of a container: "0B (virtual 4.26MB)".
fn size_text(c: &bollard::models::ContainerSummary) -> String {
    let rw = berth_units::human_size(c.size_rw.unwrap_or(0) as f64);
    match c.size_root_fs.filter(|v| *v > 0) {
        Some(v) => format!("{rw} (virtual {})", berth_units::human_size(v as f64)),
        None => rw,
    }
}

/// `.Mounts`: volume names, or sources of binds, cut to 15 characters.
fn mounts_text(c: &bollard::models::ContainerSummary, trunc: bool) -> String {
    c.mounts
        .iter()
        .flatten()
        .map(|m| {
            let name = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| m.source.clone())
                .unwrap_or_default();
            if trunc { ellipsis(&name, 15) } else { name }
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// `.Networks`: the names of its networks, sorted.
fn networks_text(c: &bollard::models::ContainerSummary) -> String {
    let mut names: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names.join(",")
}

#[derive(clap::Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short = 'f', long)]
    follow: bool,
    /// Show timestamps
    #[arg(short = 't', long)]
    timestamps: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long, default_value = "all")]
    tail: String,
    /// Show logs since timestamp (e.g. "2013-01-02T13:23:37Z") or relative (e.g. "42m")
    #[arg(long)]
    since: Option<String>,
    /// Show logs before a timestamp or relative time
    #[arg(long)]
    until: Option<String>,
    /// Show extra details provided to logs
    #[arg(long)]
    details: bool,
    container: String,
}

/// Docker's GetTimestamp: unix seconds, RFC 3339, or a duration ago ("10m").
fn timestamp_arg(v: &str) -> Result<i32> {
    if let Ok(n) = v.parse::<f64>() {
        return Ok(n as i32);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.timestamp() as i32);
    }
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(v.len()));
    let n: f64 = num
        .parse()
        .map_err(|_| status(1, format!("berth: invalid value for time: {v:?}")))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        "ms" => n / 1000.0,
        _ => return Err(status(1, format!("berth: invalid value for time: {v:?}"))),
    };
    Ok((chrono::Utc::now().timestamp() as f64 - secs) as i32)
}

pub async fn logs(ctx: &Ctx, a: LogsArgs) -> Result<i32> {
    // the stream is framed unless the container has a terminal, as in Docker
    let info = ctx
        .docker
        .inspect_container(&a.container, None)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let tty = info.config.and_then(|c| c.tty).unwrap_or(false);
    let mut query = format!("stdout=1&stderr=1&tail={}", rawhttp::encode(&a.tail));
    for (on, name) in [
        (a.follow, "follow"),
        (a.timestamps, "timestamps"),
        (a.details, "details"),
    ] {
        if on {
            query.push_str(&format!("&{name}=1"));
        }
    }
    for (value, name) in [(&a.since, "since"), (&a.until, "until")] {
        if let Some(v) = value {
            query.push_str(&format!("&{name}={}", timestamp_arg(v)?));
        }
    }
    let path = format!("/containers/{}/logs?{query}", rawhttp::encode(&a.container));
    let (code, mut body) = rawhttp::get(&ctx.socket, &path).await?;
    if code != 200 {
        return Err(status(
            1,
            format!("Error response from daemon: {}", body.error_message().await),
        ));
    }
    let mut frames = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        if tty {
            let mut o = std::io::stdout().lock();
            o.write_all(&chunk)?;
            o.flush()?;
            continue;
        }
        frames.extend_from_slice(&chunk);
        while frames.len() >= 8 {
            let len = u32::from_be_bytes([frames[4], frames[5], frames[6], frames[7]]) as usize;
            if frames.len() < 8 + len {
                break;
            }
            let payload = &frames[8..8 + len];
            if frames[0] == 2 {
                let mut e = std::io::stderr().lock();
                e.write_all(payload)?;
                e.flush()?;
            } else {
                let mut o = std::io::stdout().lock();
                o.write_all(payload)?;
                o.flush()?;
            }
            frames.drain(..8 + len);
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short = 'd', long)]
    detach: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    /// Keep STDIN open even if not attached
    #[arg(short = 'i', long)]
    interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long)]
    tty: bool,
    /// Set environment variables
    #[arg(short = 'e', long = "env")]
    env: Vec<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short = 'u', long)]
    user: Option<String>,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    workdir: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    privileged: bool,
    container: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, required = true)]
    command: Vec<String>,
}

pub async fn exec(ctx: &Ctx, a: ExecArgs) -> Result<i32> {
    use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
    if !a.detach {
        check_input_tty(a.interactive, a.tty)?;
    }
    let env: Vec<String> = a
        .env
        .iter()
        .filter_map(|e| {
            if e.contains('=') {
                Some(e.clone())
            } else {
                std::env::var(e).ok().map(|v| format!("{e}={v}"))
            }
        })
        .collect();
    let opts = CreateExecOptions {
        attach_stdin: Some(a.interactive && !a.detach),
        attach_stdout: Some(!a.detach),
        attach_stderr: Some(!a.detach),
        tty: Some(a.tty),
        env: Some(env),
        cmd: Some(a.command.clone()),
        privileged: Some(a.privileged),
        user: a.user.clone(),
        working_dir: a.workdir.clone(),
        detach_keys: configured_detach_keys(&a.detach_keys),
    };
    let created = ctx
        .docker
        .create_exec(&a.container, opts)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let start = StartExecOptions {
        detach: a.detach,
        tty: a.tty,
        output_capacity: None,
    };
    match ctx
        .docker
        .start_exec(&created.id, Some(start))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?
    {
        StartExecResults::Detached => return Ok(0),
        StartExecResults::Attached { output, input } => {
            let io = Io {
                interactive: a.interactive,
                tty: a.tty,
                detach_keys: detach_keys(configured_detach_keys(&a.detach_keys).as_deref())?,
            };
            let target = ResizeTarget::Exec(created.id.clone());
            if attached_session(ctx, io, target, input, output, async {})
                .await
                .is_none()
            {
                // unlike run and attach, docker's exec reports the detach
                // as its error
                return Err(status(1, "read escape sequence"));
            }
        }
    }
    let info = ctx
        .docker
        .inspect_exec(&created.id)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    Ok(info.exit_code.unwrap_or(0) as i32)
}

#[derive(clap::Args, Debug)]
pub struct RestartArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", alias = "timeout")]
    time: Option<i32>,
    /// Signal to send to the container
    #[arg(short = 's', long)]
    signal: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn restart(ctx: &Ctx, a: RestartArgs) -> Result<i32> {
    each(&a.containers, |n| {
        let opts = bollard::query_parameters::RestartContainerOptions {
            t: a.time,
            signal: a.signal.clone(),
        };
        async move {
            ctx.docker
                .restart_container(&n, Some(opts))
                .await
                .map_err(|e| daemon_error(&e))
        }
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct RenameArgs {
    container: String,
    new_name: String,
}

pub async fn rename(ctx: &Ctx, a: RenameArgs) -> Result<i32> {
    let opts = bollard::query_parameters::RenameContainerOptions {
        name: a.new_name.clone(),
    };
    ctx.docker
        .rename_container(&a.container, opts)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// Asks docker's `[y/N]` question on the terminal; anything but y/Y is no.
pub fn confirm(warning: &str) -> bool {
    print!("{warning}\nAre you sure you want to continue? [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    if std::io::stdin().read_line(&mut line).is_err() {
        return false;
    }
    matches!(line.trim(), "y" | "Y")
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force && !confirm("WARNING! This will remove all stopped containers.") {
        return Ok(0);
    }
    let opts = bollard::query_parameters::PruneContainersOptions {
        filters: parse_filters(&a.filter)?,
    };
    let r = ctx
        .docker
        .prune_containers(Some(opts))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Containers:");
        for id in &deleted {
            println!("{id}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        berth_units::human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    no_stdin: bool,
    /// Override the key sequence for detaching a container
    #[arg(long)]
    detach_keys: Option<String>,
    container: String,
}

pub async fn attach(ctx: &Ctx, a: AttachArgs) -> Result<i32> {
    let c = ctx
        .docker
        .inspect_container(&a.container, None)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let running = c.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    if !running {
        return Err(status(
            1,
            "You cannot attach to a stopped container, start it first",
        ));
    }
    let stdin = !a.no_stdin
        && c.config
            .as_ref()
            .and_then(|c| c.open_stdin)
            .unwrap_or(false);
    let attach = ctx
        .docker
        .attach_container(
            &a.container,
            Some(AttachContainerOptions {
                stream: true,
                stdin,
                detach_keys: configured_detach_keys(&a.detach_keys),
                stdout: true,
                stderr: true,
                ..Default::default()
            }),
        )
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let tty = c.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    if tty && stdin && !crate::terminal::is_tty(0) {
        return Err(status(1, "the input device is not a TTY"));
    }
    let io = Io {
        interactive: stdin,
        tty,
        detach_keys: detach_keys(configured_detach_keys(&a.detach_keys).as_deref())?,
    };
    let target = ResizeTarget::Container(a.container.clone());
    if attached_session(ctx, io, target, attach.input, attach.output, async {})
        .await
        .is_none()
    {
        return Ok(0);
    }
    let mut s = ctx.docker.wait_container(
        &a.container,
        Some(WaitContainerOptions {
            condition: "not-running".into(),
        }),
    );
    Ok(match s.next().await {
        Some(Ok(r)) => r.status_code as i32,
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => code as i32,
        _ => 0,
    })
}
