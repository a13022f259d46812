use anyhow::Result;

use crate::output::{json_indent, print_format, render_template};
use crate::{Ctx, daemon_error, status};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Return JSON for specified type (container or image)
    #[arg(long = "type")]
    kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short = 's', long)]
    size: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

/// `network inspect`: `--verbose` adds each swarm network's services.
#[derive(clap::Args, Debug)]
pub struct NetworkInspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Verbose output for diagnostics
    #[arg(short = 'v', long)]
    verbose: bool,
    #[arg(required = true)]
    names: Vec<String>,
}

pub async fn network_inspect(ctx: &Ctx, a: NetworkInspectArgs) -> Result<i32> {
    let args = InspectArgs {
        format: a.format,
        kind: None,
        size: a.verbose,
        names: a.names,
    };
    // `size` is the details flag `inspect_one` reads: for a network, its
    // services
    inspect(ctx, args, Some("network")).await
}

pub async fn inspect(ctx: &Ctx, a: InspectArgs, forced: Option<&str>) -> Result<i32> {
    let kind = forced.map(String::from).or(a.kind.clone());
    if let Some(k) = &kind
        && !matches!(k.as_str(), "container" | "image" | "volume" | "network")
    {
        return Err(status(
            1,
            format!("berth: \"{k}\" is not a valid value for --type"),
        ));
    }
    let mut out = Vec::new();
    let mut failed = false;
    for n in &a.names {
        let found = inspect_one(ctx, n, kind.as_deref(), a.size).await?;
        match found {
            Some(v) => out.push(v),
            None => {
                let what = match kind.as_deref() {
                    Some("container") => "container",
                    Some("image") => "image",
                    Some("volume") => "volume",
                    Some("network") => "network",
                    _ => "object",
                };
                eprintln!("Error: No such {what}: {n}");
                failed = true;
            }
        }
    }
    match &a.format {
        // the docker CLI's JSON inspector: one compact array
        Some(f) if f == "json" => println!(
            "{}",
            berth_gotmpl::go_json(&serde_json::Value::Array(out).to_string())
        ),
        Some(f) => {
            for v in &out {
                println!(
                    "{}",
                    render_template(f, v).map_err(|e| status(1, format!("berth: {e}")))?
                );
            }
        }
        None => println!("{}", json_indent(&serde_json::Value::Array(out))?),
    }
    Ok(if failed { 1 } else { 0 })
}

/// The first object named `n` among the kinds asked for, as the daemon
/// sent it: every field kept, as the docker CLI prints the raw answer.
/// `details` asks for what a kind adds on request: a container's sizes,
/// a network's services.
async fn inspect_one(
    ctx: &Ctx,
    n: &str,
    kind: Option<&str>,
    details: bool,
) -> Result<Option<serde_json::Value>> {
    let wanted = |k: &str| kind.is_none_or(|want| want == k);
    let name = crate::rawhttp::encode(n);
    let paths = [
        (
            "container",
            format!(
                "/containers/{name}/json{}",
                if details { "?size=1" } else { "" }
            ),
        ),
        ("image", format!("/images/{name}/json")),
        ("volume", format!("/volumes/{name}")),
        (
            "network",
            format!(
                "/networks/{name}{}",
                if details { "?verbose=true" } else { "" }
            ),
        ),
    ];
    for (k, path) in paths {
        if !wanted(k) {
            continue;
        }
        let (code, body) = crate::rawhttp::get(&ctx.socket, &path).await?;
        match code {
            200 => return Ok(Some(serde_json::from_slice(&body.read_all().await?)?)),
            404 => {}
            _ => {
                let msg = body.error_message().await;
                return Err(status(1, format!("Error response from daemon: {msg}")));
            }
        }
    }
    Ok(None)
}

#[derive(clap::Args, Debug)]
pub struct VersionArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
}

pub async fn version(ctx: &Ctx, a: VersionArgs) -> Result<i32> {
    let v = ctx
        .docker
        .version()
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let arch = std::env::consts::ARCH.replace("x86_64", "amd64");
    let commit = option_env!("BERTH_GIT_COMMIT").unwrap_or("unknown");
    if let Some(f) = &a.format {
        // the docker CLI's client fields
        let all = serde_json::json!({
            "Client": {
                "Platform": {"Name": ""},
                "Version": env!("CARGO_PKG_VERSION"),
                "ApiVersion": v.api_version,
                "DefaultAPIVersion": v.api_version,
                "GitCommit": commit,
                "GoVersion": "rust",
                "Os": "linux",
                "Arch": arch,
                "BuildTime": "",
                "Context": "default",
            },
            "Server": v,
        });
        println!(
            "{}",
            render_template(f, &all).map_err(|e| status(1, format!("berth: {e}")))?
        );
        return Ok(0);
    }
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    println!("Client:");
    println!(" Version:           {}", env!("CARGO_PKG_VERSION"));
    println!(" API version:       {}", s(&v.api_version));
    println!(" Go version:        rust");
    println!(" Git commit:        {commit}");
    println!(" OS/Arch:           linux/{arch}");
    println!(" Context:           default");
    println!();
    println!(
        "Server: {}",
        v.platform
            .as_ref()
            .map(|p| p.name.clone())
            .unwrap_or_default()
    );
    println!(" Engine:");
    println!("  Version:          {}", s(&v.version));
    println!(
        "  API version:      {} (minimum version {})",
        s(&v.api_version),
        s(&v.min_api_version)
    );
    println!("  Git commit:       {}", s(&v.git_commit));
    println!("  OS/Arch:          {}/{}", s(&v.os), s(&v.arch));
    println!("  Experimental:     {}", v.experimental.unwrap_or(false));
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct InfoArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
}

pub async fn info(ctx: &Ctx, a: InfoArgs) -> Result<i32> {
    let i = ctx
        .docker
        .info()
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    if let Some(f) = &a.format {
        println!(
            "{}",
            render_template(f, &serde_json::to_value(&i)?)
                .map_err(|e| status(1, format!("berth: {e}")))?
        );
        return Ok(0);
    }
    let s = |o: &Option<String>| o.clone().unwrap_or_default();
    let n = |o: Option<i64>| o.unwrap_or(0);
    println!("Client:");
    println!(" Version:    {}", env!("CARGO_PKG_VERSION"));
    println!();
    println!("Server:");
    println!(" Containers: {}", n(i.containers));
    println!("  Running: {}", n(i.containers_running));
    println!("  Paused: {}", n(i.containers_paused));
    println!("  Stopped: {}", n(i.containers_stopped));
    println!(" Images: {}", n(i.images));
    println!(" Server Version: {}", s(&i.server_version));
    println!(" Storage Driver: {}", s(&i.driver));
    for kv in i.driver_status.clone().unwrap_or_default() {
        if kv.len() == 2 {
            println!("  {}: {}", kv[0], kv[1]);
        }
    }
    println!(" Logging Driver: {}", s(&i.logging_driver));
    println!(
        " Cgroup Driver: {}",
        i.cgroup_driver.map(|c| c.to_string()).unwrap_or_default()
    );
    println!(
        " Cgroup Version: {}",
        i.cgroup_version.map(|c| c.to_string()).unwrap_or_default()
    );
    if let Some(p) = &i.plugins {
        println!(" Plugins:");
        let list = |v: &Option<Vec<String>>| v.clone().unwrap_or_default().join(" ");
        println!("  Volume: {}", list(&p.volume));
        println!("  Network: {}", list(&p.network));
        println!("  Log: {}", list(&p.log));
    }
    if let Some(state) = i.swarm.as_ref().and_then(|s| s.local_node_state) {
        println!(" Swarm: {state}");
    }
    if let Some(r) = &i.runtimes {
        let mut names: Vec<&String> = r.keys().collect();
        names.sort();
        let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
        println!(" Runtimes: {}", names.join(" "));
    }
    println!(" Default Runtime: {}", s(&i.default_runtime));
    if let Some(b) = &i.init_binary {
        println!(" Init Binary: {b}");
    }
    // empty, as the docker CLI prints them for a daemon without them
    let commit = |c: &Option<bollard::models::Commit>| {
        c.as_ref().and_then(|c| c.id.clone()).unwrap_or_default()
    };
    println!(" containerd version: {}", commit(&i.containerd_commit));
    println!(" runc version: {}", commit(&i.runc_commit));
    println!(" init version: {}", commit(&i.init_commit));
    println!(" Security Options:");
    // "name=seccomp,profile=builtin" as the docker CLI shows it
    for o in i.security_options.clone().unwrap_or_default() {
        for (n, kv) in o.split(',').enumerate() {
            match kv.split_once('=') {
                Some(("name", v)) if n == 0 => println!("  {v}"),
                Some((k, v)) => {
                    let mut k = k.to_string();
                    if let Some(f) = k.get_mut(0..1) {
                        f.make_ascii_uppercase();
                    }
                    println!("   {k}: {v}");
                }
                None => println!("  {kv}"),
            }
        }
    }
    println!(" Kernel Version: {}", s(&i.kernel_version));
    println!(" Operating System: {}", s(&i.operating_system));
    println!(" OSType: {}", s(&i.os_type));
    println!(" Architecture: {}", s(&i.architecture));
    println!(" CPUs: {}", n(i.ncpu));
    println!(
        " Total Memory: {}",
        berth_units::bytes_size(n(i.mem_total) as f64)
    );
    println!(" Name: {}", s(&i.name));
    println!(" ID: {}", s(&i.id));
    println!(" Docker Root Dir: {}", s(&i.docker_root_dir));
    println!(" Debug Mode: {}", i.debug.unwrap_or(false));
    let labels = i.labels.clone().unwrap_or_default();
    if !labels.is_empty() {
        println!(" Labels:");
        for l in labels {
            println!("  {l}");
        }
    }
    println!(" Experimental: {}", i.experimental_build.unwrap_or(false));
    if let Some(rc) = &i.registry_config {
        let cidrs = rc.insecure_registry_cidrs.clone().unwrap_or_default();
        let mut insecure: Vec<String> = rc
            .index_configs
            .clone()
            .unwrap_or_default()
            .into_values()
            .filter(|c| c.secure == Some(false))
            .filter_map(|c| c.name)
            .collect();
        insecure.sort();
        if !cidrs.is_empty() || !insecure.is_empty() {
            println!(" Insecure Registries:");
            for r in insecure.iter().chain(cidrs.iter()) {
                println!("  {r}");
            }
        }
        let mirrors = rc.mirrors.clone().unwrap_or_default();
        if !mirrors.is_empty() {
            println!(" Registry Mirrors:");
            for m in mirrors {
                println!("  {m}");
            }
        }
    }
    println!(
        " Live Restore Enabled: {}",
        i.live_restore_enabled.unwrap_or(false)
    );
    println!();
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long)]
    since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long)]
    until: Option<String>,
}

/// docker's timestamp flags: a duration before now, RFC 3339, or unix
/// seconds; sent as "seconds.nanoseconds".
fn timestamp_param(v: &str) -> Result<String> {
    if let Some(d) = berth_units::parse_go_duration(v) {
        let t = chrono::Utc::now().timestamp_nanos_opt().unwrap_or(0) - d;
        return Ok(format!(
            "{}.{:09}",
            t.div_euclid(1_000_000_000),
            t.rem_euclid(1_000_000_000)
        ));
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        let n = t.timestamp_nanos_opt().unwrap_or(0);
        return Ok(format!(
            "{}.{:09}",
            n.div_euclid(1_000_000_000),
            n.rem_euclid(1_000_000_000)
        ));
    }
    if v.split('.')
        .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
    {
        return Ok(v.to_string());
    }
    Err(status(1, format!("berth: invalid timestamp: {v}")))
}

pub async fn events(ctx: &Ctx, a: EventsArgs) -> Result<i32> {
    use futures_util::StreamExt;
    use std::io::Write;
    let opts = bollard::query_parameters::EventsOptions {
        since: a.since.as_deref().map(timestamp_param).transpose()?,
        until: a.until.as_deref().map(timestamp_param).transpose()?,
        filters: super::containers::parse_filters(&a.filter)?,
    };
    let mut stream = ctx.docker.events(Some(opts));
    while let Some(ev) = stream.next().await {
        let ev = ev.map_err(|e| status(1, daemon_error(&e)))?;
        let mut v = serde_json::to_value(&ev)?;
        // Go marshals a map with sorted keys; bollard's is a HashMap
        if let Some(attrs) = v["Actor"]["Attributes"].as_object_mut() {
            let sorted: std::collections::BTreeMap<_, _> =
                std::mem::take(attrs).into_iter().collect();
            attrs.extend(sorted);
        }
        let text = match a.format.as_deref().filter(|f| !f.is_empty()) {
            Some(f) => render_template(f, &v).map_err(|e| status(1, format!("berth: {e}")))?,
            None => {
                let nanos = ev.time_nano.unwrap_or(0);
                let t = chrono::DateTime::from_timestamp(
                    nanos.div_euclid(1_000_000_000),
                    nanos.rem_euclid(1_000_000_000) as u32,
                )
                .unwrap_or_default()
                .format("%Y-%m-%dT%H:%M:%S%.9fZ");
                let actor = ev.actor.clone().unwrap_or_default();
                let mut attrs: Vec<(String, String)> =
                    actor.attributes.unwrap_or_default().into_iter().collect();
                attrs.sort();
                let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
                let kind = serde_json::to_value(ev.typ)?
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                format!(
                    "{t} {kind} {} {} ({})",
                    ev.action.unwrap_or_default(),
                    actor.id.unwrap_or_default(),
                    attrs.join(", ")
                )
            }
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert!(timestamp_param("1700000000").is_ok());
        assert!(timestamp_param("yesterday").is_err());
    }
}

#[derive(clap::Args, Debug)]
pub struct DfArgs {
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
}

/// `system df`: the docker CLI's summary and verbose tables, computed the
/// way it computes them from `GET /system/df`.
pub async fn df(ctx: &Ctx, a: DfArgs) -> Result<i32> {
    let (code, body) = crate::rawhttp::get(&ctx.socket, "/system/df").await?;
    if code != 200 {
        let msg = body.error_message().await;
        return Err(status(1, format!("Error response from daemon: {msg}")));
    }
    let v: serde_json::Value = serde_json::from_slice(&body.read_all().await?)?;
    let arr = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let (images, containers, volumes, cache) = (
        arr("Images"),
        arr("Containers"),
        arr("Volumes"),
        arr("BuildCache"),
    );
    let i64_of = |x: &serde_json::Value, k: &str| x[k].as_i64().unwrap_or(0);

    let cache_total: i64 = cache.iter().map(|c| i64_of(c, "Size")).sum();
    let layers = v["LayersSize"].as_i64().unwrap_or(0);
    let rows = df_summary(layers, &images, &containers, &volumes, &cache);

    let headers = [
        ("Type", "TYPE"),
        ("TotalCount", "TOTAL"),
        ("Active", "ACTIVE"),
        ("Size", "SIZE"),
        ("Reclaimable", "RECLAIMABLE"),
    ];
    if !a.verbose {
        crate::output::print_format_or(
            a.format.as_deref(),
            "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}",
            &rows,
            &headers,
        )?;
        return Ok(0);
    }

    // a template of its own (`json` among them) gets the four lists as the
    // docker CLI gives them: full ids, every row field
    if let Some(f) = a
        .format
        .as_deref()
        .filter(|f| !f.is_empty() && !f.starts_with("table"))
    {
        let obj = df_verbose_rows(&images, &containers, &volumes, &cache);
        println!(
            "{}",
            render_template(f, &obj).map_err(|e| status(1, format!("berth: {e}")))?
        );
        return Ok(0);
    }
    print_df_tables(&images, &containers, &volumes, cache_total)?;
    Ok(0)
}

/// `system df`'s summary: a row per kind of object.
fn df_summary(
    layers: i64,
    images: &[serde_json::Value],
    containers: &[serde_json::Value],
    volumes: &[serde_json::Value],
    cache: &[serde_json::Value],
) -> Vec<serde_json::Value> {
    use berth_units::human_size4;
    let i64_of = |x: &serde_json::Value, k: &str| x[k].as_i64().unwrap_or(0);
    let with_pct = |reclaim: i64, total: i64| {
        if total > 0 {
            format!(
                "{} ({}%)",
                human_size4(reclaim as f64),
                100 * reclaim / total
            )
        } else {
            human_size4(reclaim as f64)
        }
    };
    let used: i64 = images
        .iter()
        .filter(|i| i64_of(i, "Containers") != 0)
        .filter(|i| i64_of(i, "Size") != -1 && i64_of(i, "SharedSize") != -1)
        .map(|i| i64_of(i, "Size") - i64_of(i, "SharedSize"))
        .sum();
    let running = |c: &serde_json::Value| c["State"].as_str() == Some("running");
    let rw_total: i64 = containers.iter().map(|c| i64_of(c, "SizeRw")).sum();
    let rw_idle: i64 = containers
        .iter()
        .filter(|c| !running(c))
        .map(|c| i64_of(c, "SizeRw"))
        .sum();
    let vsize = |x: &serde_json::Value| x["UsageData"]["Size"].as_i64().unwrap_or(-1).max(0);
    let vrefs = |x: &serde_json::Value| x["UsageData"]["RefCount"].as_i64().unwrap_or(0);
    let vol_total: i64 = volumes.iter().map(vsize).sum();
    let vol_idle: i64 = volumes.iter().filter(|x| vrefs(x) == 0).map(vsize).sum();
    let cache_total: i64 = cache.iter().map(|c| i64_of(c, "Size")).sum();
    // alphabetical keys: `{{json .}}` prints them as the docker CLI's map
    let row = |t: &str, total: usize, active: usize, size: String, reclaim: String| {
        serde_json::json!({
            "Active": active.to_string(),
            "Reclaimable": reclaim,
            "Size": size,
            "TotalCount": total.to_string(),
            "Type": t,
        })
    };
    let rows = vec![
        row(
            "Images",
            images.len(),
            images
                .iter()
                .filter(|i| i64_of(i, "Containers") > 0)
                .count(),
            human_size4(layers as f64),
            with_pct(layers - used, layers),
        ),
        row(
            "Containers",
            containers.len(),
            containers.iter().filter(|c| running(c)).count(),
            human_size4(rw_total as f64),
            with_pct(rw_idle, rw_total),
        ),
        row(
            "Local Volumes",
            volumes.len(),
            volumes.iter().filter(|x| vrefs(x) > 0).count(),
            human_size4(vol_total as f64),
            with_pct(vol_idle, vol_total),
        ),
        row(
            "Build Cache",
            cache.len(),
            0,
            human_size4(cache_total as f64),
            human_size4(cache_total as f64),
        ),
    ];
    rows
}

/// `system df -v`: a table per kind of object.
fn print_df_tables(
    images: &[serde_json::Value],
    containers: &[serde_json::Value],
    volumes: &[serde_json::Value],
    cache_total: i64,
) -> Result<()> {
    use berth_units::{human_size, human_size4};
    let i64_of = |x: &serde_json::Value, k: &str| x[k].as_i64().unwrap_or(0);
    let vrefs = |x: &serde_json::Value| x["UsageData"]["RefCount"].as_i64().unwrap_or(0);
    println!("Images space usage:\n");
    let img_rows: Vec<serde_json::Value> = images
        .iter()
        .flat_map(|i| {
            let tags = repo_tags_or_none(i);
            let size = i64_of(i, "Size");
            let shared = i64_of(i, "SharedSize");
            tags.into_iter().map(move |t| {
                let (repo, tag) = super::images::split_repo_tag(&t);
                serde_json::json!({
                    "Repository": repo, "Tag": tag,
                    "ID": crate::output::short_id(i["Id"].as_str().unwrap_or_default()),
                    "CreatedSince": crate::output::ago(i64_of(i, "Created")),
                    "Size": human_size(size as f64),
                    "SharedSize": human_size4(shared as f64),
                    "UniqueSize": human_size4((size - shared) as f64),
                    "Containers": i64_of(i, "Containers").to_string(),
                })
            })
        })
        .collect();
    print_format(
        Some(
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}",
        ),
        &img_rows,
        &[
            ("Repository", "REPOSITORY"),
            ("Tag", "TAG"),
            ("ID", "IMAGE ID"),
            ("CreatedSince", "CREATED"),
            ("Size", "SIZE"),
            ("SharedSize", "SHARED SIZE"),
            ("UniqueSize", "UNIQUE SIZE"),
            ("Containers", "CONTAINERS"),
        ],
    )?;

    println!("\nContainers space usage:\n");
    let c_rows: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            let image = c["Image"].as_str().unwrap_or_default();
            let image = if image.starts_with("sha256:") { crate::output::short_id(image) } else { image.to_string() };
            let volumes = c["Mounts"]
                .as_array()
                .map(|m| m.iter().filter(|m| m["Type"].as_str() == Some("volume")).count())
                .unwrap_or(0);
            serde_json::json!({
                "ID": crate::output::short_id(c["Id"].as_str().unwrap_or_default()),
                "Image": image,
                "Command": crate::output::go_quote(&crate::output::ellipsis(c["Command"].as_str().unwrap_or_default(), 20)),
                "LocalVolumes": volumes.to_string(),
                "Size": human_size(i64_of(c, "SizeRw") as f64),
                "RunningFor": crate::output::ago(i64_of(c, "Created")),
                "Status": c["Status"].as_str().unwrap_or_default(),
                "Names": c["Names"].as_array().and_then(|n| n.first()).and_then(|n| n.as_str()).unwrap_or_default().trim_start_matches('/'),
            })
        })
        .collect();
    print_format(
        Some(
            "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}",
        ),
        &c_rows,
        &[
            ("ID", "CONTAINER ID"),
            ("Image", "IMAGE"),
            ("Command", "COMMAND"),
            ("LocalVolumes", "LOCAL VOLUMES"),
            ("Size", "SIZE"),
            ("RunningFor", "CREATED"),
            ("Status", "STATUS"),
            ("Names", "NAMES"),
        ],
    )?;

    println!("\nLocal Volumes space usage:\n");
    let v_rows: Vec<serde_json::Value> = volumes
        .iter()
        .map(|x| {
            let size = x["UsageData"]["Size"].as_i64().unwrap_or(-1);
            serde_json::json!({
                "Name": x["Name"].as_str().unwrap_or_default(),
                "Links": vrefs(x).to_string(),
                "Size": if size < 0 { "N/A".to_string() } else { human_size4(size as f64) },
            })
        })
        .collect();
    print_format(
        Some("table {{.Name}}\t{{.Links}}\t{{.Size}}"),
        &v_rows,
        &[
            ("Name", "VOLUME NAME"),
            ("Links", "LINKS"),
            ("Size", "SIZE"),
        ],
    )?;

    println!("\nBuild cache usage: {}\n", human_size4(cache_total as f64));
    print_format(
        Some(
            "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}",
        ),
        &[],
        &[
            ("ID", "CACHE ID"),
            ("CacheType", "CACHE TYPE"),
            ("Size", "SIZE"),
            ("CreatedSince", "CREATED"),
            ("LastUsedSince", "LAST USED"),
            ("UsageCount", "USAGE"),
            ("Shared", "SHARED"),
        ],
    )?;
    Ok(())
}

/// An image's tags, or `<none>:<none>` for one without.
fn repo_tags_or_none(i: &serde_json::Value) -> Vec<String> {
    i["RepoTags"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .filter(|t: &Vec<String>| !t.is_empty())
        .unwrap_or_else(|| vec!["<none>:<none>".into()])
}

/// `system df -v --format`'s object: Images, Containers, Volumes and
/// BuildCache, each row with the docker CLI's fields in sorted order.
fn df_verbose_rows(
    images: &[serde_json::Value],
    containers: &[serde_json::Value],
    volumes: &[serde_json::Value],
    cache: &[serde_json::Value],
) -> serde_json::Value {
    use berth_units::{human_size, human_size4};
    use std::collections::BTreeMap;
    let i64_of = |x: &serde_json::Value, k: &str| x[k].as_i64().unwrap_or(0);
    let s = |x: &serde_json::Value, k: &str| x[k].as_str().unwrap_or_default().to_string();
    let row = |m: BTreeMap<&str, serde_json::Value>| {
        serde_json::Value::Object(m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    };
    let labels = |x: &serde_json::Value| {
        x["Labels"]
            .as_object()
            .map(|m| {
                let mut kv: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                kv.sort();
                kv.join(",")
            })
            .unwrap_or_default()
    };
    let mut img_rows = Vec::new();
    for i in images {
        let tags = repo_tags_or_none(i);
        let (size, shared) = (i64_of(i, "Size"), i64_of(i, "SharedSize"));
        for t in tags {
            let (repo, tag) = super::images::split_repo_tag(&t);
            let digest = i["RepoDigests"]
                .as_array()
                .and_then(|d| {
                    d.iter().filter_map(|x| x.as_str()).find_map(|x| {
                        x.split_once('@')
                            .filter(|(r, _)| *r == repo)
                            .map(|(_, d)| d.to_string())
                    })
                })
                .unwrap_or_default();
            img_rows.push(row(BTreeMap::from([
                ("Containers", i64_of(i, "Containers").to_string().into()),
                (
                    "CreatedAt",
                    crate::output::created_at(i64_of(i, "Created")).into(),
                ),
                (
                    "CreatedSince",
                    crate::output::ago(i64_of(i, "Created")).into(),
                ),
                ("Digest", digest.into()),
                ("ID", s(i, "Id").into()),
                ("Repository", repo.into()),
                ("SharedSize", human_size4(shared as f64).into()),
                ("Size", human_size(size as f64).into()),
                ("Tag", tag.into()),
                ("UniqueSize", human_size4((size - shared) as f64).into()),
                ("VirtualSize", human_size4(size as f64).into()),
            ])));
        }
    }
    // the ps rows, untruncated, with the writable layer's size alone
    let c_rows: Vec<serde_json::Value> = containers
        .iter()
        .map(|c| {
            let mut c: bollard::models::ContainerSummary =
                serde_json::from_value(c.clone()).unwrap_or_default();
            c.size_root_fs = None;
            c.size_rw.get_or_insert(0);
            super::containers::ps_row(&c, false)
        })
        .collect();
    let v_rows: Vec<serde_json::Value> = volumes
        .iter()
        .map(|x| {
            let size = x["UsageData"]["Size"].as_i64().unwrap_or(-1);
            row(BTreeMap::from([
                ("Availability", "N/A".into()),
                ("Driver", s(x, "Driver").into()),
                ("Group", "N/A".into()),
                ("Labels", labels(x).into()),
                (
                    "Links",
                    x["UsageData"]["RefCount"]
                        .as_i64()
                        .unwrap_or(0)
                        .to_string()
                        .into(),
                ),
                ("Mountpoint", s(x, "Mountpoint").into()),
                ("Name", s(x, "Name").into()),
                ("Scope", s(x, "Scope").into()),
                (
                    "Size",
                    if size < 0 {
                        "N/A".to_string()
                    } else {
                        human_size4(size as f64)
                    }
                    .into(),
                ),
                ("Status", "N/A".into()),
            ]))
        })
        .collect();
    let bc_rows: Vec<serde_json::Value> = cache
        .iter()
        .map(|b| {
            let since = |k: &str| {
                chrono::DateTime::parse_from_rfc3339(&s(b, k))
                    .map(|t| crate::output::ago(t.timestamp()))
                    .unwrap_or_default()
            };
            row(BTreeMap::from([
                ("CacheType", s(b, "Type").into()),
                ("CreatedAt", s(b, "CreatedAt").into()),
                ("CreatedSince", since("CreatedAt").into()),
                ("Description", s(b, "Description").into()),
                ("ID", s(b, "ID").into()),
                ("LastUsedAt", s(b, "LastUsedAt").into()),
                ("LastUsedSince", since("LastUsedAt").into()),
                ("Parent", s(b, "Parent").into()),
                (
                    "Shared",
                    b["Shared"].as_bool().unwrap_or(false).to_string().into(),
                ),
                ("Size", human_size4(i64_of(b, "Size") as f64).into()),
                ("UsageCount", i64_of(b, "UsageCount").to_string().into()),
                (
                    "InUse",
                    b["InUse"].as_bool().unwrap_or(false).to_string().into(),
                ),
            ]))
        })
        .collect();
    serde_json::json!({
        "Images": img_rows,
        "Containers": c_rows,
        "Volumes": v_rows,
        "BuildCache": bc_rows,
    })
}

#[derive(clap::Args, Debug)]
pub struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    volumes: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

/// `system prune`: containers, networks, (anonymous) volumes and images,
/// in that order, as the docker CLI does it, then the total reclaimed.
pub async fn system_prune(ctx: &Ctx, a: SystemPruneArgs) -> Result<i32> {
    use bollard::query_parameters as q;
    let mut warning = String::from(
        "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n",
    );
    if a.volumes {
        warning.push_str("  - all anonymous volumes not used by at least one container\n");
    }
    warning.push_str(if a.all {
        "  - all images without at least one container associated to them\n  - all build cache\n"
    } else {
        "  - all dangling images\n  - unused build cache\n"
    });
    if !a.force && !super::containers::confirm(&warning) {
        return Ok(0);
    }
    let filters = super::containers::parse_filters(&a.filter)?.unwrap_or_default();
    let err = |e: bollard::errors::Error| {
        status(
            1,
            format!("Error response from daemon: {}", daemon_error(&e)),
        )
    };
    let section = |title: &str, items: &[String]| {
        if !items.is_empty() {
            println!("{title}:");
            for i in items {
                println!("{i}");
            }
            println!();
        }
    };
    let mut reclaimed: i64 = 0;

    let r = ctx
        .docker
        .prune_containers(Some(q::PruneContainersOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(err)?;
    section(
        "Deleted Containers",
        &r.containers_deleted.unwrap_or_default(),
    );
    reclaimed += r.space_reclaimed.unwrap_or(0);

    let r = ctx
        .docker
        .prune_networks(Some(q::PruneNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(err)?;
    section("Deleted Networks", &r.networks_deleted.unwrap_or_default());

    if a.volumes {
        // volumes know no `until`
        let mut vf = filters.clone();
        vf.remove("until");
        let r = ctx
            .docker
            .prune_volumes(Some(q::PruneVolumesOptions { filters: Some(vf) }))
            .await
            .map_err(err)?;
        section("Deleted Volumes", &r.volumes_deleted.unwrap_or_default());
        reclaimed += r.space_reclaimed.unwrap_or(0);
    }

    let mut imf = filters.clone();
    imf.insert("dangling".into(), vec![(!a.all).to_string()]);
    let r = ctx
        .docker
        .prune_images(Some(q::PruneImagesOptions { filters: Some(imf) }))
        .await
        .map_err(err)?;
    let images: Vec<String> = r
        .images_deleted
        .unwrap_or_default()
        .iter()
        .flat_map(|d| {
            d.untagged
                .iter()
                .map(|u| format!("untagged: {u}"))
                .chain(d.deleted.iter().map(|x| format!("deleted: {x}")))
                .collect::<Vec<_>>()
        })
        .collect();
    section("Deleted Images", &images);
    reclaimed += r.space_reclaimed.unwrap_or(0);

    // the build cache has no labels: only `until` applies to it
    let until: Vec<String> = a
        .filter
        .iter()
        .filter(|f| f.starts_with("until="))
        .cloned()
        .collect();
    let (caches, bytes) = super::build::prune_request(ctx, a.all, &until, 0).await?;
    section("Deleted build cache objects", &caches);
    reclaimed += bytes as i64;

    println!(
        "Total reclaimed space: {}",
        berth_units::human_size(reclaimed as f64)
    );
    Ok(0)
}
