//! `pause`, `unpause`, `top`, `stats`.

use std::io::Write;

use anyhow::Result;
use bollard::query_parameters::{ListContainersOptions, StatsOptions, TopOptions};
use futures_util::StreamExt;

use super::containers::each;
use crate::output::{flush_table, format_rows, short_id, table};
use crate::{Ctx, daemon_error, status};

#[derive(clap::Args, Debug)]
pub struct PauseArgs {
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn pause(ctx: &Ctx, a: PauseArgs) -> Result<i32> {
    each(&a.containers, |n| async move {
        ctx.docker
            .pause_container(&n)
            .await
            .map_err(|e| daemon_error(&e))
    })
    .await
}

pub async fn unpause(ctx: &Ctx, a: PauseArgs) -> Result<i32> {
    each(&a.containers, |n| async move {
        ctx.docker
            .unpause_container(&n)
            .await
            .map_err(|e| daemon_error(&e))
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    container: String,
    /// ps options (default -ef)
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    ps_args: Vec<String>,
}

pub async fn top(ctx: &Ctx, a: TopArgs) -> Result<i32> {
    let ps_args = if a.ps_args.is_empty() {
        "-ef".to_string()
    } else {
        a.ps_args.join(" ")
    };
    let r = ctx
        .docker
        .top_processes(&a.container, Some(TopOptions { ps_args }))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let mut tw = table();
    writeln!(tw, "{}", r.titles.unwrap_or_default().join("\t"))?;
    for p in r.processes.unwrap_or_default() {
        writeln!(tw, "{}", p.join("\t"))?;
    }
    flush_table(tw)?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short = 'a', long)]
    all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    no_stream: bool,
    /// Do not truncate output
    #[arg(long)]
    no_trunc: bool,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    containers: Vec<String>,
}

/// One row of `docker stats`, computed as the docker CLI does.
fn row(s: &serde_json::Value, no_trunc: bool) -> serde_json::Value {
    let u = |v: &serde_json::Value| v.as_u64().unwrap_or(0) as f64;
    let cpu = &s["cpu_stats"];
    let pre = &s["precpu_stats"];
    let cpu_delta = u(&cpu["cpu_usage"]["total_usage"]) - u(&pre["cpu_usage"]["total_usage"]);
    let sys_delta = u(&cpu["system_cpu_usage"]) - u(&pre["system_cpu_usage"]);
    let cpus = u(&cpu["online_cpus"]).max(1.0);
    let cpu_pct = if cpu_delta > 0.0 && sys_delta > 0.0 {
        cpu_delta / sys_delta * cpus * 100.0
    } else {
        0.0
    };
    let mem = &s["memory_stats"];
    // the page cache is not the container's memory (docker CLI's rule)
    let cache = mem["stats"]
        .get("total_inactive_file")
        .or_else(|| mem["stats"].get("inactive_file"))
        .map(u)
        .unwrap_or(0.0);
    let usage = (u(&mem["usage"]) - cache).max(0.0);
    let limit = u(&mem["limit"]);
    let mem_pct = if limit > 0.0 {
        usage / limit * 100.0
    } else {
        0.0
    };
    let (mut rd, mut wr) = (0.0, 0.0);
    for e in s["blkio_stats"]["io_service_bytes_recursive"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        match e["op"].as_str().map(str::to_ascii_lowercase).as_deref() {
            Some("read") => rd += u(&e["value"]),
            Some("write") => wr += u(&e["value"]),
            _ => {}
        }
    }
    let (mut rx, mut tx) = (0.0, 0.0);
    for n in s["networks"]
        .as_object()
        .into_iter()
        .flat_map(|m| m.values())
    {
        rx += u(&n["rx_bytes"]);
        tx += u(&n["tx_bytes"]);
    }
    let id = s["id"].as_str().unwrap_or_default();
    let running = s["read"].as_str() != Some("0001-01-01T00:00:00Z");
    let dash = |v: String| if running { v } else { "--".into() };
    serde_json::json!({
        "Container": if no_trunc { id.to_string() } else { short_id(id) },
        "ID": if no_trunc { id.to_string() } else { short_id(id) },
        "Name": s["name"].as_str().unwrap_or_default().trim_start_matches('/'),
        "CPUPerc": dash(format!("{cpu_pct:.2}%")),
        "MemUsage": if running {
            format!("{} / {}", berth_units::bytes_size(usage), berth_units::bytes_size(limit))
        } else {
            "0B / 0B".into()
        },
        "MemPerc": dash(format!("{mem_pct:.2}%")),
        "NetIO": format!("{} / {}", berth_units::human_size(rx), berth_units::human_size(tx)),
        "BlockIO": format!("{} / {}", berth_units::human_size(rd), berth_units::human_size(wr)),
        "PIDs": if running { s["pids_stats"]["current"].as_u64().unwrap_or(0).to_string() } else { "0".into() },
    })
}

fn render(rows: &[serde_json::Value], format: Option<&str>) -> Result<String> {
    if let Some(fmt) = format.filter(|f| !f.is_empty() && *f != "table") {
        return format_rows(
            fmt,
            rows,
            &[
                ("Container", "CONTAINER"),
                ("ID", "CONTAINER ID"),
                ("Name", "NAME"),
                ("CPUPerc", "CPU %"),
                ("MemUsage", "MEM USAGE / LIMIT"),
                ("MemPerc", "MEM %"),
                ("NetIO", "NET I/O"),
                ("BlockIO", "BLOCK I/O"),
                ("PIDs", "PIDS"),
            ],
        )
        .map_err(|e| status(1, e.to_string()));
    }
    let mut tw = table();
    writeln!(
        tw,
        "CONTAINER ID\tNAME\tCPU %\tMEM USAGE / LIMIT\tMEM %\tNET I/O\tBLOCK I/O\tPIDS"
    )?;
    for r in rows {
        let f = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        writeln!(
            tw,
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            f("ID"),
            f("Name"),
            f("CPUPerc"),
            f("MemUsage"),
            f("MemPerc"),
            f("NetIO"),
            f("BlockIO"),
            f("PIDs")
        )?;
    }
    let bytes = tw.into_inner().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

async fn sample(ctx: &Ctx, name: &str, stream: bool) -> Result<serde_json::Value> {
    let mut s = ctx.docker.stats(
        name,
        Some(StatsOptions {
            stream,
            one_shot: false,
        }),
    );
    match s.next().await {
        Some(Ok(v)) => Ok(serde_json::to_value(v)?),
        Some(Err(e)) => Err(status(1, daemon_error(&e))),
        None => Err(status(1, format!("no stats for {name}"))),
    }
}

pub async fn stats(ctx: &Ctx, a: StatsArgs) -> Result<i32> {
    let format = a
        .format
        .clone()
        .or_else(|| crate::config::format_for("statsFormat"));
    let names: Vec<String> = if a.containers.is_empty() {
        ctx.docker
            .list_containers(Some(ListContainersOptions {
                all: a.all,
                ..Default::default()
            }))
            .await
            .map_err(|e| status(1, daemon_error(&e)))?
            .into_iter()
            .filter_map(|c| c.id)
            .collect()
    } else {
        a.containers.clone()
    };
    loop {
        let mut rows = Vec::new();
        let mut failed = false;
        // every sample takes a second (the daemon measures CPU over it): in parallel
        let samples =
            futures_util::future::join_all(names.iter().map(|n| sample(ctx, n, false))).await;
        for s in samples {
            match s {
                Ok(v) => rows.push(row(&v, a.no_trunc)),
                Err(e) => {
                    eprintln!("{e}");
                    failed = true;
                }
            }
        }
        let out = render(&rows, format.as_deref())?;
        if a.no_stream {
            print!("{out}");
            return Ok(if failed { 1 } else { 0 });
        }
        // redraw in place, as docker does
        print!("\x1b[2J\x1b[H{out}");
        let _ = std::io::stdout().flush();
        if failed && rows.is_empty() {
            return Ok(1);
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct UpdateArgs {
    /// Memory limit
    #[arg(short = 'm', long)]
    memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    cpus: Option<f64>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    cpu_shares: Option<i64>,
    /// Tune container pids limit (-1 for unlimited)
    #[arg(long = "pids-limit")]
    pids_limit: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    cpuset_cpus: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    restart: Option<String>,
    #[arg(required = true)]
    containers: Vec<String>,
}

pub async fn update(ctx: &Ctx, a: UpdateArgs) -> Result<i32> {
    let memory = match &a.memory {
        Some(m) => Some(berth_units::parse_ram(m).map_err(|e| {
            status(
                1,
                format!("berth: invalid argument \"{m}\" for \"-m, --memory\" flag: {e}"),
            )
        })?),
        None => None,
    };
    let restart_policy = match &a.restart {
        Some(r) => Some(super::containers::restart_policy(r, false)?),
        None => None,
    };
    let body = bollard::models::ContainerUpdateBody {
        memory,
        nano_cpus: a.cpus.map(|c| (c * 1e9) as i64),
        cpu_shares: a.cpu_shares,
        pids_limit: a.pids_limit,
        cpuset_cpus: a.cpuset_cpus.clone(),
        restart_policy,
        ..Default::default()
    };
    each(&a.containers, |n| {
        let body = body.clone();
        async move {
            ctx.docker
                .update_container(&n, body)
                .await
                .map_err(|e| daemon_error(&e))
        }
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct PortArgs {
    container: String,
    /// PRIVATE_PORT[/PROTO]
    port: Option<String>,
}

/// `docker port`: the published ports from `NetworkSettings.Ports`.
pub async fn port(ctx: &Ctx, a: PortArgs) -> Result<i32> {
    let c = ctx
        .docker
        .inspect_container(&a.container, None)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let ports = c.network_settings.and_then(|n| n.ports).unwrap_or_default();
    let mut keys: Vec<&String> = ports.keys().collect();
    keys.sort();
    let wanted = a.port.as_ref().map(|p| {
        if p.contains('/') {
            p.clone()
        } else {
            format!("{p}/tcp")
        }
    });
    let mut found = false;
    for k in keys {
        if wanted.as_ref().is_some_and(|w| w != k) {
            continue;
        }
        for b in ports.get(k).cloned().flatten().unwrap_or_default() {
            found = true;
            let host = format!(
                "{}:{}",
                b.host_ip.unwrap_or_default(),
                b.host_port.unwrap_or_default()
            );
            if wanted.is_some() {
                println!("{host}");
            } else {
                println!("{k} -> {host}");
            }
        }
    }
    if let Some(w) = wanted
        && !found
    {
        return Err(status(
            1,
            format!("Error: No public port '{w}' published for {}", a.container),
        ));
    }
    Ok(0)
}
