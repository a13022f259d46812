//! `berth volume create|ls|inspect|rm|prune`.

use std::collections::HashMap;
use std::io::Write;

use anyhow::Result;
use bollard::models::VolumeCreateRequest;
use bollard::query_parameters::{ListVolumesOptions, PruneVolumesOptions, RemoveVolumeOptions};

use super::containers::{confirm, each, parse_filters};
use crate::output::{flush_table, print_format, table};
use crate::{Ctx, daemon_error, status};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, default_value = "local")]
    driver: String,
    /// Set metadata for a volume
    #[arg(long)]
    label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Specify volume name
    #[arg(long = "name")]
    name_flag: Option<String>,
    name: Option<String>,
}

/// `KEY=VALUE` flags (`--label`, `-o`); a bare `KEY` has an empty value.
pub(crate) fn key_values(items: &[String]) -> HashMap<String, String> {
    items
        .iter()
        .map(|i| match i.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (i.clone(), String::new()),
        })
        .collect()
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    if a.name.is_some() && a.name_flag.is_some() && a.name != a.name_flag {
        return Err(status(
            1,
            "Conflicting options: either specify --name or provide positional arg, not both",
        ));
    }
    let req = VolumeCreateRequest {
        name: a.name.or(a.name_flag),
        driver: Some(a.driver),
        driver_opts: Some(key_values(&a.opt)),
        labels: Some(key_values(&a.label)),
        ..Default::default()
    };
    let v = ctx
        .docker
        .create_volume(req)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    println!("{}", v.name);
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only display volume names
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values (e.g. "dangling=true")
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
}

pub async fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let opts = ListVolumesOptions {
        filters: parse_filters(&a.filter)?,
    };
    let r = ctx
        .docker
        .list_volumes(Some(opts))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let vols = r.volumes.unwrap_or_default();
    if a.quiet {
        for v in &vols {
            println!("{}", v.name);
        }
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = vols
        .iter()
        .map(|v| {
            let labels: Vec<String> = v.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            serde_json::json!({
                "Name": v.name,
                "Driver": v.driver,
                "Mountpoint": v.mountpoint,
                "Scope": "local",
                "Labels": labels.join(","),
                // what the list does not carry (usage, cluster volumes), as
                // the docker CLI shows it
                "Size": v.usage_data.as_ref().map(|u| berth_units::human_size4(u.size as f64)).unwrap_or_else(|| "N/A".into()),
                "Links": v.usage_data.as_ref().map(|u| u.ref_count.to_string()).unwrap_or_else(|| "N/A".into()),
                "Group": "N/A",
                "Availability": "N/A",
                "Status": "N/A",
            })
        })
        .collect();
    let format = a
        .format
        .clone()
        .or_else(|| crate::config::format_for("volumesFormat"));
    if print_format(
        format.as_deref(),
        &rows,
        &[
            ("Name", "VOLUME NAME"),
            ("Driver", "DRIVER"),
            ("Mountpoint", "MOUNTPOINT"),
            ("Scope", "SCOPE"),
            ("Labels", "LABELS"),
        ],
    )? {
        return Ok(0);
    }
    let mut tw = table();
    writeln!(tw, "DRIVER\tVOLUME NAME")?;
    for v in &vols {
        writeln!(tw, "{}\t{}", v.driver, v.name)?;
    }
    flush_table(tw)?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true)]
    volumes: Vec<String>,
}

pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    each(&a.volumes, |n| {
        let opts = RemoveVolumeOptions { force: a.force };
        async move {
            ctx.docker
                .remove_volume(&n, Some(opts))
                .await
                .map_err(|e| daemon_error(&e))
        }
    })
    .await
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    let warning = if a.all {
        "WARNING! This will remove all local volumes not used by at least one container."
    } else {
        "WARNING! This will remove anonymous local volumes not used by at least one container."
    };
    if !a.force && !confirm(warning) {
        return Ok(0);
    }
    let mut filters = parse_filters(&a.filter)?.unwrap_or_default();
    if a.all {
        filters.insert("all".into(), vec!["true".into()]);
    }
    let r = ctx
        .docker
        .prune_volumes(Some(PruneVolumesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let deleted = r.volumes_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Volumes:");
        for n in &deleted {
            println!("{n}");
        }
        println!();
    }
    println!(
        "Total reclaimed space: {}",
        berth_units::human_size(r.space_reclaimed.unwrap_or(0) as f64)
    );
    Ok(0)
}
