use anyhow::Result;

use crate::output::{json_indent, render_template};
use crate::{Ctx, daemon_error, is_not_found, status};

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Format output using a Go template
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Return JSON for specified type (container or image)
    #[arg(long = "type")]
    kind: Option<String>,
    #[arg(required = true)]
    names: Vec<String>,
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
        let mut found = None;
        if kind.as_deref() != Some("image") {
            match ctx.docker.inspect_container(n, None).await {
                Ok(c) => found = Some(serde_json::to_value(c)?),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(status(1, daemon_error(&e))),
            }
        }
        if found.is_none() && kind.as_deref().is_none_or(|k| k == "image") {
            match ctx.docker.inspect_image(n).await {
                Ok(i) => found = Some(serde_json::to_value(i)?),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(status(1, daemon_error(&e))),
            }
        }
        if found.is_none() && kind.as_deref().is_none_or(|k| k == "volume") {
            match ctx.docker.inspect_volume(n).await {
                Ok(v) => found = Some(serde_json::to_value(v)?),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(status(1, daemon_error(&e))),
            }
        }
        if found.is_none() && kind.as_deref().is_none_or(|k| k == "network") {
            match ctx.docker.inspect_network(n, None).await {
                Ok(v) => found = Some(serde_json::to_value(v)?),
                Err(e) if is_not_found(&e) => {}
                Err(e) => return Err(status(1, daemon_error(&e))),
            }
        }
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
    if let Some(f) = &a.format {
        let all = serde_json::json!({
            "Client": {"Version": env!("CARGO_PKG_VERSION"), "ApiVersion": v.api_version, "Os": "linux", "Arch": "amd64"},
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
    println!(
        " OS/Arch:           linux/{}",
        std::env::consts::ARCH.replace("x86_64", "amd64")
    );
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
    println!(" Default Runtime: {}", s(&i.default_runtime));
    println!(" Security Options:");
    for o in i.security_options.clone().unwrap_or_default() {
        println!("  {}", o.trim_start_matches("name="));
    }
    println!(" Kernel Version: {}", s(&i.kernel_version));
    println!(" Operating System: {}", s(&i.operating_system));
    println!(" OSType: {}", s(&i.os_type));
    println!(" Architecture: {}", s(&i.architecture));
    println!(" CPUs: {}", n(i.ncpu));
    println!(
        " Total Memory: {}",
        berth_units::human_size(n(i.mem_total) as f64)
    );
    println!(" Name: {}", s(&i.name));
    println!(" ID: {}", s(&i.id));
    println!(" Docker Root Dir: {}", s(&i.docker_root_dir));
    println!(" Debug Mode: {}", i.debug.unwrap_or(false));
    println!(" Experimental: {}", i.experimental_build.unwrap_or(false));
    println!(
        " Live Restore Enabled: {}",
        i.live_restore_enabled.unwrap_or(false)
    );
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
        let v = serde_json::to_value(&ev)?;
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
