//! `berth stack deploy`: the requests of the docker CLI 28's
//! `deployCompose`, in its order (info, prune, external networks,
//! networks, secrets, configs, references, services), with berth's
//! deterministic service order and `depends_on` waits.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use anyhow::Result;
use berth_compose::{ObjectCreate, ServiceCreate, StackSpec};
use serde_json::{Value, json};

use super::services::{body_of, registry_auth};
use super::services_flags::{Usage, opt_bool};
use super::services_image;
use super::services_list::filters_json;
use super::services_progress::wait_on_service;
use super::stack::{
    DeployArgs, compose_file_names, list_json, load_compose, one_stack, print_load_warnings,
    stack_objects,
};
use super::stack_plan::{
    ResolveImage, ServiceAction, by_name, external_network_error, networks_to_create,
    service_action, services_to_prune,
};
use super::stack_rm::remove_services;
use super::stack_wait::{dependency_waits, wait_for};
use super::swarm::{answer, get_json};
use crate::{Ctx, rawhttp, status};

const USAGE: Usage = Usage {
    path: "stack deploy",
    line: "[OPTIONS] STACK",
};

const DETACH_NOTE: &str = "Since --detach=false was not specified, tasks will be created in the background.\nIn a future release, --detach=false will become the default.";

const NOT_A_MANAGER: &str = "this node is not a swarm manager. Use \"docker swarm init\" or \"docker swarm join\" to connect this node to swarm and try again";

/// The flags once checked.
struct Options {
    resolve: ResolveImage,
    detach: bool,
    wait_timeout: Duration,
}

fn check_options(a: &DeployArgs) -> Result<Options> {
    let detach = opt_bool("detach", &a.detach).map_err(|e| e.with_usage(&USAGE))?;
    let resolve = ResolveImage::parse(&a.resolve_image).map_err(|e| status(1, e))?;
    let wait_timeout = berth_units::parse_go_duration(&a.wait_timeout)
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            status(
                125,
                format!(
                    "invalid argument \"{}\" for \"--wait-timeout\" flag: time: invalid duration {}",
                    a.wait_timeout,
                    berth_units::go_quote(&a.wait_timeout)
                ),
            )
        })?;
    if detach.is_none() {
        eprintln!("{DETACH_NOTE}");
    }
    Ok(Options {
        resolve,
        detach: detach.unwrap_or(true),
        wait_timeout: Duration::from_nanos(wait_timeout as u64),
    })
}

pub async fn deploy(ctx: &Ctx, a: DeployArgs) -> Result<i32> {
    let namespace = one_stack(&a.stack, USAGE.path)?.to_string();
    let loaded = load_compose(&compose_file_names(&a.compose_files)?)?;
    print_load_warnings(&loaded.warnings);
    let order =
        berth_compose::deploy_order(&loaded.project).map_err(|e| status(1, e.to_string()))?;
    let opts = check_options(&a)?;
    let spec = berth_compose::convert(&loaded.project, &namespace)
        .map_err(|e| status(1, e.to_string()))?;
    let info = get_json(ctx, "/info").await?;
    if info["Swarm"]["ControlAvailable"].as_bool() != Some(true) {
        return Err(status(1, NOT_A_MANAGER));
    }
    if a.prune {
        let keep: BTreeSet<&str> = loaded.project.services.keys().map(String::as_str).collect();
        prune(ctx, &namespace, &keep).await;
    }
    check_external_networks(ctx, &spec.external_networks).await?;
    create_networks(ctx, &namespace, &spec).await?;
    for s in &spec.secrets {
        create_or_update(ctx, "secret", s).await?;
    }
    for c in &spec.configs {
        create_or_update(ctx, "config", c).await?;
    }
    let mut services = spec.services;
    for s in &mut services {
        resolve_references(ctx, s).await?;
    }
    let mut existing = by_name(&stack_objects(ctx, "services", &namespace).await?);
    let by_key: BTreeMap<String, ServiceCreate> =
        services.into_iter().map(|s| (s.name.clone(), s)).collect();
    let mut deployed = Vec::new();
    for key in &order {
        let Some(service) = by_key.get(key) else {
            continue;
        };
        let waits = dependency_waits(&loaded.project, &namespace, key);
        for dep in &waits {
            wait_for(ctx, dep, opts.wait_timeout).await?;
        }
        if !waits.is_empty() {
            // a wait can be long and the stack's services change meanwhile
            // (update status): update at the versions they have now
            existing = by_name(&stack_objects(ctx, "services", &namespace).await?);
        }
        let current = existing.get(service.full_name());
        let id = deploy_service(ctx, service, current, &opts, a.with_registry_auth).await?;
        deployed.push(id);
    }
    if opts.detach {
        return Ok(0);
    }
    wait_on_all(ctx, &deployed, a.quiet).await
}

/// `pruneServices`: a listing error is printed and the deploy goes on.
async fn prune(ctx: &Ctx, namespace: &str, keep: &BTreeSet<&str>) {
    let existing = match stack_objects(ctx, "services", namespace).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("Failed to list services: {e}");
            Vec::new()
        }
    };
    remove_services(ctx, services_to_prune(namespace, &existing, keep)).await;
}

async fn check_external_networks(ctx: &Ctx, names: &[String]) -> Result<()> {
    for name in names {
        let path = format!("/networks/{}", rawhttp::encode(name));
        let (code, body) = rawhttp::get(&ctx.socket, &path).await?;
        let found = if code == 404 {
            None
        } else {
            Some(serde_json::from_slice::<Value>(&answer(code, body).await?)?)
        };
        if let Some(e) = external_network_error(name, found.as_ref()) {
            return Err(status(1, e));
        }
    }
    Ok(())
}

async fn create_networks(ctx: &Ctx, namespace: &str, spec: &StackSpec) -> Result<()> {
    let existing = stack_objects(ctx, "networks", namespace).await?;
    for n in networks_to_create(&spec.networks, &existing) {
        println!("Creating network {}", n.name);
        let (code, body) =
            rawhttp::post_body(&ctx.socket, "/networks/create", &[], &body_of(&n.body)).await?;
        answer(code, body)
            .await
            .map_err(|e| status(1, format!("failed to create network {}: {e}", n.name)))?;
    }
    Ok(())
}

/// `createSecrets` / `createConfigs` for one object: an update of the
/// whole spec when one of the name exists, else a create.
async fn create_or_update(ctx: &Ctx, kind: &str, object: &ObjectCreate) -> Result<()> {
    let path = format!("/{kind}s/{}", rawhttp::encode(&object.name));
    let (code, body) = rawhttp::get(&ctx.socket, &path).await?;
    if code == 404 {
        println!("Creating {kind} {}", object.name);
        let path = format!("/{kind}s/create");
        let (code, body) =
            rawhttp::post_body(&ctx.socket, &path, &[], &body_of(&object.spec)).await?;
        answer(code, body)
            .await
            .map_err(|e| status(1, format!("failed to create {kind} {}: {e}", object.name)))?;
        return Ok(());
    }
    let found: Value = serde_json::from_slice(&answer(code, body).await?)?;
    let id = found["ID"].as_str().unwrap_or_default();
    let version = found["Version"]["Index"].as_u64().unwrap_or(0);
    let path = format!("/{kind}s/{}/update?version={version}", rawhttp::encode(id));
    let (code, body) = rawhttp::post_body(&ctx.socket, &path, &[], &body_of(&object.spec)).await?;
    answer(code, body)
        .await
        .map_err(|e| status(1, format!("failed to update {kind} {}: {e}", object.name)))?;
    Ok(())
}

/// `ParseSecrets` / `ParseConfigs` for one service: one listing by name
/// per kind that has references, exact names kept.
async fn resolve_references(ctx: &Ctx, service: &mut ServiceCreate) -> Result<()> {
    let secrets = lookup_ids(ctx, "secrets", &service.secret_names).await?;
    let configs = lookup_ids(ctx, "configs", &service.config_names).await?;
    service
        .resolve_references(
            |name| secrets.get(name).cloned(),
            |name| configs.get(name).cloned(),
        )
        .map_err(|e| status(1, format!("service {}: {e}", service.name)))
}

async fn lookup_ids(ctx: &Ctx, kind: &str, names: &[String]) -> Result<BTreeMap<String, String>> {
    if names.is_empty() {
        return Ok(BTreeMap::new());
    }
    let pairs: Vec<(String, String)> = names
        .iter()
        .map(|n| ("name".to_string(), n.clone()))
        .collect();
    let path = format!("/{kind}?filters={}", rawhttp::encode(&filters_json(&pairs)));
    Ok(exact_ids(&list_json(ctx, &path).await?))
}

/// Name to ID of a listing (the last of a name wins, as a Go map fills).
pub fn exact_ids(listed: &[Value]) -> BTreeMap<String, String> {
    listed
        .iter()
        .filter_map(|o| {
            Some((
                o["Spec"]["Name"].as_str()?.to_string(),
                o["ID"].as_str()?.to_string(),
            ))
        })
        .collect()
}

/// Creates or updates one service; answers its ID.
async fn deploy_service(
    ctx: &Ctx,
    service: &ServiceCreate,
    current: Option<&Value>,
    opts: &Options,
    send_auth: bool,
) -> Result<String> {
    let name = service.full_name().to_string();
    let mut action = service_action(service, current, opts.resolve);
    let image = service.spec["TaskTemplate"]["ContainerSpec"]["Image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let auth = send_auth.then(|| registry_auth(&image));
    println!("{}", action.announcement(&name));
    let query = action.query_registry();
    let warning = services_image::prepare(ctx, action.spec_mut(), query, auth.as_deref()).await?;
    let headers: Vec<(&str, String)> = auth
        .iter()
        .map(|a| ("X-Registry-Auth", a.clone()))
        .collect();
    match action {
        ServiceAction::Create { spec, .. } => {
            let (code, body) =
                rawhttp::post_body(&ctx.socket, "/services/create", &headers, &body_of(&spec))
                    .await?;
            let reply = answer(code, body)
                .await
                .map_err(|e| status(1, format!("failed to create service {name}: {e}")))?;
            let reply: Value = serde_json::from_slice(&reply).unwrap_or(json!({}));
            Ok(reply["ID"].as_str().unwrap_or_default().to_string())
        }
        ServiceAction::Update { id, path, spec, .. } => {
            let (code, body) =
                rawhttp::post_body(&ctx.socket, &path, &headers, &body_of(&spec)).await?;
            let reply = answer(code, body)
                .await
                .map_err(|e| status(1, format!("failed to update service {name}: {e}")))?;
            let reply: Value = serde_json::from_slice(&reply).unwrap_or(json!({}));
            for w in reply["Warnings"].as_array().into_iter().flatten() {
                eprintln!("{}", w.as_str().unwrap_or_default());
            }
            if let Some(w) = warning {
                eprintln!("{w}");
            }
            Ok(id)
        }
    }
}

/// `-d=false`: `WaitOnService` for each service; the failures together.
async fn wait_on_all(ctx: &Ctx, ids: &[String], quiet: bool) -> Result<i32> {
    let mut errors = Vec::new();
    for id in ids {
        if let Err(e) = wait_on_service(ctx, id, quiet).await {
            errors.push(format!("{id}: {e}"));
        }
    }
    if errors.is_empty() {
        return Ok(0);
    }
    Err(status(1, errors.join("\n")))
}
