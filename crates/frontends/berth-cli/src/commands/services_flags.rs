//! The flags of `service create` and `service update` (the docker CLI's
//! `addServiceFlags` and each command's own), kept as the user typed them:
//! whether a flag was given matters to `update`, and their values are
//! checked with the docker CLI's messages (see [`FlagError`]).

use berth_units::go_quote;

use crate::goparse;
use crate::status;

/// Flags common to `create` and `update`. A bool flag reads as pflag's
/// do: `--init`, `--init=true`, `--init=false`.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct ServiceFlags {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Working directory inside the container
    #[arg(short = 'w', long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short = 'u', long)]
    pub user: Option<String>,
    /// Container hostname
    #[arg(long)]
    pub hostname: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Add Linux capabilities
    #[arg(long = "cap-add")]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long = "cap-drop")]
    pub cap_drop: Vec<String>,
    /// Limit CPUs
    #[arg(long = "limit-cpu")]
    pub limit_cpu: Option<String>,
    /// Limit Memory
    #[arg(long = "limit-memory")]
    pub limit_memory: Option<String>,
    /// Limit maximum number of processes (default 0 = unlimited)
    #[arg(long = "limit-pids")]
    pub limit_pids: Option<String>,
    /// Reserve CPUs
    #[arg(long = "reserve-cpu")]
    pub reserve_cpu: Option<String>,
    /// Reserve Memory
    #[arg(long = "reserve-memory")]
    pub reserve_memory: Option<String>,
    /// Time to wait before force killing a container (ns|us|ms|s|m|h) (default 10s)
    #[arg(long = "stop-grace-period")]
    pub stop_grace_period: Option<String>,
    /// Number of tasks
    #[arg(long)]
    pub replicas: Option<String>,
    /// Number of job tasks to run concurrently (default equal to --replicas)
    #[arg(long = "max-concurrent")]
    pub max_concurrent: Option<String>,
    /// Maximum number of tasks per node (default 0 = unlimited)
    #[arg(long = "replicas-max-per-node")]
    pub replicas_max_per_node: Option<String>,
    /// Restart when condition is met ("none", "on-failure", "any") (default "any")
    #[arg(long = "restart-condition")]
    pub restart_condition: Option<String>,
    /// Delay between restart attempts (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "restart-delay")]
    pub restart_delay: Option<String>,
    /// Maximum number of restarts before giving up
    #[arg(long = "restart-max-attempts")]
    pub restart_max_attempts: Option<String>,
    /// Window used to evaluate the restart policy (ns|us|ms|s|m|h)
    #[arg(long = "restart-window")]
    pub restart_window: Option<String>,
    #[command(flatten)]
    pub update: UpdateConfigFlags,
    #[command(flatten)]
    pub rollback: RollbackConfigFlags,
    /// Endpoint mode (vip or dnsrr)
    #[arg(long = "endpoint-mode")]
    pub endpoint_mode: Option<String>,
    /// Send registry authentication details to swarm agents
    #[arg(long = "with-registry-auth", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub with_registry_auth: Option<String>,
    /// Do not query the registry to resolve image digest and supported platforms
    #[arg(long = "no-resolve-image", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_resolve_image: Option<String>,
    /// Logging driver for service
    #[arg(long = "log-driver")]
    pub log_driver: Option<String>,
    /// Logging driver options
    #[arg(long = "log-opt")]
    pub log_opt: Vec<String>,
    #[command(flatten)]
    pub health: HealthFlags,
    /// Allocate a pseudo-TTY
    #[arg(short = 't', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub tty: Option<String>,
    /// Mount the container's root filesystem as read only
    #[arg(long = "read-only", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub read_only: Option<String>,
    /// Signal to stop the container
    #[arg(long = "stop-signal")]
    pub stop_signal: Option<String>,
    /// Service container isolation mode
    #[arg(long)]
    pub isolation: Option<String>,
    /// Tune host's OOM preferences (-1000 to 1000)
    #[arg(long = "oom-score-adj", allow_hyphen_values = true)]
    pub oom_score_adj: Option<String>,
    /// Use an init inside each service container to forward signals and reap processes
    #[arg(long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub init: Option<String>,
}

/// `--update-*`: the service's UpdateConfig.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct UpdateConfigFlags {
    /// Maximum number of tasks updated simultaneously (0 to update all at once)
    #[arg(long = "update-parallelism", id = "update-parallelism")]
    pub parallelism: Option<String>,
    /// Delay between updates (ns|us|ms|s|m|h) (default 0s)
    #[arg(long = "update-delay", id = "update-delay")]
    pub delay: Option<String>,
    /// Duration after each task update to monitor for failure (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "update-monitor", id = "update-monitor")]
    pub monitor: Option<String>,
    /// Action on update failure ("pause", "continue", "rollback") (default "pause")
    #[arg(long = "update-failure-action", id = "update-failure-action")]
    pub failure_action: Option<String>,
    /// Failure rate to tolerate during an update (default 0)
    #[arg(long = "update-max-failure-ratio", id = "update-max-failure-ratio")]
    pub max_failure_ratio: Option<String>,
    /// Update order ("start-first", "stop-first") (default "stop-first")
    #[arg(long = "update-order", id = "update-order")]
    pub order: Option<String>,
}

/// `--rollback-*`: the service's RollbackConfig.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct RollbackConfigFlags {
    /// Maximum number of tasks rolled back simultaneously (0 to roll back all at once)
    #[arg(long = "rollback-parallelism", id = "rollback-parallelism")]
    pub parallelism: Option<String>,
    /// Delay between task rollbacks (ns|us|ms|s|m|h) (default 0s)
    #[arg(long = "rollback-delay", id = "rollback-delay")]
    pub delay: Option<String>,
    /// Duration after each task rollback to monitor for failure (ns|us|ms|s|m|h) (default 5s)
    #[arg(long = "rollback-monitor", id = "rollback-monitor")]
    pub monitor: Option<String>,
    /// Action on rollback failure ("pause", "continue") (default "pause")
    #[arg(long = "rollback-failure-action", id = "rollback-failure-action")]
    pub failure_action: Option<String>,
    /// Failure rate to tolerate during a rollback (default 0)
    #[arg(long = "rollback-max-failure-ratio", id = "rollback-max-failure-ratio")]
    pub max_failure_ratio: Option<String>,
    /// Rollback order ("start-first", "stop-first") (default "stop-first")
    #[arg(long = "rollback-order", id = "rollback-order")]
    pub order: Option<String>,
}

/// The six knobs of an UpdateConfig, whichever flags carry them.
pub struct UpdateKnobs<'a> {
    pub prefix: &'static str,
    pub parallelism: &'a Option<String>,
    pub delay: &'a Option<String>,
    pub monitor: &'a Option<String>,
    pub failure_action: &'a Option<String>,
    pub max_failure_ratio: &'a Option<String>,
    pub order: &'a Option<String>,
}

impl UpdateKnobs<'_> {
    pub fn any(&self) -> bool {
        self.parallelism.is_some()
            || self.delay.is_some()
            || self.monitor.is_some()
            || self.failure_action.is_some()
            || self.max_failure_ratio.is_some()
            || self.order.is_some()
    }
}

impl UpdateConfigFlags {
    pub fn knobs(&self) -> UpdateKnobs<'_> {
        UpdateKnobs {
            prefix: "update",
            parallelism: &self.parallelism,
            delay: &self.delay,
            monitor: &self.monitor,
            failure_action: &self.failure_action,
            max_failure_ratio: &self.max_failure_ratio,
            order: &self.order,
        }
    }
}

impl RollbackConfigFlags {
    pub fn knobs(&self) -> UpdateKnobs<'_> {
        UpdateKnobs {
            prefix: "rollback",
            parallelism: &self.parallelism,
            delay: &self.delay,
            monitor: &self.monitor,
            failure_action: &self.failure_action,
            max_failure_ratio: &self.max_failure_ratio,
            order: &self.order,
        }
    }
}

/// `--health-*` and `--no-healthcheck`.
#[derive(clap::Args, Debug, Default, Clone, PartialEq)]
pub struct HealthFlags {
    /// Command to run to check health
    #[arg(long = "health-cmd", id = "health-cmd")]
    pub cmd: Option<String>,
    /// Time between running the check (ms|s|m|h)
    #[arg(long = "health-interval", id = "health-interval")]
    pub interval: Option<String>,
    /// Maximum time to allow one check to run (ms|s|m|h)
    #[arg(long = "health-timeout", id = "health-timeout")]
    pub timeout: Option<String>,
    /// Consecutive failures needed to report unhealthy
    #[arg(long = "health-retries", id = "health-retries")]
    pub retries: Option<String>,
    /// Start period for the container to initialize before counting retries towards unstable (ms|s|m|h)
    #[arg(long = "health-start-period", id = "health-start-period")]
    pub start_period: Option<String>,
    /// Time between running the check during the start period (ms|s|m|h)
    #[arg(long = "health-start-interval", id = "health-start-interval")]
    pub start_interval: Option<String>,
    /// Disable any container-specified HEALTHCHECK
    #[arg(long = "no-healthcheck", num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub no_healthcheck: Option<String>,
}

/// A flag value refused as pflag refuses it:
/// `invalid argument "x" for "--update-delay" flag: <why>`.
#[derive(Debug, PartialEq)]
pub struct FlagError {
    pub flag: String,
    pub value: String,
    pub why: String,
}

/// A command's usage line, for the text that follows a flag error.
pub struct Usage {
    pub path: &'static str,
    pub line: &'static str,
}

pub const CREATE_USAGE: Usage = Usage {
    path: "service create",
    line: "[OPTIONS] IMAGE [COMMAND] [ARG...]",
};

pub const UPDATE_USAGE: Usage = Usage {
    path: "service update",
    line: "[OPTIONS] SERVICE",
};

impl FlagError {
    /// The text the docker CLI prints: the reason, the usage line and a
    /// pointer to `--help`; exit status 125.
    pub fn with_usage(self, usage: &Usage) -> anyhow::Error {
        status(
            125,
            format!(
                "{}\n\nUsage:  docker {} {}\n\nRun 'docker {} --help' for more information",
                self, usage.path, usage.line, usage.path
            ),
        )
    }
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid argument {} for {} flag: {}",
            go_quote(&self.value),
            go_quote(&self.flag),
            self.why
        )
    }
}

/// The flag as pflag names it in errors: `-e, --env` when it has a short
/// form.
pub fn flag_name(long: &str) -> String {
    let short = match long {
        "detach" => "d",
        "quiet" => "q",
        "workdir" => "w",
        "user" => "u",
        "label" => "l",
        "env" => "e",
        "publish" => "p",
        "tty" => "t",
        "filter" => "f",
        _ => return format!("--{long}"),
    };
    format!("-{short}, --{long}")
}

pub type FlagResult<T> = Result<T, FlagError>;

/// Runs a value parser, naming the flag in its error.
pub fn checked<T>(
    long: &str,
    value: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> FlagResult<T> {
    parse(value).map_err(|why| FlagError {
        flag: flag_name(long),
        value: value.to_string(),
        why,
    })
}

/// An optional flag through a parser.
pub fn opt<T>(
    long: &str,
    value: &Option<String>,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> FlagResult<Option<T>> {
    value
        .as_deref()
        .map(|v| checked(long, v, parse))
        .transpose()
}

pub fn opt_duration(long: &str, value: &Option<String>) -> FlagResult<Option<i64>> {
    opt(long, value, goparse::parse_duration)
}

/// `opts.PositiveDurationOpt`: a duration, not below zero.
pub fn opt_positive_duration(long: &str, value: &Option<String>) -> FlagResult<Option<i64>> {
    opt(long, value, |v| {
        let d = goparse::parse_duration(v)?;
        if d < 0 {
            return Err("duration cannot be negative".into());
        }
        Ok(d)
    })
}

pub fn opt_uint(long: &str, value: &Option<String>) -> FlagResult<Option<u64>> {
    opt(long, value, goparse::parse_uint)
}

pub fn opt_int(long: &str, value: &Option<String>) -> FlagResult<Option<i64>> {
    opt(long, value, |v| goparse::parse_int(v, 64))
}

pub fn opt_bool(long: &str, value: &Option<String>) -> FlagResult<Option<bool>> {
    opt(long, value, goparse::parse_bool)
}

pub fn opt_cpus(long: &str, value: &Option<String>) -> FlagResult<Option<i64>> {
    opt(long, value, goparse::parse_cpus)
}

pub fn opt_memory(long: &str, value: &Option<String>) -> FlagResult<Option<i64>> {
    opt(long, value, berth_units::parse_ram)
}

/// Checks each value of a list flag.
pub fn each<T>(
    long: &str,
    values: &[String],
    parse: impl Fn(&str) -> Result<T, String>,
) -> FlagResult<Vec<T>> {
    values.iter().map(|v| checked(long, v, &parse)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_errors_read_as_pflags() {
        let e = opt_duration("update-delay", &Some("x".into())).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid argument "x" for "--update-delay" flag: time: invalid duration "x""#
        );
        let e = checked("env", "=x", |_| Err::<(), _>("bad".to_string())).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"invalid argument "=x" for "-e, --env" flag: bad"#
        );
        let e = opt_positive_duration("health-interval", &Some("-1s".into())).unwrap_err();
        assert_eq!(e.why, "duration cannot be negative");
        assert_eq!(opt_positive_duration("x", &Some("0s".into())), Ok(Some(0)));
    }
}
