//! The `berth` command line: a mirror of the docker CLI (commands, flags,
//! output columns, exit codes) speaking the Engine API through bollard.

mod commands;
mod config;
mod gocsv;
mod goparse;
mod output;
mod ports;
mod progress;
mod rawhttp;
mod terminal;

use std::ffi::OsString;
use std::time::Duration;

use bollard::Docker;
use clap::{Parser, Subcommand};

pub const DEFAULT_HOST: &str = "unix:///run/berth/berth.sock";

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    about = "A Docker-compatible container engine",
    version,
    disable_help_subcommand = true,
    subcommand_required = true
)]
pub struct Cli {
    /// Daemon socket to connect to (before the command, as in docker: `history -H` is --human)
    #[arg(short = 'H', long = "host")]
    host: Option<String>,
    /// Enable debug mode
    #[arg(short = 'D', long, global = true)]
    debug: bool,
    /// Location of client config files (default ~/.docker, or BERTH_CONFIG / DOCKER_CONFIG);
    /// before the command, as in docker (`service create --config` is a swarm config)
    #[arg(long = "config")]
    config: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create and run a new container from an image
    Run(commands::containers::RunArgs),
    /// Create a new container
    Create(commands::containers::CreateArgs),
    /// Start one or more stopped containers
    Start(commands::containers::StartArgs),
    /// Stop one or more running containers
    Stop(commands::containers::StopArgs),
    /// Kill one or more running containers
    Kill(commands::containers::KillArgs),
    /// Remove one or more containers
    Rm(commands::containers::RmArgs),
    /// List containers
    Ps(commands::containers::PsArgs),
    /// Fetch the logs of a container
    Logs(commands::containers::LogsArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(commands::containers::WaitArgs),
    /// Execute a command in a running container
    Exec(commands::containers::ExecArgs),
    /// Restart one or more containers
    Restart(commands::containers::RestartArgs),
    /// Rename a container
    Rename(commands::containers::RenameArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(commands::containers::AttachArgs),
    /// Build an image from a Dockerfile
    Build(Box<commands::build::BuildArgs>),
    /// List images
    Images(commands::images::ImagesArgs),
    /// Remove one or more images
    Rmi(commands::images::RmiArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(commands::images::ImportArgs),
    /// Create a new image from a container's changes
    Commit(commands::images::CommitArgs),
    /// Download an image from a registry
    Pull(commands::images::PullArgs),
    /// Upload an image to a registry
    Push(commands::images::PushArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag(commands::images::TagArgs),
    /// Log in to a registry
    Login(commands::images::LoginArgs),
    /// Log out from a registry
    Logout(commands::images::LogoutArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(commands::images::SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(commands::images::LoadArgs),
    /// Show the history of an image
    History(commands::images::HistoryArgs),
    /// Search an image index for images
    Search(commands::images::SearchArgs),
    /// Return low-level information on berth objects
    Inspect(commands::system::InspectArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(commands::copy::CpArgs),
    /// Export a container's filesystem as a tar archive
    Export(commands::copy::ExportArgs),
    /// Inspect changes to files or directories on a container's filesystem
    Diff(commands::copy::DiffArgs),
    /// Pause all processes within one or more containers
    Pause(commands::runtime::PauseArgs),
    /// Unpause all processes within one or more containers
    Unpause(commands::runtime::PauseArgs),
    /// Display the running processes of a container
    Top(commands::runtime::TopArgs),
    /// Display a live stream of container(s) resource usage statistics
    Stats(commands::runtime::StatsArgs),
    /// Update configuration of one or more containers
    Update(commands::runtime::UpdateArgs),
    /// List port mappings or a specific mapping for the container
    Port(commands::runtime::PortArgs),
    /// Show the berth version information
    Version(commands::system::VersionArgs),
    /// Get real time events from the server
    Events(commands::system::EventsArgs),
    /// Display system-wide information
    Info(commands::system::InfoArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCommand),
    /// Manage builds
    #[command(subcommand)]
    Builder(BuilderCommand),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Manage berth
    #[command(subcommand)]
    System(SystemCommand),
    /// Manage Swarm
    #[command(subcommand)]
    Swarm(SwarmCommand),
    /// Manage Swarm nodes
    #[command(subcommand)]
    Node(NodeCommand),
    /// Manage Swarm services
    #[command(subcommand)]
    Service(ServiceCommand),
    /// Manage Swarm secrets
    #[command(subcommand)]
    Secret(SecretCommand),
    /// Manage Swarm configs
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage Swarm stacks
    Stack(commands::stack::StackArgs),
}

#[derive(Subcommand, Debug)]
enum SecretCommand {
    /// Create a secret from a file or STDIN as content
    Create(commands::secrets::CreateArgs),
    /// Display detailed information on one or more secrets
    Inspect(commands::secrets_common::InspectArgs),
    /// List secrets
    #[command(alias = "list")]
    Ls(commands::secrets_common::LsArgs),
    /// Remove one or more secrets
    #[command(alias = "remove")]
    Rm(commands::secrets_common::RmArgs),
    /// Replace a secret's data and roll the services that use it
    Rotate(commands::secrets::RotateArgs),
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Create a config from a file or STDIN
    Create(commands::configs::CreateArgs),
    /// Display detailed information on one or more configs
    Inspect(commands::secrets_common::InspectArgs),
    /// List configs
    #[command(alias = "list")]
    Ls(commands::secrets_common::LsArgs),
    /// Remove one or more configs
    #[command(alias = "remove")]
    Rm(commands::secrets_common::RmArgs),
}

#[derive(Subcommand, Debug)]
enum ServiceCommand {
    /// Create a new service
    Create(Box<commands::services::CreateArgs>),
    /// Display detailed information on one or more services
    Inspect(commands::services_list::InspectArgs),
    /// Fetch the logs of a service or task
    Logs(commands::services_logs::LogsArgs),
    /// List services
    #[command(alias = "list")]
    Ls(commands::services_list::LsArgs),
    /// List the tasks of one or more services
    Ps(commands::services_list::PsArgs),
    /// Remove one or more services
    #[command(alias = "remove")]
    Rm(commands::services::RmArgs),
    /// Move tasks so that a service spreads evenly over its nodes again
    Rebalance(commands::services::RebalanceArgs),
    /// Revert changes to a service's configuration
    Rollback(commands::services::RollbackArgs),
    /// Scale one or multiple replicated services
    Scale(commands::services::ScaleArgs),
    /// Update a service
    Update(Box<commands::services::UpdateArgs>),
}

#[derive(Subcommand, Debug)]
enum SwarmCommand {
    /// Initialize a swarm
    Init(commands::swarm::InitArgs),
    /// Join a swarm as a node and/or manager
    Join(commands::swarm::JoinArgs),
    /// Manage join tokens
    JoinToken(commands::swarm::JoinTokenArgs),
    /// Leave the swarm
    Leave(commands::swarm::LeaveArgs),
    /// Update the swarm
    Update(commands::swarm_ca::UpdateArgs),
    /// Display and rotate the root CA
    Ca(commands::swarm_ca::CaArgs),
    /// Unlock swarm
    Unlock(commands::swarm_lock::UnlockArgs),
    /// Manage the unlock key
    UnlockKey(commands::swarm_lock::UnlockKeyArgs),
}

#[derive(Subcommand, Debug)]
enum NodeCommand {
    /// List nodes in the swarm
    #[command(alias = "list")]
    Ls(commands::swarm::NodeLsArgs),
    /// Display detailed information on one or more nodes
    Inspect(commands::swarm::NodeInspectArgs),
    /// Update a node
    Update(commands::nodes::NodeUpdateArgs),
    /// Promote one or more nodes to manager in the swarm
    Promote(commands::nodes::NodeRoleArgs),
    /// Demote one or more nodes from manager in the swarm
    Demote(commands::nodes::NodeRoleArgs),
    /// Remove one or more nodes from the swarm
    #[command(alias = "remove")]
    Rm(commands::nodes::NodeRmArgs),
    /// List tasks running on one or more nodes, defaults to current node
    Ps(commands::nodes::NodePsArgs),
}

#[derive(Subcommand, Debug)]
enum SystemCommand {
    /// Show berth disk usage
    Df(commands::system::DfArgs),
    /// Get real time events from the server
    Events(commands::system::EventsArgs),
    /// Display system-wide information
    Info(commands::system::InfoArgs),
    /// Remove unused data
    Prune(commands::system::SystemPruneArgs),
}

#[derive(Subcommand, Debug)]
enum NetworkCommand {
    Create(commands::networks::CreateArgs),
    #[command(alias = "list")]
    Ls(commands::networks::LsArgs),
    Inspect(commands::system::NetworkInspectArgs),
    #[command(alias = "remove")]
    Rm(commands::networks::RmArgs),
    Prune(commands::networks::PruneArgs),
    Connect(commands::networks::ConnectArgs),
    Disconnect(commands::networks::DisconnectArgs),
}

#[derive(Subcommand, Debug)]
enum VolumeCommand {
    Create(commands::volumes::CreateArgs),
    #[command(alias = "list")]
    Ls(commands::volumes::LsArgs),
    Inspect(commands::system::InspectArgs),
    #[command(alias = "remove")]
    Rm(commands::volumes::RmArgs),
    Prune(commands::volumes::PruneArgs),
}

#[derive(Subcommand, Debug)]
enum ContainerCommand {
    Run(commands::containers::RunArgs),
    Create(commands::containers::CreateArgs),
    Start(commands::containers::StartArgs),
    Stop(commands::containers::StopArgs),
    Kill(commands::containers::KillArgs),
    Rm(commands::containers::RmArgs),
    #[command(alias = "list", alias = "ps")]
    Ls(commands::containers::PsArgs),
    Logs(commands::containers::LogsArgs),
    Wait(commands::containers::WaitArgs),
    Exec(commands::containers::ExecArgs),
    Restart(commands::containers::RestartArgs),
    Rename(commands::containers::RenameArgs),
    Attach(commands::containers::AttachArgs),
    /// Remove all stopped containers
    Prune(commands::containers::PruneArgs),
    Inspect(commands::system::InspectArgs),
    Cp(commands::copy::CpArgs),
    Export(commands::copy::ExportArgs),
    Diff(commands::copy::DiffArgs),
    Pause(commands::runtime::PauseArgs),
    Unpause(commands::runtime::PauseArgs),
    Top(commands::runtime::TopArgs),
    Stats(commands::runtime::StatsArgs),
    Update(commands::runtime::UpdateArgs),
    Commit(commands::images::CommitArgs),
    Port(commands::runtime::PortArgs),
}

#[derive(Subcommand, Debug)]
enum BuilderCommand {
    /// Build an image from a Dockerfile
    Build(Box<commands::build::BuildArgs>),
    /// Remove build cache
    Prune(commands::build::BuilderPruneArgs),
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    Build(Box<commands::build::BuildArgs>),
    #[command(alias = "list")]
    Ls(commands::images::ImagesArgs),
    Rm(commands::images::RmiArgs),
    Import(commands::images::ImportArgs),
    Inspect(commands::system::InspectArgs),
    Pull(commands::images::PullArgs),
    Push(commands::images::PushArgs),
    Tag(commands::images::TagArgs),
    Save(commands::images::SaveArgs),
    Load(commands::images::LoadArgs),
    History(commands::images::HistoryArgs),
    /// Remove unused images
    Prune(commands::images::ImagePruneArgs),
}

/// An error that ends the command with a given exit status. The message
/// has already been printed when `printed` is set.
#[derive(Debug)]
pub struct StatusError {
    pub code: i32,
    pub message: String,
}

impl std::fmt::Display for StatusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for StatusError {}

pub fn status(code: i32, message: impl Into<String>) -> anyhow::Error {
    StatusError {
        code,
        message: message.into(),
    }
    .into()
}

/// Docker's wording for an error the daemon answered.
pub fn daemon_error(e: &bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => {
            format!("Error response from daemon: {message}")
        }
        other => other.to_string(),
    }
}

pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The daemon address: -H, then BERTH_HOST, then DOCKER_HOST.
pub fn resolve_host(flag: Option<String>) -> String {
    flag.or_else(|| std::env::var("BERTH_HOST").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("DOCKER_HOST").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| DEFAULT_HOST.to_string())
}

pub struct Ctx {
    pub docker: Docker,
    pub socket: String,
}

async fn connect(host: &str) -> anyhow::Result<Ctx> {
    let Some(path) = host.strip_prefix("unix://") else {
        anyhow::bail!("unsupported host {host}: berth connects to unix sockets (unix:///path)");
    };
    // streams such as `logs -f` and `wait` last as long as the container
    let docker = Docker::connect_with_unix(path, 60 * 60 * 24 * 365, bollard::API_DEFAULT_VERSION)
        .map_err(|e| anyhow::anyhow!("cannot connect to the berth daemon at {host}: {e}"))?;
    let docker = docker.negotiate_version().await.map_err(|e| {
        anyhow::anyhow!(
            "Cannot connect to the berth daemon at {host}. Is the berth daemon running? ({e})"
        )
    })?;
    Ok(Ctx {
        docker: docker.with_timeout(Duration::from_secs(60 * 60 * 24 * 365)),
        socket: path.to_string(),
    })
}

/// Runs the CLI and returns the process exit status.
pub fn main(args: Vec<OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 125 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    if let Some(dir) = &cli.config {
        config::set_dir(dir.clone());
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: {e}");
            return 1;
        }
    };
    let result = rt.block_on(dispatch(cli));
    // a stdin reader may still sit in a blocking read of a terminal: do not
    // wait for it
    rt.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) if is_broken_pipe(&e) => 0,
        Err(e) => match e.downcast_ref::<StatusError>() {
            Some(s) => {
                if !s.message.is_empty() {
                    eprintln!("{}", s.message);
                }
                s.code
            }
            None => {
                eprintln!("{e:#}");
                1
            }
        },
    }
}

async fn service(ctx: &Ctx, c: ServiceCommand) -> anyhow::Result<i32> {
    use commands::services as s;
    match c {
        ServiceCommand::Create(a) => s::create(ctx, *a).await,
        ServiceCommand::Inspect(a) => commands::services_list::inspect(ctx, a).await,
        ServiceCommand::Logs(a) => commands::services_logs::logs(ctx, a).await,
        ServiceCommand::Ls(a) => commands::services_list::ls(ctx, a).await,
        ServiceCommand::Ps(a) => commands::services_list::ps(ctx, a).await,
        ServiceCommand::Rm(a) => s::rm(ctx, a).await,
        ServiceCommand::Rebalance(a) => s::rebalance(ctx, a).await,
        ServiceCommand::Rollback(a) => s::rollback(ctx, a).await,
        ServiceCommand::Scale(a) => s::scale(ctx, a).await,
        ServiceCommand::Update(a) => s::update(ctx, *a).await,
    }
}

async fn secret(ctx: &Ctx, c: SecretCommand) -> anyhow::Result<i32> {
    use commands::secrets_common::{self as common, SECRET};
    match c {
        SecretCommand::Create(a) => commands::secrets::create(ctx, a).await,
        SecretCommand::Inspect(a) => common::inspect(ctx, &SECRET, a).await,
        SecretCommand::Ls(a) => common::ls(ctx, &SECRET, a).await,
        SecretCommand::Rm(a) => common::rm(ctx, &SECRET, a).await,
        SecretCommand::Rotate(a) => commands::secrets::rotate(ctx, a).await,
    }
}

async fn config(ctx: &Ctx, c: ConfigCommand) -> anyhow::Result<i32> {
    use commands::secrets_common::{self as common, CONFIG};
    match c {
        ConfigCommand::Create(a) => commands::configs::create(ctx, a).await,
        ConfigCommand::Inspect(a) => common::inspect(ctx, &CONFIG, a).await,
        ConfigCommand::Ls(a) => common::ls(ctx, &CONFIG, a).await,
        ConfigCommand::Rm(a) => common::rm(ctx, &CONFIG, a).await,
    }
}

/// The reader of our output went away (`| head`): not worth a message.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    use commands::{
        containers as c, copy as cp, images as i, runtime as rt, swarm as sw, system as s,
        volumes as v,
    };
    // `stack config` is the client's alone: no daemon needed
    if let Command::Stack(a) = &cli.command
        && let commands::stack::StackCommand::Config(c) = &a.command
    {
        return commands::stack_config::config(a.orchestrator.is_some(), c);
    }
    let host = resolve_host(cli.host);
    let ctx = connect(&host).await?;
    let ctx = &ctx;
    match cli.command {
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => c::run(ctx, a).await,
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => {
            c::create(ctx, a).await
        }
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => {
            c::start(ctx, a).await
        }
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => c::stop(ctx, a).await,
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => c::kill(ctx, a).await,
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => c::rm(ctx, a).await,
        Command::Ps(a) | Command::Container(ContainerCommand::Ls(a)) => c::ps(ctx, a).await,
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => c::logs(ctx, a).await,
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => c::wait(ctx, a).await,
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => c::exec(ctx, a).await,
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => {
            c::restart(ctx, a).await
        }
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => {
            c::rename(ctx, a).await
        }
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => {
            c::attach(ctx, a).await
        }
        Command::Container(ContainerCommand::Prune(a)) => c::prune(ctx, a).await,
        Command::Build(a)
        | Command::Image(ImageCommand::Build(a))
        | Command::Builder(BuilderCommand::Build(a)) => commands::build::build(ctx, *a).await,
        Command::Builder(BuilderCommand::Prune(a)) => commands::build::builder_prune(ctx, a).await,
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => i::images(ctx, a).await,
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => i::rmi(ctx, a).await,
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => i::import(ctx, a).await,
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => i::pull(ctx, a).await,
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => i::push(ctx, a).await,
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => i::tag(ctx, a).await,
        Command::Login(a) => i::login(ctx, a).await,
        Command::Search(a) => i::search(ctx, a).await,
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => i::save(ctx, a).await,
        Command::History(a) | Command::Image(ImageCommand::History(a)) => i::history(ctx, a).await,
        Command::Image(ImageCommand::Prune(a)) => i::image_prune(ctx, a).await,
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => i::load(ctx, a).await,
        Command::Logout(a) => i::logout(ctx, a).await,
        Command::Inspect(a) => s::inspect(ctx, a, None).await,
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => {
            i::commit(ctx, a).await
        }
        Command::Events(a) | Command::System(SystemCommand::Events(a)) => s::events(ctx, a).await,
        Command::System(SystemCommand::Df(a)) => s::df(ctx, a).await,
        Command::System(SystemCommand::Prune(a)) => s::system_prune(ctx, a).await,
        Command::Pause(a) | Command::Container(ContainerCommand::Pause(a)) => {
            rt::pause(ctx, a).await
        }
        Command::Unpause(a) | Command::Container(ContainerCommand::Unpause(a)) => {
            rt::unpause(ctx, a).await
        }
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => rt::top(ctx, a).await,
        Command::Stats(a) | Command::Container(ContainerCommand::Stats(a)) => {
            rt::stats(ctx, a).await
        }
        Command::Update(a) | Command::Container(ContainerCommand::Update(a)) => {
            rt::update(ctx, a).await
        }
        Command::Port(a) | Command::Container(ContainerCommand::Port(a)) => rt::port(ctx, a).await,
        Command::Cp(a) | Command::Container(ContainerCommand::Cp(a)) => cp::cp(ctx, a).await,
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => {
            cp::export(ctx, a).await
        }
        Command::Diff(a) | Command::Container(ContainerCommand::Diff(a)) => cp::diff(ctx, a).await,
        Command::Volume(VolumeCommand::Create(a)) => v::create(ctx, a).await,
        Command::Volume(VolumeCommand::Ls(a)) => v::ls(ctx, a).await,
        Command::Volume(VolumeCommand::Inspect(a)) => s::inspect(ctx, a, Some("volume")).await,
        Command::Volume(VolumeCommand::Rm(a)) => v::rm(ctx, a).await,
        Command::Volume(VolumeCommand::Prune(a)) => v::prune(ctx, a).await,
        Command::Network(NetworkCommand::Create(a)) => commands::networks::create(ctx, a).await,
        Command::Network(NetworkCommand::Ls(a)) => commands::networks::ls(ctx, a).await,
        Command::Network(NetworkCommand::Inspect(a)) => s::network_inspect(ctx, a).await,
        Command::Network(NetworkCommand::Rm(a)) => commands::networks::rm(ctx, a).await,
        Command::Network(NetworkCommand::Prune(a)) => commands::networks::prune(ctx, a).await,
        Command::Network(NetworkCommand::Connect(a)) => commands::networks::connect(ctx, a).await,
        Command::Network(NetworkCommand::Disconnect(a)) => {
            commands::networks::disconnect(ctx, a).await
        }
        Command::Container(ContainerCommand::Inspect(a)) => {
            s::inspect(ctx, a, Some("container")).await
        }
        Command::Image(ImageCommand::Inspect(a)) => s::inspect(ctx, a, Some("image")).await,
        Command::Version(a) => s::version(ctx, a).await,
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => s::info(ctx, a).await,
        Command::Swarm(SwarmCommand::Init(a)) => sw::init(ctx, a).await,
        Command::Swarm(SwarmCommand::Join(a)) => sw::join(ctx, a).await,
        Command::Swarm(SwarmCommand::JoinToken(a)) => sw::join_token(ctx, a).await,
        Command::Swarm(SwarmCommand::Leave(a)) => sw::leave(ctx, a).await,
        Command::Swarm(SwarmCommand::Update(a)) => commands::swarm_ca::update(ctx, a).await,
        Command::Swarm(SwarmCommand::Ca(a)) => commands::swarm_ca::ca(ctx, a).await,
        Command::Swarm(SwarmCommand::Unlock(a)) => commands::swarm_lock::unlock(ctx, a).await,
        Command::Swarm(SwarmCommand::UnlockKey(a)) => {
            commands::swarm_lock::unlock_key(ctx, a).await
        }
        Command::Node(NodeCommand::Ls(a)) => sw::node_ls(ctx, a).await,
        Command::Node(NodeCommand::Inspect(a)) => sw::node_inspect(ctx, a).await,
        Command::Node(NodeCommand::Update(a)) => commands::nodes::node_update(ctx, a).await,
        Command::Node(NodeCommand::Promote(a)) => {
            commands::nodes::node_set_role(ctx, a, "manager").await
        }
        Command::Node(NodeCommand::Demote(a)) => {
            commands::nodes::node_set_role(ctx, a, "worker").await
        }
        Command::Node(NodeCommand::Rm(a)) => commands::nodes::node_rm(ctx, a).await,
        Command::Node(NodeCommand::Ps(a)) => commands::nodes::node_ps(ctx, a).await,
        Command::Service(c) => service(ctx, c).await,
        Command::Secret(c) => secret(ctx, c).await,
        Command::Config(c) => config(ctx, c).await,
        Command::Stack(a) => commands::stack::stack(ctx, a).await,
    }
}
