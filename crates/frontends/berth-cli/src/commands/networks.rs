//! `berth network create|ls|inspect|rm|prune`.

use std::io::Write;

use anyhow::Result;
use bollard::models::{ConfigReference, Ipam, IpamConfig, NetworkCreateRequest};
use bollard::query_parameters::{InspectNetworkOptions, ListNetworksOptions, PruneNetworksOptions};

use super::containers::{confirm, parse_filters};
use super::volumes::key_values;
use crate::output::{flush_table, print_format, short_id, table};
use crate::{Ctx, daemon_error, status};

#[derive(clap::Args, Debug)]
pub struct CreateArgs {
    /// Driver to manage the Network
    #[arg(short = 'd', long, default_value = "bridge")]
    driver: String,
    /// Subnet in CIDR format that represents a network segment
    #[arg(long)]
    subnet: Vec<String>,
    /// Allocate container ip from a sub-range
    #[arg(long)]
    ip_range: Vec<String>,
    /// IPv4 or IPv6 Gateway for the master subnet
    #[arg(long)]
    gateway: Vec<String>,
    /// Auxiliary IPv4 or IPv6 addresses used by Network driver
    #[arg(long = "aux-address")]
    aux_address: Vec<String>,
    /// Restrict external access to the network
    #[arg(long)]
    internal: bool,
    /// Enable manual container attachment
    #[arg(long)]
    attachable: bool,
    /// Enable or disable IPv6 networking
    #[arg(long)]
    ipv6: bool,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt")]
    opt: Vec<String>,
    /// Set metadata on a network
    #[arg(long)]
    label: Vec<String>,
    /// Control the network's scope
    #[arg(long)]
    scope: Option<String>,
    /// Create swarm routing-mesh network
    #[arg(long)]
    ingress: bool,
    /// Create a configuration only network
    #[arg(long)]
    config_only: bool,
    /// The network from which to copy the configuration
    #[arg(long)]
    config_from: Option<String>,
    name: String,
}

pub async fn create(ctx: &Ctx, a: CreateArgs) -> Result<i32> {
    if (!a.gateway.is_empty() || !a.ip_range.is_empty()) && a.subnet.is_empty() {
        return Err(status(
            1,
            "berth: every ip-range or gateway must have a corresponding subnet",
        ));
    }
    // one IPAM config per subnet; gateways, ranges and auxiliary addresses
    // go with the subnet of their address family, as the docker CLI pairs them
    let v6 = |s: &str| s.contains(':');
    let mut config = Vec::new();
    for s in &a.subnet {
        let family = |x: &&String| v6(x) == v6(s);
        let aux: Vec<String> = a
            .aux_address
            .iter()
            .filter(|x| v6(x.split_once('=').map_or(x.as_str(), |(_, ip)| ip)) == v6(s))
            .cloned()
            .collect();
        config.push(IpamConfig {
            subnet: Some(s.clone()),
            ip_range: a.ip_range.iter().find(family).cloned(),
            gateway: a.gateway.iter().find(family).cloned(),
            auxiliary_addresses: (!aux.is_empty()).then(|| key_values(&aux)),
        });
    }
    let req = NetworkCreateRequest {
        name: a.name.clone(),
        driver: Some(a.driver.clone()),
        internal: Some(a.internal),
        attachable: Some(a.attachable),
        // sent only when asked for, as docker does, so that the
        // com.docker.network.enable_ipv6 option decides otherwise
        enable_ipv6: a.ipv6.then_some(true),
        ipam: Some(Ipam {
            driver: Some("default".into()),
            config: Some(config),
            options: None,
        }),
        options: Some(key_values(&a.opt)),
        labels: Some(key_values(&a.label)),
        scope: a.scope.clone(),
        ingress: Some(a.ingress),
        config_only: Some(a.config_only),
        config_from: a.config_from.clone().map(|network| ConfigReference {
            network: Some(network),
        }),
        ..Default::default()
    };
    let r = ctx
        .docker
        .create_network(req)
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    println!("{}", r.id);
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct LsArgs {
    /// Only display network IDs
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Provide filter values (e.g. "driver=bridge")
    #[arg(short = 'f', long = "filter")]
    filter: Vec<String>,
    /// Format output using a Go template
    #[arg(long)]
    format: Option<String>,
    /// Do not truncate the output
    #[arg(long)]
    no_trunc: bool,
}

pub async fn ls(ctx: &Ctx, a: LsArgs) -> Result<i32> {
    let filters = parse_filters(&a.filter)?.unwrap_or_default();
    let nets = ctx
        .docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let id_of = |id: &str| {
        if a.no_trunc {
            id.to_string()
        } else {
            short_id(id)
        }
    };
    if a.quiet {
        for n in &nets {
            println!("{}", id_of(n.id.as_deref().unwrap_or_default()));
        }
        return Ok(0);
    }
    let rows: Vec<serde_json::Value> = nets
        .iter()
        .map(|n| {
            let labels: Vec<String> = n
                .labels
                .clone()
                .unwrap_or_default()
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            serde_json::json!({
                "ID": id_of(n.id.as_deref().unwrap_or_default()),
                "Name": n.name,
                "Driver": n.driver,
                "Scope": n.scope,
                "IPv6": n.enable_ipv6.unwrap_or(false),
                "Internal": n.internal.unwrap_or(false),
                "Labels": labels.join(","),
                // Go's time.Time String(): "2006-01-02 15:04:05.999999999 -0700 MST"
                "CreatedAt": n.created.as_deref().and_then(|c| chrono::DateTime::parse_from_rfc3339(c).ok()).map(|t| {
                    let t = t.with_timezone(&chrono::Utc);
                    let frac = format!("{:09}", t.timestamp_subsec_nanos());
                    let frac = frac.trim_end_matches('0');
                    format!("{}{}{} +0000 UTC", t.format("%Y-%m-%d %H:%M:%S"), if frac.is_empty() { "" } else { "." }, frac)
                }).unwrap_or_default(),
            })
        })
        .collect();
    let format = a
        .format
        .clone()
        .or_else(|| crate::config::format_for("networksFormat"));
    if print_format(
        format.as_deref(),
        &rows,
        &[
            ("ID", "NETWORK ID"),
            ("Name", "NAME"),
            ("Driver", "DRIVER"),
            ("Scope", "SCOPE"),
            ("IPv6", "IPV6"),
            ("Internal", "INTERNAL"),
            ("Labels", "LABELS"),
            ("CreatedAt", "CREATED AT"),
        ],
    )? {
        return Ok(0);
    }
    let mut tw = table();
    writeln!(tw, "NETWORK ID\tNAME\tDRIVER\tSCOPE")?;
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or_default().to_string();
        writeln!(
            tw,
            "{}\t{}\t{}\t{}",
            s("ID"),
            s("Name"),
            s("Driver"),
            s("Scope")
        )?;
    }
    flush_table(tw)?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct RmArgs {
    /// Do not error if the network does not exist
    #[arg(short = 'f', long)]
    force: bool,
    #[arg(required = true)]
    networks: Vec<String>,
}

/// The docker CLI's question before the routing mesh's network goes.
const INGRESS_WARNING: &str = "WARNING! Before removing the routing-mesh network, make sure all the nodes in your swarm run the same docker engine version. Otherwise, removal may not be effective and functionality of newly create ingress networks will be impaired.";

/// `network rm`, as the docker CLI removes: an ingress network only after
/// a yes, each name printed once removed.
pub async fn rm(ctx: &Ctx, a: RmArgs) -> Result<i32> {
    let mut failed = false;
    for n in &a.networks {
        let inspected = ctx
            .docker
            .inspect_network(n, None::<InspectNetworkOptions>)
            .await;
        if inspected.is_ok_and(|i| i.ingress == Some(true)) && !confirm(INGRESS_WARNING) {
            continue;
        }
        match ctx.docker.remove_network(n).await {
            Ok(()) => println!("{n}"),
            Err(e) if a.force && crate::is_not_found(&e) => {}
            Err(e) => {
                eprintln!("{}", daemon_error(&e));
                failed = true;
            }
        }
    }
    Ok(if failed { 1 } else { 0 })
}

#[derive(clap::Args, Debug)]
pub struct PruneArgs {
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    force: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter")]
    filter: Vec<String>,
}

pub async fn prune(ctx: &Ctx, a: PruneArgs) -> Result<i32> {
    if !a.force
        && !confirm(
            "WARNING! This will remove all custom networks not used by at least one container.",
        )
    {
        return Ok(0);
    }
    let r = ctx
        .docker
        .prune_networks(Some(PruneNetworksOptions {
            filters: parse_filters(&a.filter)?,
        }))
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    let deleted = r.networks_deleted.unwrap_or_default();
    if !deleted.is_empty() {
        println!("Deleted Networks:");
        for n in &deleted {
            println!("{n}");
        }
    }
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct ConnectArgs {
    /// IPv4 address (e.g., "172.30.100.104")
    #[arg(long)]
    ip: Option<String>,
    /// Add network-scoped alias for the container
    #[arg(long)]
    alias: Vec<String>,
    network: String,
    container: String,
}

pub async fn connect(ctx: &Ctx, a: ConnectArgs) -> Result<i32> {
    let cfg = bollard::models::EndpointSettings {
        ipam_config: a.ip.clone().map(|ip| bollard::models::EndpointIpamConfig {
            ipv4_address: Some(ip),
            ..Default::default()
        }),
        aliases: (!a.alias.is_empty()).then(|| a.alias.clone()),
        ..Default::default()
    };
    ctx.docker
        .connect_network(
            &a.network,
            bollard::models::NetworkConnectRequest {
                container: a.container.clone(),
                endpoint_config: Some(cfg),
            },
        )
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    Ok(0)
}

#[derive(clap::Args, Debug)]
pub struct DisconnectArgs {
    /// Force the container to disconnect from a network
    #[arg(short = 'f', long)]
    force: bool,
    network: String,
    container: String,
}

pub async fn disconnect(ctx: &Ctx, a: DisconnectArgs) -> Result<i32> {
    ctx.docker
        .disconnect_network(
            &a.network,
            bollard::models::NetworkDisconnectRequest {
                container: a.container.clone(),
                force: Some(a.force),
            },
        )
        .await
        .map_err(|e| status(1, daemon_error(&e)))?;
    Ok(0)
}
