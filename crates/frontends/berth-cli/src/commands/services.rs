//! `berth service create|update|rollback|scale|rm`: the docker CLI 28's
//! requests (cli/command/service) and its texts, over raw HTTP so that
//! the daemon's JSON reaches the spec sent back unchanged.

use anyhow::Result;
use serde_json::{Value, json};

use super::services_flags::{CREATE_USAGE, ServiceFlags, UPDATE_USAGE};
use super::services_image;
use super::services_progress::wait_on_service;
use super::services_refs;
use super::services_spec::{
    Checked, CreateFlags, CreateLists, check_common, check_create_lists, create_spec,
};
use super::services_update::{UpdateFlags, check_update_flags, go_order, merged_spec};
use super::swarm::{answer, get_json};
use crate::{Ctx, rawhttp, status};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    #[command(flatten)]
    pub common: ServiceFlags,
    #[command(flatten)]
    pub create: CreateFlags,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE"
    )]
    pub image: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    #[command(flatten)]
    pub common: ServiceFlags,
    #[command(flatten)]
    pub update: UpdateFlags,
    #[arg(value_name = "SERVICE")]
    pub service: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    #[arg(value_name = "SERVICE")]
    pub service: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RebalanceArgs {
    /// Suppress progress output
    #[arg(short = 'q', long)]
    pub quiet: bool,
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    #[arg(value_name = "SERVICE")]
    pub service: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// Exit immediately instead of waiting for the service to converge
    #[arg(short = 'd', long, num_args = 0..=1, require_equals = true, default_missing_value = "true")]
    pub detach: Option<String>,
    #[arg(value_name = "SERVICE=REPLICAS")]
    pub pairs: Vec<String>,
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    #[arg(value_name = "SERVICE")]
    pub services: Vec<String>,
}

/// cli.RequiresMinArgs / RequiresRangeArgs / ExactArgs: `docker:
/// 'docker service x' requires …`, exit status 1 (only the first says
/// "See").
pub fn args_error(what: &str, path: &str, use_line: &str) -> anyhow::Error {
    let see = if what.starts_with("at least") && !what.contains("at most") {
        "See"
    } else {
        "Run"
    };
    cobra_error(&format!("requires {what}"), path, use_line, see)
}

/// cli.NoArgs: `docker: 'docker secret ls' accepts no arguments`.
pub fn no_args_error(path: &str, use_line: &str) -> anyhow::Error {
    cobra_error("accepts no arguments", path, use_line, "Run")
}

fn cobra_error(problem: &str, path: &str, use_line: &str, see: &str) -> anyhow::Error {
    status(
        1,
        format!(
            "docker: 'docker {path}' {problem}\n\nUsage:  docker {path} {use_line}\n\n{see} 'docker {path} --help' for more information"
        ),
    )
}

fn one_service<'a>(v: &'a [String], path: &str, use_line: &str) -> Result<&'a str> {
    match v {
        [one] => Ok(one),
        _ => Err(args_error("1 argument", path, use_line)),
    }
}

/// `X-Registry-Auth` for an image: what `login` saved for its registry,
/// or `{}`, as the docker CLI sends it with `--with-registry-auth`.
pub(crate) fn registry_auth(image: &str) -> String {
    super::images::registry_auth_header(image)
        .into_iter()
        .next()
        .map(|(_, v)| v)
        .unwrap_or_else(|| "e30=".to_string())
}

fn print_warnings(answer: &Value, extra: Option<String>) {
    for w in answer["Warnings"].as_array().into_iter().flatten() {
        eprintln!("{}", w.as_str().unwrap_or_default());
    }
    if let Some(w) = extra {
        eprintln!("{w}");
    }
}

/// What `create` sends before the daemon is asked anything: the spec
/// from the flags (image untagged), and the checked flag values.
pub(crate) struct CreatePlan {
    pub spec: Value,
    pub checked: Checked,
    pub lists: CreateLists,
}

pub(crate) fn create_plan(a: &CreateArgs) -> Result<CreatePlan> {
    let Some((image, args)) = a.image.split_first() else {
        return Err(args_error(
            "at least 1 argument",
            CREATE_USAGE.path,
            CREATE_USAGE.line,
        ));
    };
    let usage = |e: super::services_flags::FlagError| e.with_usage(&CREATE_USAGE);
    let checked = check_common(&a.common).map_err(usage)?;
    let lists = check_create_lists(&a.create).map_err(usage)?;
    let spec = create_spec(image, args, &a.common, &a.create, &checked, &lists)?;
    Ok(CreatePlan {
        spec,
        checked,
        lists,
    })
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    let CreatePlan {
        mut spec,
        checked,
        lists,
    } = create_plan(&a)?;
    let image = a.image.first().cloned().unwrap_or_default();
    super::services_networks::resolve_create_networks(ctx, &mut spec).await?;
    let refs = services_refs::resolve_all(ctx, &lists.secrets, &lists.configs).await?;
    services_refs::apply(&mut spec, &[], &[], refs);
    let auth = checked.registry_auth.then(|| registry_auth(&image));
    let warning =
        services_image::prepare(ctx, &mut spec, !checked.no_resolve_image, auth.as_deref()).await?;
    let headers: Vec<(&str, String)> = auth
        .iter()
        .map(|a| ("X-Registry-Auth", a.clone()))
        .collect();
    let (code, body) =
        rawhttp::post_body(&ctx.socket, "/services/create", &headers, &body_of(&spec)).await?;
    let reply: Value = serde_json::from_slice(&answer(code, body).await?).unwrap_or(json!({}));
    print_warnings(&reply, warning);
    let id = reply["ID"].as_str().unwrap_or_default().to_string();
    println!("{id}");
    if checked.detach {
        return Ok(0);
    }
    wait_on_service(ctx, &id, a.common.quiet).await?;
    Ok(0)
}

pub(crate) async fn inspect_service(ctx: &Ctx, service: &str) -> Result<Value> {
    let path = format!(
        "/services/{}?insertDefaults=false",
        rawhttp::encode(service)
    );
    get_json(ctx, &path).await
}

/// The path of `POST /services/{id}/update` with the query the client
/// library writes (keys sorted: registryAuthFrom, rollback, version).
pub(crate) fn update_path(service: &Value, query: &[(&str, &str)]) -> String {
    let id = service["ID"].as_str().unwrap_or_default();
    let version = service["Version"]["Index"]
        .as_u64()
        .unwrap_or(0)
        .to_string();
    let mut q: Vec<(&str, &str)> = query.to_vec();
    q.push(("version", &version));
    let query = q
        .iter()
        .map(|(k, v)| format!("{k}={}", rawhttp::encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    format!("/services/{}/update?{query}", rawhttp::encode(id))
}

/// The body as Go's json.Encoder writes it: compact, then a newline.
pub(crate) fn body_of(spec: &Value) -> Vec<u8> {
    let mut b = spec.to_string().into_bytes();
    b.push(b'\n');
    b
}

/// Sends the spec back as the service's update; the image is tagged as
/// the client library tags it.
async fn send_update(
    ctx: &Ctx,
    service: &Value,
    spec: &mut Value,
    query: &[(&str, &str)],
    auth: Option<&str>,
) -> Result<Value> {
    tag_image(spec);
    go_order(spec);
    let path = update_path(service, query);
    let headers: Vec<(&str, String)> = auth
        .map(|a| ("X-Registry-Auth", a.to_string()))
        .into_iter()
        .collect();
    let (code, body) = rawhttp::post_body(&ctx.socket, &path, &headers, &body_of(spec)).await?;
    Ok(serde_json::from_slice(&answer(code, body).await?).unwrap_or(json!({})))
}

/// `imageWithTagString` on the spec's image, as every create and update
/// of the client library does.
pub(crate) fn tag_image(spec: &mut Value) {
    if let Some(image) = spec["TaskTemplate"]["ContainerSpec"]["Image"].as_str() {
        spec["TaskTemplate"]["ContainerSpec"]["Image"] = json!(services_image::with_tag(image));
    }
}

pub async fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let name = one_service(&a.service, UPDATE_USAGE.path, UPDATE_USAGE.line)?.to_string();
    let usage = |e: super::services_flags::FlagError| e.with_usage(&UPDATE_USAGE);
    let checked = check_common(&a.common).map_err(usage)?;
    let values = check_update_flags(&a.update).map_err(usage)?;
    let service = inspect_service(ctx, &name).await?;
    if values.rollback && other_flags_given(&a) {
        return Err(status(1, "other flags may not be combined with --rollback"));
    }
    let mut spec = merged_spec(&service, &a.common, &a.update, &values, &checked)?;
    let refs = services_refs::resolve_all(ctx, &values.secrets_add, &values.configs_add).await?;
    services_refs::apply(&mut spec, &a.update.secret_rm, &a.update.config_rm, refs);
    super::services_networks::update_networks(
        ctx,
        &mut spec,
        &values.networks_add,
        &a.update.network_rm,
    )
    .await?;
    let mut warning = None;
    if a.update.image.is_some() {
        let resolve = !checked.no_resolve_image;
        let auth = checked.registry_auth.then(|| {
            registry_auth(
                spec["TaskTemplate"]["ContainerSpec"]["Image"]
                    .as_str()
                    .unwrap_or_default(),
            )
        });
        warning = services_image::prepare(ctx, &mut spec, resolve, auth.as_deref()).await?;
    }
    let auth = checked.registry_auth.then(|| {
        registry_auth(
            spec["TaskTemplate"]["ContainerSpec"]["Image"]
                .as_str()
                .unwrap_or_default(),
        )
    });
    let query = update_query(auth.is_some(), values.rollback);
    let reply = send_update(ctx, &service, &mut spec, &query, auth.as_deref()).await?;
    print_warnings(&reply, warning);
    println!("{name}");
    if checked.detach {
        return Ok(0);
    }
    wait_on_service(ctx, &name, a.common.quiet).await?;
    Ok(0)
}

/// The options of `service update`: the registry credentials come from
/// the spec unless sent, and `--rollback` asks the daemon to roll back.
pub(crate) fn update_query(send_auth: bool, rollback: bool) -> Vec<(&'static str, &'static str)> {
    let mut query = Vec::new();
    if !send_auth {
        query.push(("registryAuthFrom", "spec"));
    }
    if rollback {
        query.push(("rollback", "previous"));
    }
    query
}

/// Whether a flag other than `--rollback`, `-d` and `-q` was given.
pub(crate) fn other_flags_given(a: &UpdateArgs) -> bool {
    let mut common = a.common.clone();
    common.detach = None;
    common.quiet = false;
    let mut own = a.update.clone();
    own.rollback = None;
    common != ServiceFlags::default() || own != UpdateFlags::default()
}

pub async fn rollback(ctx: &Ctx, a: RollbackArgs) -> Result<i32> {
    let name = one_service(&a.service, "service rollback", "[OPTIONS] SERVICE")?.to_string();
    let detach = detach_flag(&a.detach, "service rollback", "[OPTIONS] SERVICE")?;
    let service = inspect_service(ctx, &name).await?;
    let mut spec = service["Spec"].clone();
    let reply = send_update(ctx, &service, &mut spec, &[("rollback", "previous")], None).await?;
    print_warnings(&reply, None);
    println!("{name}");
    if detach {
        return Ok(0);
    }
    wait_on_service(ctx, &name, a.quiet).await?;
    Ok(0)
}

/// `berth service rebalance` (berth's own): moves only the tasks that
/// keep the service from being spread evenly, where `update --force`
/// would replace them all.
pub async fn rebalance(ctx: &Ctx, a: RebalanceArgs) -> Result<i32> {
    let name = one_service(&a.service, "service rebalance", "[OPTIONS] SERVICE")?.to_string();
    let detach = detach_flag(&a.detach, "service rebalance", "[OPTIONS] SERVICE")?;
    let path = format!("/services/{}/rebalance", rawhttp::encode(&name));
    let (code, body) = rawhttp::post_headers(&ctx.socket, &path).await?;
    let reply: Value = serde_json::from_slice(&answer(code, body).await?)?;
    let moving = reply["Tasks"].as_array().map_or(0, Vec::len);
    match moving {
        0 => println!("{name}: already balanced"),
        1 => println!("{name}: 1 task moves"),
        n => println!("{name}: {n} tasks move"),
    }
    if detach || moving == 0 {
        return Ok(0);
    }
    wait_on_service(ctx, &name, a.quiet).await?;
    Ok(0)
}

fn detach_flag(v: &Option<String>, path: &'static str, line: &'static str) -> Result<bool> {
    let usage = super::services_flags::Usage { path, line };
    Ok(super::services_flags::opt_bool("detach", v)
        .map_err(|e| e.with_usage(&usage))?
        .unwrap_or(false))
}

const SCALE_USE: &str = "SERVICE=REPLICAS [SERVICE=REPLICAS...]";

/// `scaleArgs`: every argument is `name=replicas`.
fn check_scale_args(pairs: &[String]) -> Result<()> {
    if pairs.is_empty() {
        return Err(args_error(
            "at least 1 argument",
            "service scale",
            SCALE_USE,
        ));
    }
    for p in pairs {
        if !matches!(p.split_once('='), Some((k, v)) if !k.is_empty() && !v.is_empty()) {
            return Err(status(
                1,
                format!(
                    "invalid scale specifier '{p}'.\nSee 'docker service scale --help'.\n\nUsage:  docker service scale {SCALE_USE}\n\nScale one or multiple replicated services"
                ),
            ));
        }
    }
    Ok(())
}

/// `runServiceScale`: the replica count (or the job's completions) set
/// in the spec, sent back without any registry option.
async fn scale_one(ctx: &Ctx, name: &str, replicas: u64) -> Result<Value> {
    let service = inspect_service(ctx, name).await?;
    let mut spec = service["Spec"].clone();
    let mode = &mut spec["Mode"];
    if mode["Replicated"].is_object() {
        mode["Replicated"]["Replicas"] = json!(replicas);
    } else if mode["ReplicatedJob"].is_object() {
        mode["ReplicatedJob"]["TotalCompletions"] = json!(replicas);
    } else {
        return Err(anyhow::anyhow!(
            "scale can only be used with replicated or replicated-job mode"
        ));
    }
    send_update(ctx, &service, &mut spec, &[], None).await
}

/// The text of an error for a per-service message: the daemon's words
/// without the exit status wrapper.
fn plain(e: &anyhow::Error) -> String {
    e.to_string()
}

pub async fn scale(ctx: &Ctx, a: ScaleArgs) -> Result<i32> {
    check_scale_args(&a.pairs)?;
    let detach = detach_flag(&a.detach, "service scale", SCALE_USE)?;
    let mut errors = Vec::new();
    let mut scaled = Vec::new();
    for p in &a.pairs {
        let (name, count) = p.split_once('=').unwrap_or((p, ""));
        let replicas = match count.parse::<u64>() {
            Ok(r) if count.bytes().all(|b| b.is_ascii_digit()) => r,
            _ => {
                let why = crate::goparse::parse_uint(count).err().unwrap_or_else(|| {
                    format!(
                        "strconv.ParseUint: parsing {}: invalid syntax",
                        berth_units::go_quote(count)
                    )
                });
                errors.push(format!("{name}: invalid replicas value {count}: {why}"));
                continue;
            }
        };
        match scale_one(ctx, name, replicas).await {
            Ok(reply) => {
                print_warnings(&reply, None);
                println!("{name} scaled to {replicas}");
                scaled.push(name.to_string());
            }
            Err(e) => errors.push(format!("{name}: {}", plain(&e))),
        }
    }
    if !detach {
        for name in &scaled {
            if let Err(e) = wait_on_service(ctx, name, false).await {
                errors.push(format!("{name}: {}", plain(&e)));
            }
        }
    }
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    if a.services.is_empty() {
        return Err(args_error(
            "at least 1 argument",
            "service rm",
            "SERVICE [SERVICE...]",
        ));
    }
    let mut errors = Vec::new();
    for s in &a.services {
        let (code, body) =
            rawhttp::delete(&ctx.socket, &format!("/services/{}", rawhttp::encode(s))).await?;
        match answer(code, body).await {
            Ok(_) => println!("{s}"),
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(status(1, errors.join("\n")));
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_arguments_are_checked_as_docker_checks_them() {
        assert!(check_scale_args(&["a=1".into(), "b=2".into()]).is_ok());
        let e = check_scale_args(&["a".into()]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid scale specifier 'a'.\nSee 'docker service scale --help'.\n\nUsage:  docker service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nScale one or multiple replicated services"
        );
        let e = check_scale_args(&[]).unwrap_err();
        assert!(e.to_string().starts_with(
            "docker: 'docker service scale' requires at least 1 argument\n\nUsage:  docker service scale SERVICE=REPLICAS"
        ));
    }
}
