//! `berth stack`: the docker CLI 28's `docker stack` (cli/command/stack):
//! its flags, its requests and its texts. `deploy` is in stack_deploy.rs,
//! `rm` in stack_rm.rs; this module has the command tree, the listings
//! and the loading of compose files shared by `deploy` and `config`.

use std::io::Read;
use std::path::{Path, PathBuf};

use anyhow::Result;
use berth_compose::{ComposeSource, Env, Loaded};
use serde_json::Value;

use super::services::args_error;
use super::services_flags::Usage;
use super::services_list::{append_status, parse_filters, print_services};
use super::stack_plan::{check_stack_name, stack_filter, stack_filter_with, stack_rows, stacks};
use super::swarm::get_json;
use super::tasks_table::{TaskPrint, print_tasks};
use crate::output::print_format_or;
use crate::{Ctx, rawhttp, status};

#[derive(clap::Args, Debug)]
pub struct StackArgs {
    /// Orchestrator to use (swarm|all); deprecated and ignored
    #[arg(long, hide = true, global = true)]
    pub orchestrator: Option<String>,
    #[command(subcommand)]
    pub command: StackCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum StackCommand {
    /// Outputs the final config file, after doing merges and interpolations
    Config(ConfigArgs),
    /// Deploy a new stack or update an existing stack
    #[command(alias = "up")]
    Deploy(DeployArgs),
    /// List stacks
    #[command(alias = "list")]
    Ls(LsArgs),
    /// List the tasks in the stack
    Ps(PsArgs),
    /// Remove one or more stacks
    #[command(alias = "remove", alias = "down")]
    Rm(RmArgs),
    /// List the services in the stack
    Services(ServicesArgs),
}

#[derive(clap::Args, Debug)]
pub struct DeployArgs {
    /// Path to a Compose file, or "-" to read from stdin
    #[arg(short = 'c', long = "compose-file", value_name = "strings")]
    pub compose_files: Vec<String>,
    /// Exit immediately instead of waiting for the stack services to converge (default true)
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    /// Prune services that are no longer referenced
    #[arg(long)]
    pub prune: bool,
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Query the registry to resolve image digest and supported platforms ("always", "changed", "never")
    #[arg(
        long = "resolve-image",
        default_value = "always",
        value_name = "string"
    )]
    pub resolve_image: String,
    /// How long to wait for a service another depends on (berth)
    #[arg(long = "wait-timeout", default_value = "5m", value_name = "duration")]
    pub wait_timeout: String,
    /// Send registry authentication details to Swarm agents
    #[arg(long = "with-registry-auth")]
    pub with_registry_auth: bool,
    #[arg(value_name = "STACK")]
    pub stack: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ConfigArgs {
    /// Path to a Compose file, or "-" to read from stdin
    #[arg(short = 'c', long = "compose-file", value_name = "strings")]
    pub compose_files: Vec<String>,
    /// Skip interpolation and output only merged config
    #[arg(long = "skip-interpolation")]
    pub skip_interpolation: bool,
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct PsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Do not map IDs to Names
    #[arg(long = "no-resolve")]
    pub no_resolve: bool,
    /// Do not truncate output
    #[arg(long = "no-trunc")]
    pub no_trunc: bool,
    /// Only display task IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "STACK")]
    pub stack: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ServicesArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    pub filter: Vec<String>,
    /// Format output using a custom template
    #[arg(long)]
    pub format: Option<String>,
    /// Only display IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "STACK")]
    pub stack: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Do not wait for stack removal (default true)
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    #[arg(value_name = "STACK")]
    pub stacks: Vec<String>,
}

pub async fn stack(ctx: &Ctx, a: StackArgs) -> Result<i32> {
    if a.orchestrator.is_some() {
        println!("Flag --orchestrator has been deprecated, option will be ignored");
    }
    match a.command {
        StackCommand::Config(c) => super::stack_config::config(false, &c),
        StackCommand::Deploy(d) => super::stack_deploy::deploy(ctx, d).await,
        StackCommand::Ls(l) => ls(ctx, l).await,
        StackCommand::Ps(p) => ps(ctx, p).await,
        StackCommand::Rm(r) => super::stack_rm::rm(ctx, r).await,
        StackCommand::Services(s) => services(ctx, s).await,
    }
}

/// `cli.ExactArgs(1)` and `validateStackName`.
pub fn one_stack<'a>(args: &'a [String], path: &str) -> Result<&'a str> {
    let [one] = args else {
        return Err(args_error("1 argument", path, "[OPTIONS] STACK"));
    };
    check_stack_name(one).map_err(|e| status(1, e))?;
    Ok(one)
}

/// A compose file given as `-c`: each value is a comma-separated list,
/// as a pflag string slice reads it.
pub fn compose_file_names(values: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for v in values {
        let record = crate::gocsv::record(v).map_err(|e| {
            status(
                125,
                format!("invalid argument \"{v}\" for \"-c, --compose-file\" flag: {e}"),
            )
        })?;
        out.extend(record);
    }
    Ok(out)
}

/// `GetConfigDetails`: the files read (`-` is stdin), every one resolved
/// against the directory of the first (the current one for stdin).
pub fn compose_sources(names: &[String]) -> Result<(Vec<ComposeSource>, PathBuf)> {
    let Some(first) = names.first() else {
        return Err(status(1, "Specify a Compose file (with --compose-file)"));
    };
    let cwd = std::env::current_dir()?;
    let working_dir = if first == "-" {
        cwd
    } else {
        let absolute = std::path::absolute(first)?;
        absolute.parent().map_or(cwd, Path::to_path_buf)
    };
    let mut sources = Vec::with_capacity(names.len());
    for name in names {
        let content = if name == "-" {
            let mut buf = Vec::new();
            std::io::stdin().read_to_end(&mut buf)?;
            buf
        } else {
            std::fs::read(name).map_err(|e| status(1, go_open_error(name, &e)))?
        };
        sources.push(ComposeSource::new(name, &working_dir, content));
    }
    Ok((sources, working_dir))
}

/// Go's `open NAME: no such file or directory`.
fn go_open_error(name: &str, e: &std::io::Error) -> String {
    let why = match e.raw_os_error() {
        Some(code) => {
            let desc = nix::errno::Errno::from_raw(code).desc();
            let mut chars = desc.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_lowercase().collect::<String>() + chars.as_str()
            })
        }
        None => e.to_string(),
    };
    format!("open {name}: {why}")
}

/// Loads the files as `stack deploy` does, with the process environment
/// plus the working directory's `.env` (berth's addition).
pub fn load_compose(names: &[String]) -> Result<Loaded> {
    let (sources, working_dir) = compose_sources(names)?;
    let env = Env::for_stack(&working_dir).map_err(|e| status(1, e.to_string()))?;
    berth_compose::load(&sources, &env).map_err(|e| status(1, e.to_string()))
}

/// Prints the loader's warnings as the docker CLI does: logrus lines
/// first, then the "Ignoring …" paragraphs.
pub fn print_load_warnings(warnings: &[String]) {
    for w in warnings {
        if w.starts_with("Ignoring") {
            eprint!("{w}\n\n");
        } else {
            eprintln!("WARN[0000] {w}");
        }
    }
}

pub async fn list_json(ctx: &Ctx, path: &str) -> Result<Vec<Value>> {
    Ok(get_json(ctx, path)
        .await?
        .as_array()
        .cloned()
        .unwrap_or_default())
}

/// `GET /KIND?filters={"label":{"com.docker.stack.namespace=NS":true}}`.
pub async fn stack_objects(ctx: &Ctx, kind: &str, namespace: &str) -> Result<Vec<Value>> {
    let q = rawhttp::encode(&stack_filter(namespace));
    list_json(ctx, &format!("/{kind}?filters={q}")).await
}

const STACK_TABLE: &str = "table {{.Name}}\t{{.Services}}";
const STACK_HEADERS: &[(&str, &str)] = &[("Name", "NAME"), ("Services", "SERVICES")];

pub async fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let q = rawhttp::encode(&berth_compose_label_filter());
    let services = list_json(ctx, &format!("/services?filters={q}")).await?;
    let stacks = stacks(&services).map_err(|e| status(1, e))?;
    print_format_or(
        a.format.as_deref(),
        STACK_TABLE,
        &stack_rows(&stacks),
        STACK_HEADERS,
    )?;
    Ok(0)
}

/// `{"label":{"com.docker.stack.namespace":true}}`: every stack's services.
fn berth_compose_label_filter() -> String {
    super::services_list::filters_json(&[(
        "label".to_string(),
        berth_compose::LABEL_NAMESPACE.to_string(),
    )])
}

pub async fn services(ctx: &Ctx, a: ServicesArgs) -> Result<i32> {
    let namespace = one_stack(&a.stack, "stack services")?;
    let usage = Usage {
        path: "stack services",
        line: "[OPTIONS] STACK",
    };
    let filters = parse_filters(&a.filter, &usage)?;
    let mut path = format!(
        "/services?filters={}",
        rawhttp::encode(&stack_filter_with(namespace, &filters))
    );
    if !a.quiet {
        path.push_str("&status=true");
    }
    let mut services = list_json(ctx, &path).await?;
    if !a.quiet {
        append_status(ctx, &mut services).await?;
    }
    if services.is_empty() {
        eprintln!("Nothing found in stack: {namespace}");
        return Ok(0);
    }
    print_services(services, a.format.as_deref(), a.quiet)?;
    Ok(0)
}

pub async fn ps(ctx: &Ctx, a: PsArgs) -> Result<i32> {
    let namespace = one_stack(&a.stack, "stack ps")?;
    let usage = Usage {
        path: "stack ps",
        line: "[OPTIONS] STACK",
    };
    let filters = parse_filters(&a.filter, &usage)?;
    let path = format!(
        "/tasks?filters={}",
        rawhttp::encode(&stack_filter_with(namespace, &filters))
    );
    let tasks = list_json(ctx, &path).await?;
    if tasks.is_empty() {
        return Err(status(1, format!("nothing found in stack: {namespace}")));
    }
    let print = TaskPrint::from_flags(a.no_resolve, a.no_trunc, a.quiet, a.format);
    print_tasks(ctx, tasks, &print).await?;
    Ok(0)
}
