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
        && !matches!(k.as_str(), "container" | "image" | "volume")
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
        match found {
            Some(v) => out.push(v),
            None => {
                let what = match kind.as_deref() {
                    Some("container") => "container",
                    Some("image") => "image",
                    Some("volume") => "volume",
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
