//! Overlay networks on a namespace cluster of one manager and two workers
//! (issue #22), through the docker CLI and berth's: tasks on different
//! nodes reach each other over VXLAN by address, by service name (a VIP
//! balanced over every replica), by `tasks.NAME` and by alias; dnsrr
//! services answer with their tasks; a task scaled away leaves DNS and the
//! VIP; a node keeps a swarm network only while a task there uses it.
//! Also the checks that need no data plane: the ingress network made at
//! init, swarm init's pool and port checks, and encrypted networks refused
//! on a kernel without IPsec ESP.

mod common;

use std::collections::BTreeSet;

use common::cluster::{CLIENT_ADDR, Cluster, data_addr};
use common::{Cli, Daemon, code, eventually, ok, stderr, stdout};

/// What each CLI's names end in, so both runs share one cluster.
fn letter(cli: Cli) -> &'static str {
    match cli {
        Cli::Docker => "d",
        Cli::Berth => "b",
    }
}

/// busybox httpd whose /cgi-bin/ip answers the caller's address and the
/// replica's hostname.
const CGI_HTTPD: &str = "mkdir -p /w/cgi-bin && printf '#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho $REMOTE_ADDR $(hostname)\\n' > /w/cgi-bin/ip && chmod +x /w/cgi-bin/ip && exec httpd -f -p 80 -h /w";

/// The cluster's VXLAN port (`--data-path-port`), not the default 4789.
const DATA_PORT: u16 = 7789;

#[test]
fn overlay_networks_discovery_and_vips_on_one_cluster() {
    init_checks_on_a_fresh_node();
    let mut c = Cluster::swarm_on_data_path(3, DATA_PORT);
    the_ingress_network_is_made_at_init(&c);
    for cli in [Cli::Docker, Cli::Berth] {
        encrypted_is_refused_without_esp(&c, cli);
        tasks_meet_over_the_overlay(&c, cli);
        the_mesh_answers_on_every_node_with_the_clients_address(&c, cli);
        host_mode_ports_answer_where_a_task_runs(&c, cli);
        udp_goes_through_the_mesh(&c, cli);
        attachable_overlays_take_docker_run(&c, cli);
        removed_tasks_leave_dns_and_the_vip_under_load(&c, cli);
        node_local_networks_take_each_nodes_config(&c, cli, "bridge");
        node_local_networks_take_each_nodes_config(&c, cli, "macvlan");
        bad_network_input_gets_dockers_words(&c, cli);
        a_killed_worker_keeps_its_overlays(&mut c, cli);
    }
    // last: the checks above expect the default ingress
    for cli in [Cli::Docker, Cli::Berth] {
        a_custom_ingress_replaces_the_default(&c, cli);
    }
}

/// `network rm ingress` (after the CLI's question) and `network create
/// --ingress --subnet …`: every node's leg moves to the new network and
/// the mesh answers through it.
fn a_custom_ingress_replaces_the_default(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let (old, new, subnet, prefix, svc) = match cli {
        Cli::Docker => ("ingress", "ingd", "10.251.0.0/24", "10.251.0.", "cmeshd"),
        Cli::Berth => ("ingd", "ingb", "10.252.0.0/24", "10.252.0.", "cmeshb"),
    };
    let mut rm = cli.command(m);
    rm.args(["network", "rm", old])
        .stdin(std::process::Stdio::piped());
    let o = common::with_input(rm, "y\n");
    let out = ok(&o, "network rm ingress");
    assert!(
        out.contains("routing-mesh network"),
        "the CLI asks first: {out}"
    );
    assert!(out.trim_end().ends_with(old), "{out}");
    let args = [
        "network",
        "create",
        "-d",
        "overlay",
        "--ingress",
        "--subnet",
        subnet,
        new,
    ];
    ok(&cli.run(m, &args), "network create --ingress");
    let args = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        svc,
        "--publish",
        "published=8095,target=80",
        "busybox",
        "sh",
        "-c",
        CGI_HTTPD,
    ];
    ok(&cli.run(m, &args), "service create --publish");
    running(c, cli, svc, 1);
    for i in 0..c.nodes.len() {
        let addr = c.node(i).addr.clone();
        let mut answer = None;
        let through = eventually(20, || {
            answer = c.underlay_get(&addr, 8095, "/cgi-bin/ip");
            answer.is_some()
        });
        assert!(through, "{addr}:8095 through {new}");
        let answer = answer.unwrap_or_default();
        assert!(
            answer.contains(CLIENT_ADDR),
            "the client's address: {answer}"
        );
        let leg = c.node_sh(i, "ip -br addr show berth-ingress");
        assert!(leg.contains(prefix), "node {i}'s leg on {new}: {leg}");
    }
    ok(&cli.run(m, &["service", "rm", svc]), "service rm");
}

/// A worker's daemon killed with SIGKILL and started again: its task kept
/// running, and after the restart it still reaches every replica through
/// the VIP and is reached over VXLAN from another node.
fn a_killed_worker_keeps_its_overlays(c: &mut Cluster, cli: Cli) {
    let x = letter(cli);
    let (net, web) = (format!("kill{x}"), format!("kweb{x}"));
    {
        let m = &c.node(0).daemon;
        ok(
            &cli.run(
                m,
                &["network", "create", "-d", "overlay", "--attachable", &net],
            ),
            "network create",
        );
        let args = [
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            &web,
            "--network",
            &net,
            "--replicas",
            "3",
            "--replicas-max-per-node",
            "1",
            "busybox",
            "sh",
            "-c",
            CGI_HTTPD,
        ];
        ok(&cli.run(m, &args), "service create");
    }
    running(c, cli, &web, 3);
    let tasks = task_containers(c, &web);
    let on = |n: usize| {
        tasks
            .iter()
            .find(|t| t.0 == n)
            .cloned()
            .expect("a task per node")
    };
    let (worker_task, other_task) = (on(1), on(0));
    let vip = ok(
        &cli.run(
            &c.node(0).daemon,
            &[
                "service",
                "inspect",
                "--format",
                "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
                &web,
            ],
        ),
        "the VIP",
    );
    let vip = vip.trim().split('/').next().unwrap_or("").to_string();

    // a container of the worker's own on the network, which dies while
    // the daemon is down: its address must not stay held
    let keeper = format!("keep{x}");
    let w = &c.node(1).daemon;
    let args = [
        "run",
        "-d",
        "--name",
        &keeper,
        "--network",
        &net,
        "busybox",
        "sleep",
        "600",
    ];
    ok(&cli.run(w, &args), "an attached container");
    let pid = ok(
        &w.docker(&["inspect", "--format", "{{.State.Pid}}", &keeper]),
        "its pid",
    );
    let ns_pid = w.ns_pid.to_string();
    c.node_mut(1).daemon.kill9();
    let killed = std::process::Command::new("nsenter")
        .args(["-t", &ns_pid, "-p", "-m", "--", "kill", "-9", pid.trim()])
        .status()
        .expect("nsenter");
    assert!(killed.success(), "killing the attached container");
    c.node_mut(1).daemon.start_again();
    let ready = eventually(30, || {
        let o = c
            .node(0)
            .daemon
            .docker(&["node", "ls", "--format", "{{.Status}}"]);
        stdout(&o).lines().filter(|l| *l == "Ready").count() == 3
    });
    assert!(ready, "the worker is back");
    let same = ok(
        &c.node(1)
            .daemon
            .docker(&["inspect", "--format", "{{.State.Running}}", &worker_task.1]),
        "the worker's task",
    );
    assert_eq!(same.trim(), "true", "the task's container kept running");
    let mut seen = BTreeSet::new();
    let whole = eventually(20, || {
        seen = answering(c, &worker_task, &vip, 9);
        seen.len() == 3 && !seen.contains("x")
    });
    assert!(
        whole,
        "every replica through the VIP from the restarted worker: {seen:?}"
    );
    let ip = ok(
        &c.node(1).daemon.docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            &worker_task.1,
        ]),
        "the worker task's address",
    );
    let back = answering(c, &other_task, ip.trim(), 1);
    assert_eq!(
        back.len(),
        1,
        "node 0 reaches the restarted worker's task: {back:?}"
    );
    assert!(!back.contains("x"), "{back:?}");
    let m = &c.node(0).daemon;
    ok(&cli.run(m, &["service", "rm", &web]), "service rm");
    // the dead container's address was given back when the worker came up
    let removed = eventually(30, || code(&cli.run(m, &["network", "rm", &net])) == 0);
    assert!(removed, "network rm {net}");
    ok(
        &c.node(1).daemon.docker(&["rm", "-f", &keeper]),
        "rm the dead container",
    );
}

/// The issue's bad input, each refused with Docker's words and nothing
/// made: overlapping subnets, a VXLAN id in use, an attachable or second
/// ingress, a network in use, a service on ingress, a host-mode port a
/// local container holds.
fn bad_network_input_gets_dockers_words(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let x = letter(cli);
    let refused = |args: &[&str], want: &str| {
        let o = cli.run(m, args);
        assert_ne!(code(&o), 0, "{args:?} succeeded");
        assert!(
            stderr(&o).contains(want),
            "{args:?}: want {want:?}: {}",
            stderr(&o)
        );
    };
    let (a, b) = (format!("bada{x}"), format!("badb{x}"));
    let subnet = if x == "d" {
        "10.201.0.0/24"
    } else {
        "10.202.0.0/24"
    };
    ok(
        &cli.run(
            m,
            &["network", "create", "-d", "overlay", "--subnet", subnet, &a],
        ),
        "network create",
    );
    refused(
        &["network", "create", "-d", "overlay", "--subnet", subnet, &b],
        "Pool overlaps with other one on this address space",
    );
    let vni = if x == "d" { "5001" } else { "5002" };
    let opt = format!("com.docker.network.driver.overlay.vxlanid_list={vni}");
    ok(
        &cli.run(m, &["network", "create", "-d", "overlay", "-o", &opt, &b]),
        "network create with a VXLAN id",
    );
    let third = format!("badc{x}");
    refused(
        &["network", "create", "-d", "overlay", "-o", &opt, &third],
        &format!("could not assign vxlan id {vni} to pool"),
    );
    refused(
        &[
            "network",
            "create",
            "-d",
            "overlay",
            "--ingress",
            "--attachable",
            &third,
        ],
        "ingress network cannot be attachable",
    );
    refused(
        &["network", "create", "-d", "overlay", "--ingress", &third],
        "is already present",
    );
    refused(
        &[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--network",
            "ingress",
            "busybox",
            "true",
        ],
        "Service cannot be explicitly attached to the ingress network \"ingress\"",
    );
    let svc = format!("inuse{x}");
    ok(
        &cli.run(
            m,
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                &svc,
                "--network",
                &a,
                "busybox",
                "sleep",
                "600",
            ],
        ),
        "service create",
    );
    refused(&["network", "rm", &a], "is in use by service");

    // a host-mode port a local container holds: that node's task fails
    // with the engine's reason
    let w = &c.node(1).daemon;
    let port = if x == "d" { "8091" } else { "8092" };
    let holder = format!("holder{x}");
    ok(
        &w.docker(&[
            "run",
            "-d",
            "--name",
            &holder,
            "-p",
            &format!("{port}:80"),
            "busybox",
            "sleep",
            "600",
        ]),
        "a local container on the port",
    );
    let hostsvc = format!("hostclash{x}");
    let publish = format!("mode=host,published={port},target=80");
    let node1 = common::node_id(w);
    let constraint = format!("node.id=={node1}");
    ok(
        &cli.run(
            m,
            &[
                "service",
                "create",
                "--detach",
                "--no-resolve-image",
                "--name",
                &hostsvc,
                "--publish",
                &publish,
                "--constraint",
                &constraint,
                "busybox",
                "sleep",
                "600",
            ],
        ),
        "service create --publish mode=host",
    );
    let mut errors = String::new();
    let failed = eventually(30, || {
        let args = [
            "service",
            "ps",
            "--no-trunc",
            "--format",
            "{{.Error}}",
            hostsvc.as_str(),
        ];
        errors = stdout(&cli.run(m, &args));
        errors.contains("starting container failed")
    });
    assert!(failed, "the task fails: {errors}");
    assert!(
        errors.contains(&format!(
            "Bind for 0.0.0.0:{port} failed: port is already allocated"
        )),
        "{errors}"
    );
    ok(
        &cli.run(m, &["service", "rm", &svc, &hostsvc]),
        "service rm",
    );
    ok(&w.docker(&["rm", "-f", &holder]), "rm the holder");
    let removed = eventually(30, || code(&cli.run(m, &["network", "rm", &a, &b])) == 0);
    assert!(removed, "network rm {a} {b}");
}

/// A node's configuration network for a node-local swarm network: its
/// `network create --config-only` arguments, and whether an address is
/// one of its tasks'. A bridge network gets a subnet per node; a
/// macvlan network sits on the underlay's wire (`parent=eth0`), one
/// subnet with a range per node, its gateway the underlay's switch.
type Owns = Box<dyn Fn(&str) -> bool>;

fn node_config(driver: &str, third: u8, i: usize) -> (Vec<String>, Owns) {
    let mut args: Vec<String> = ["network", "create", "--config-only"]
        .map(String::from)
        .to_vec();
    if driver == "macvlan" {
        let low = 32 * (i as u8 + 1);
        let range = format!("198.19.{third}.{low}/27");
        args.extend(["--subnet".into(), format!("198.19.{third}.0/24")]);
        args.extend(["--gateway".into(), format!("198.19.{third}.1")]);
        args.extend(["--ip-range".into(), range]);
        args.extend(["-o".into(), "parent=eth0".into()]);
        let owns = move |ip: &str| {
            ip.parse::<std::net::Ipv4Addr>()
                .is_ok_and(|a| a.octets()[..3] == [198, 19, third] && a.octets()[3] & !31 == low)
        };
        (args, Box::new(owns))
    } else {
        args.extend(["--subnet".into(), format!("10.{third}.{i}.0/24")]);
        args.extend(["--gateway".into(), format!("10.{third}.{i}.1")]);
        let prefix = format!("10.{third}.{i}.");
        (args, Box::new(move |ip: &str| ip.starts_with(&prefix)))
    }
}

/// `--config-only` on each node, `--scope swarm --config-from` on the
/// manager: a global service's task on each node takes an address from
/// that node's own configuration, with no VIP; the service's name finds
/// the node's own task. On macvlan the tasks sit on the underlay's wire
/// and a client there calls each one at its own address.
fn node_local_networks_take_each_nodes_config(c: &Cluster, cli: Cli, driver: &str) {
    let m = &c.node(0).daemon;
    let x = format!("{}{}", &driver[..1], letter(cli));
    let (cfg, net, svc) = (format!("cfg{x}"), format!("local{x}"), format!("nl{x}"));
    let third: u8 = match x.as_str() {
        "bd" => 77,
        "bb" => 78,
        "md" => 1,
        _ => 2,
    };
    let mut owners = Vec::new();
    for i in 0..c.nodes.len() {
        let (mut args, owns) = node_config(driver, third, i);
        args.push(cfg.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        ok(
            &cli.run(&c.node(i).daemon, &args),
            "network create --config-only",
        );
        owners.push(owns);
    }
    if driver == "macvlan" {
        c.underlay_sh(&format!("ip addr add 198.19.{third}.1/24 dev br0"));
    }
    let o = ok(
        &cli.run(
            &c.node(1).daemon,
            &[
                "network",
                "inspect",
                "--format",
                "{{.Driver}} {{.Scope}} {{.ConfigOnly}}",
                &cfg,
            ],
        ),
        "inspect the configuration",
    );
    assert_eq!(o.trim(), "null local true");
    let args = [
        "network",
        "create",
        "-d",
        driver,
        "--scope",
        "swarm",
        "--config-from",
        &cfg,
        &net,
    ];
    ok(&cli.run(m, &args), "network create --config-from");
    let o = ok(
        &cli.run(
            m,
            &[
                "network",
                "inspect",
                "--format",
                "{{.Driver}} {{.Scope}} {{.ConfigFrom.Network}}",
                &net,
            ],
        ),
        "inspect the node-local network",
    );
    assert_eq!(o.trim(), format!("{driver} swarm {cfg}"));
    let args = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        &svc,
        "--mode",
        "global",
        "--network",
        &net,
        "busybox",
        "sh",
        "-c",
        CGI_HTTPD,
    ];
    ok(&cli.run(m, &args), "service create on a node-local network");
    running(c, cli, &svc, 3);
    let vips = ok(
        &cli.run(
            m,
            &[
                "service",
                "inspect",
                "--format",
                "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
                &svc,
            ],
        ),
        "service inspect",
    );
    assert_eq!(vips.trim(), "", "no VIP on a node-local network");
    let tasks = task_containers(c, &svc);
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    for t in &tasks {
        let ip = ok(
            &c.node(t.0).daemon.docker(&[
                "inspect",
                "--format",
                &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
                &t.1,
            ]),
            "the task's address",
        );
        let ip = ip.trim().to_string();
        assert!(
            owners[t.0](&ip),
            "node {}'s task has {ip}, from its own configuration",
            t.0
        );
        if driver == "macvlan" {
            let body = c.underlay_get(&ip, 80, "/cgi-bin/ip");
            assert!(
                body.as_deref()
                    .is_some_and(|b| b.contains(&format!("198.19.{third}.1] "))),
                "the underlay's client reaches node {}'s task at {ip} on the wire: {body:?}",
                t.0
            );
        }
        assert_eq!(
            lookup(c, t, &svc),
            BTreeSet::from([ip]),
            "{svc} on node {}",
            t.0
        );
    }

    // Docker's refusals
    let w = &c.node(1).daemon;
    let o = cli.run(w, &["run", "--rm", "--network", &cfg, "busybox", "true"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("cannot create endpoint on configuration-only network"),
        "{}",
        stderr(&o)
    );
    let o = cli.run(w, &["network", "rm", &cfg]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains(&format!("configuration network \"{cfg}\" is in use")),
        "{}",
        stderr(&o)
    );

    ok(&cli.run(m, &["service", "rm", &svc]), "service rm");
    let removed = eventually(30, || code(&cli.run(m, &["network", "rm", &net])) == 0);
    assert!(removed, "network rm {net}");
    for i in 0..c.nodes.len() {
        let d = &c.node(i).daemon;
        let gone = eventually(30, || code(&cli.run(d, &["network", "rm", &cfg])) == 0);
        assert!(gone, "network rm {cfg} on node {i}");
    }
    if driver == "macvlan" {
        c.underlay_sh(&format!("ip addr del 198.19.{third}.1/24 dev br0"));
    }
}

/// A client keeps calling a service by name while one node is drained and
/// the service scales 3 → 20 → 3: every request is answered (none goes to
/// a task that has gone), the drained node's task leaves `tasks.NAME`
/// within seconds, and the 20 all serve.
fn removed_tasks_leave_dns_and_the_vip_under_load(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let x = letter(cli);
    let (net, web, client) = (
        format!("lbnet{x}"),
        format!("lbweb{x}"),
        format!("lbcli{x}"),
    );
    ok(
        &cli.run(
            m,
            &["network", "create", "-d", "overlay", "--attachable", &net],
        ),
        "network create",
    );
    let args = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        &web,
        "--network",
        &net,
        "--replicas",
        "3",
        "busybox",
        "sh",
        "-c",
        CGI_HTTPD,
    ];
    ok(&cli.run(m, &args), "service create");
    let mut tasks = Vec::new();
    let up = eventually(60, || {
        tasks = task_containers(c, &web);
        tasks.len() == 3
    });
    assert!(up, "{web}: {tasks:?}");
    running(c, cli, &web, 3);
    let loop_ = format!(
        "while [ ! -f /stop ]; do printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 2 {web} 80 | tail -n 1 | grep . || echo FAILED x; done > /log 2>&1; touch /done; exec sleep 600"
    );
    ok(
        &cli.run(
            m,
            &[
                "run",
                "-d",
                "--name",
                &client,
                "--network",
                &net,
                "busybox",
                "sh",
                "-c",
                &loop_,
            ],
        ),
        "the client",
    );
    let at = (0usize, client.clone());
    let names = |n: usize| {
        let mut now = BTreeSet::new();
        let settled = eventually(60, || {
            now = lookup(c, &at, &format!("tasks.{web}"));
            now.len() == n
        });
        assert!(settled, "tasks.{web}: {now:?}, want {n}");
        now
    };
    let before = names(3);

    // node 2 drained: its task leaves the names
    let node2 = common::node_id(&c.node(2).daemon);
    let drain = ["node", "update", "--availability", "drain", node2.as_str()];
    ok(&cli.run(m, &drain), "drain");
    let t = std::time::Instant::now();
    let after = names(2);
    let took = t.elapsed();
    assert!(after.is_subset(&before), "{after:?} ⊂ {before:?}");
    assert!(
        took.as_secs() < 10,
        "the drained task left tasks.{web} after {took:?}"
    );
    let active = ["node", "update", "--availability", "active", node2.as_str()];
    ok(&cli.run(m, &active), "active");
    names(3);

    // 3 → 20 → 3
    let scale = |n: &str| {
        let to = format!("{web}={n}");
        ok(&cli.run(m, &["service", "scale", "--detach", &to]), "scale");
    };
    scale("20");
    names(20);
    scale("3");
    names(3);
    // the last replicas gone have stopped too
    let settled = eventually(30, || task_containers(c, &web).len() == 3);
    assert!(settled, "{web} back to 3 containers");

    ok(
        &m.docker(&["exec", &client, "touch", "/stop"]),
        "stop the client",
    );
    let done = eventually(10, || {
        code(&m.docker(&["exec", &client, "test", "-f", "/done"])) == 0
    });
    assert!(done, "the client's loop ended");
    let log = ok(
        &m.docker(&["exec", &client, "cat", "/log"]),
        "the client's log",
    );
    let lines: Vec<&str> = log.lines().collect();
    let failed = lines.iter().filter(|l| l.starts_with("FAILED")).count();
    let served: BTreeSet<&str> = lines
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        lines.len() > 50,
        "the client kept calling: {} requests",
        lines.len()
    );
    assert_eq!(failed, 0, "{failed} of {} requests failed", lines.len());
    assert!(
        served.len() > 3,
        "more than the first 3 replicas served: {served:?}"
    );
    ok(&m.docker(&["rm", "-f", &client]), "rm the client");
    ok(&cli.run(m, &["service", "rm", &web]), "service rm");
    let removed = eventually(30, || code(&cli.run(m, &["network", "rm", &net])) == 0);
    assert!(removed, "network rm {net}");
}

/// `docker run --network` on a worker: an attachable overlay gives the
/// container an address from the managers, the service's name (its VIP)
/// answers from the first instruction, another node's task finds the
/// container by name, and the address goes back when the container does.
fn attachable_overlays_take_docker_run(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let x = letter(cli);
    let (att, plain, web, box_) = (
        format!("att{x}"),
        format!("plain{x}"),
        format!("aweb{x}"),
        format!("box{x}"),
    );
    for args in [
        vec!["network", "create", "-d", "overlay", "--attachable", &att],
        vec!["network", "create", "-d", "overlay", &plain],
    ] {
        ok(&cli.run(m, &args), "network create");
    }
    let args = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        &web,
        "--network",
        &att,
        "--constraint",
        "node.role==manager",
        "busybox",
        "sh",
        "-c",
        CGI_HTTPD,
    ];
    ok(&cli.run(m, &args), "service create");
    let mut tasks = Vec::new();
    let up = eventually(60, || {
        tasks = task_containers(c, &web);
        tasks.len() == 1
    });
    assert!(up, "{web}: {tasks:?}");
    running(c, cli, &web, 1);
    serving(c, &tasks[0]);

    // a container on worker 1 calls the service by name
    let w = &c.node(1).daemon;
    // the managers tell node 0 of the new container as they would any
    // peer: a call may come before it knows where to answer, so the
    // container calls again for a few seconds, as a client would
    let call = format!(
        "for i in $(seq 10); do a=$(printf 'GET /cgi-bin/ip HTTP/1.0\r\n\r\n' | nc -w 2 {web} 80 | tail -n 1); [ -n \"$a\" ] && break; sleep 1; done; echo \"$a\""
    );
    let o = cli.run(
        w,
        &[
            "run",
            "--rm",
            "--network",
            &att,
            "busybox",
            "sh",
            "-c",
            &call,
        ],
    );
    let answer = ok(&o, "run --network on an attachable overlay");
    if !(answer.starts_with("[::ffff:10.") && answer.contains(&tasks[0].1[..12])) {
        let probe = format!(
            "cat /etc/resolv.conf; nslookup {web} 127.0.0.11; ip -br addr; ip route; ip neigh; {call}"
        );
        let again = cli.run(
            w,
            &[
                "run",
                "--rm",
                "--network",
                &att,
                "busybox",
                "sh",
                "-c",
                &probe,
            ],
        );
        panic!(
            "the replica answers the worker's container by its overlay address: {answer:?}\nagain: {}{}\nnode 1: {}\nnode 0: {}",
            stdout(&again),
            stderr(&again),
            debug_node(c, 1, &[]),
            debug_node(c, 0, &tasks)
        );
    }

    // a container on worker 2 is found by name from the task on node 0
    let w2 = &c.node(2).daemon;
    ok(
        &cli.run(
            w2,
            &[
                "run",
                "-d",
                "--name",
                &box_,
                "--network",
                &att,
                "busybox",
                "sh",
                "-c",
                CGI_HTTPD,
            ],
        ),
        "run -d on the attachable overlay",
    );
    let ip = ok(
        &w2.docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{att}\").IPAddress}}}}"),
            &box_,
        ]),
        "the container's overlay address",
    );
    let ip = ip.trim().to_string();
    let mut found = BTreeSet::new();
    let resolved = eventually(10, || {
        found = lookup(c, &tasks[0], &box_);
        found == BTreeSet::from([ip.clone()])
    });
    assert!(resolved, "{box_} by name from node 0: {found:?}, want {ip}");
    let seen = answering(c, &tasks[0], &ip, 1);
    assert_eq!(seen.len(), 1, "node 0's task reaches {box_}: {seen:?}");
    assert!(!seen.contains("x"), "{seen:?}");

    // Docker's refusals
    let o = cli.run(w, &["run", "--rm", "--network", &plain, "busybox", "true"]);
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "Could not attach to network {plain}: rpc error: code = PermissionDenied desc = network {plain} not manually attachable"
        )),
        "{}",
        stderr(&o)
    );
    let o = cli.run(
        w,
        &["run", "--rm", "--network", "nosuch", "busybox", "true"],
    );
    assert_eq!(code(&o), 125, "{}", stderr(&o));
    assert!(
        stderr(&o).contains("network nosuch not found"),
        "{}",
        stderr(&o)
    );

    // the container gone, its node lets the network go and nothing holds
    // the network in the cluster
    ok(&w2.docker(&["rm", "-f", &box_]), "rm");
    let left = eventually(20, || {
        let ls = stdout(&cli.run(w2, &["network", "ls", "--format", "{{.Name}}"]));
        !ls.lines().any(|l| l == att)
    });
    assert!(left, "{att} still on worker 2");
    ok(&cli.run(m, &["service", "rm", &web]), "service rm");
    let removed = eventually(30, || {
        code(&cli.run(m, &["network", "rm", &att, &plain])) == 0
    });
    assert!(removed, "network rm {att} {plain}");
}

/// `--publish …,protocol=udp`: a datagram to any node's port reaches the
/// task on node 2, which sees the client's own address, and its answer
/// comes back through the node it came in by.
fn udp_goes_through_the_mesh(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let (svc, port) = match cli {
        Cli::Docker => ("udpd", 5353u16),
        Cli::Berth => ("udpb", 5354u16),
    };
    let node2 = common::node_id(&c.node(2).daemon);
    let (publish, constraint) = (
        format!("published={port},target=5300,protocol=udp"),
        format!("node.id=={node2}"),
    );
    let args = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        svc,
        "--publish",
        &publish,
        "--constraint",
        &constraint,
        "busybox",
        "sleep",
        "600",
    ];
    ok(&cli.run(m, &args), "service create --publish protocol=udp");
    running(c, cli, svc, 1);
    let task = task_containers(c, svc).pop().expect("the task");
    let d2 = &c.node(2).daemon;
    let id = ok(
        &d2.docker(&["inspect", "--format", "{{.Id}}", &task.1]),
        "the task's id",
    );
    // the container's namespace as the node's mount namespace pins it
    let netns = format!(
        "/proc/{}/root{}/netns/{}",
        d2.ns_pid,
        d2.exec_root().display(),
        id.trim()
    );
    // it ends by itself once the checks are long done
    let _server = common::cluster::udp_echo_in(&netns, 5300, 30);
    for i in [0usize, 2] {
        let addr = c.node(i).addr.clone();
        let mut answer = None;
        let through = eventually(10, || {
            answer = c.underlay_udp(&addr, port, "ping");
            answer.is_some()
        });
        assert!(
            through,
            "{addr}:{port}/udp through the mesh: {}",
            debug_node(c, i, std::slice::from_ref(&task))
        );
        assert_eq!(
            answer.as_deref(),
            Some(format!("{CLIENT_ADDR} ping").as_str()),
            "the task sees the client's own address"
        );
    }
    ok(&cli.run(m, &["service", "rm", svc]), "service rm");
}

/// `--publish mode=host` on a global service: each node's port is bound
/// by that node's own task, and answers with it.
fn host_mode_ports_answer_where_a_task_runs(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let (svc, port) = match cli {
        Cli::Docker => ("hostd", 8082u16),
        Cli::Berth => ("hostb", 8083u16),
    };
    let publish = format!("mode=host,published={port},target=80");
    let args = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        svc,
        "--mode",
        "global",
        "--publish",
        &publish,
        "busybox",
        "sh",
        "-c",
        CGI_HTTPD,
    ];
    ok(&cli.run(m, &args), "service create --publish mode=host");
    let mut tasks = Vec::new();
    let up = eventually(60, || {
        tasks = task_containers(c, svc);
        tasks.len() == 3
    });
    assert!(up, "a task on each node: {tasks:?}");
    for (node, container) in &tasks {
        let addr = c.node(*node).addr.clone();
        let mut body = String::new();
        let answered = eventually(20, || {
            body = c
                .underlay_get(&addr, port, "/cgi-bin/ip")
                .unwrap_or_default();
            !body.is_empty()
        });
        assert!(answered, "{addr}:{port} in host mode");
        let replica = body.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            container.starts_with(replica),
            "node {node} answers with its own task: {body}"
        );
    }
    let ports = ok(
        &cli.run(
            m,
            &[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Ports}}",
                svc,
            ],
        ),
        "service ps",
    );
    let want = format!("*:{port}->80/tcp");
    assert!(ports.lines().all(|l| l == want), "{want}: {ports}");
    ok(&cli.run(m, &["service", "rm", svc]), "service rm");
}

/// `--publish 8080:80` on two replicas: every node's address answers,
/// both replicas serve, and each sees the outside client's own address
/// (Docker's mesh shows its load balancer's); a node's own clients are
/// served too. A port another service holds is refused; 0 takes one of
/// 30000-32767.
fn the_mesh_answers_on_every_node_with_the_clients_address(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let (svc, port) = match cli {
        Cli::Docker => ("meshd", 8080u16),
        Cli::Berth => ("meshb", 8081u16),
    };
    let publish = format!("published={port},target=80");
    let create = |name: &str, publish: &str, replicas: &str| {
        let args = [
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            name,
            "--publish",
            publish,
            "--replicas",
            replicas,
            "--replicas-max-per-node",
            "1",
            "busybox",
            "sh",
            "-c",
            CGI_HTTPD,
        ];
        cli.run(m, &args)
    };
    ok(&create(svc, &publish, "2"), "service create --publish");
    let mut tasks = Vec::new();
    let up = eventually(60, || {
        tasks = task_containers(c, svc);
        tasks.len() == 2
    });
    assert!(up, "2 replicas of {svc}: {tasks:?}");
    let path = "/cgi-bin/ip";
    let mut replicas = BTreeSet::new();
    for i in 0..c.nodes.len() {
        let addr = c.node(i).addr.clone();
        let answers = eventually(20, || c.underlay_get(&addr, port, path).is_some());
        assert!(
            answers,
            "{addr}:{port} through the mesh: {}",
            debug_node(c, i, &tasks)
        );
        for _ in 0..4 {
            let body = c.underlay_get(&addr, port, path).unwrap_or_default();
            let mut words = body.split_whitespace();
            let client = words.next().unwrap_or_default().to_string();
            assert_eq!(
                client,
                format!("[::ffff:{}]", common::cluster::CLIENT_ADDR),
                "the task sees the client's address, through node {i}"
            );
            replicas.extend(words.next().map(str::to_string));
        }
    }
    // the second replica serves once it reports running
    let both = eventually(20, || {
        let body = c
            .underlay_get(&c.node(0).addr, port, path)
            .unwrap_or_default();
        replicas.extend(body.split_whitespace().nth(1).map(str::to_string));
        replicas.len() == 2
    });
    assert!(both, "both replicas serve: {replicas:?}");
    // the node's own clients, through its loopback
    let own = c.node_get(1, "127.0.0.1", port, path).unwrap_or_default();
    assert!(
        own.starts_with("[::ffff:10.0.0."),
        "from node 1 itself: {own}"
    );

    let clash = create("clash", &publish, "1");
    assert_ne!(code(&clash), 0, "a port another service publishes");
    assert!(
        stderr(&clash).contains(&format!(
            "port '{port}' is already in use by service '{svc}'"
        )),
        "{}",
        stderr(&clash)
    );
    let dynamic = format!("dyn{svc}");
    ok(
        &create(&dynamic, "target=80", "1"),
        "service create --publish target=80",
    );
    let format = "{{range .Endpoint.Ports}}{{.PublishedPort}}{{end}}";
    let picked = ok(
        &cli.run(m, &["service", "inspect", "--format", format, &dynamic]),
        "inspect",
    );
    let picked: u32 = picked.trim().parse().unwrap_or(0);
    assert!(
        (30000..=32767).contains(&picked),
        "a dynamic port: {picked}"
    );
    ok(&cli.run(m, &["service", "rm", svc, &dynamic]), "service rm");
    let closed = eventually(20, || c.underlay_get(&c.node(0).addr, port, path).is_none());
    assert!(closed, "{port} closes with its service");
}

/// swarm init refuses a bad pool or data path port with dockerd's words.
fn init_checks_on_a_fresh_node() {
    let d = Daemon::start();
    for cli in [Cli::Docker, Cli::Berth] {
        let cases: [(&[&str], &str); 4] = [
            (
                &[
                    "--default-addr-pool",
                    "10.20.0.0/16",
                    "--default-addr-pool-mask-length",
                    "30",
                ],
                "subnet size is out of range: 30",
            ),
            (
                &[
                    "--default-addr-pool",
                    "10.0.0.0/8",
                    "--default-addr-pool-mask-length",
                    "4",
                ],
                "Subnet size is too small for pool: 4",
            ),
            (
                &["--data-path-port", "80"],
                "Datapath port number is not in valid range (1024-49151) : 80",
            ),
            (
                &["--data-path-addr", "0.0.0.0"],
                "data path address must be a non-zero IP address or network interface (without a port number)",
            ),
        ];
        for (flags, want) in cases {
            let mut args = vec!["swarm", "init", "--advertise-addr", "127.0.0.1"];
            args.extend_from_slice(flags);
            let o = cli.run(&d, &args);
            assert_ne!(code(&o), 0, "{args:?} succeeded");
            assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
        }
    }
    // a pool and mask length that pass give the ingress network its subnet
    let init = [
        "swarm",
        "init",
        "--advertise-addr",
        "127.0.0.1",
        "--default-addr-pool",
        "10.123.0.0/16",
        "--default-addr-pool-mask-length",
        "26",
    ];
    ok(&d.docker(&init), "swarm init with a pool");
    let format = "{{range .IPAM.Config}}{{.Subnet}}{{end}}";
    let subnet = ok(
        &d.docker(&["network", "inspect", "--format", format, "ingress"]),
        "inspect ingress",
    );
    assert_eq!(subnet.trim(), "10.123.0.0/26");
}

fn the_ingress_network_is_made_at_init(c: &Cluster) {
    let m = &c.node(0).daemon;
    for cli in [Cli::Docker, Cli::Berth] {
        let format = r#"{{.Driver}} {{.Scope}} {{.Ingress}} {{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{index .Options "com.docker.network.driver.overlay.vxlanid_list"}}"#;
        let shown = ok(
            &cli.run(m, &["network", "inspect", "--format", format, "ingress"]),
            "inspect ingress",
        );
        assert_eq!(shown.trim(), "overlay swarm true 10.0.0.0/24 10.0.0.1 4096");
    }
}

fn encrypted_is_refused_without_esp(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let o = cli.run(
        m,
        &[
            "network",
            "create",
            "-d",
            "overlay",
            "-o",
            "encrypted",
            "secure",
        ],
    );
    assert_ne!(code(&o), 0, "an encrypted network on a kernel without ESP");
    assert!(
        stderr(&o).contains("cannot create secure network: required modules to install IPSEC rules are missing on host"),
        "{}",
        stderr(&o)
    );
    let ls = ok(
        &cli.run(m, &["network", "ls", "--format", "{{.Name}}"]),
        "ls",
    );
    assert!(!ls.lines().any(|l| l == "secure"), "nothing made: {ls}");
}

/// The running containers of `service`: (node, container id).
fn task_containers(c: &Cluster, service: &str) -> Vec<(usize, String)> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    (0..c.nodes.len())
        .flat_map(|i| {
            let o = c.node(i).daemon.docker(&["ps", "-q", "--filter", &filter]);
            stdout(&o)
                .lines()
                .map(|id| (i, id.to_string()))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn exec(c: &Cluster, at: &(usize, String), script: &str) -> (i32, String) {
    let o = c
        .node(at.0)
        .daemon
        .docker(&["exec", &at.1, "sh", "-c", script]);
    (code(&o), stdout(&o) + &stderr(&o))
}

/// The addresses `nslookup NAME` gives inside a container.
fn lookup(c: &Cluster, at: &(usize, String), name: &str) -> BTreeSet<String> {
    let (_, out) = exec(c, at, &format!("nslookup {name} 127.0.0.11"));
    // busybox prints the server first, then "Name: …" and "Address: …"
    out.split("Name:")
        .skip(1)
        .flat_map(|part| {
            part.lines()
                .filter_map(|l| l.trim().strip_prefix("Address:"))
                .map(|a| a.trim().split(' ').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        })
        .filter(|a| a.contains('.'))
        .collect()
}

/// `GET /cgi-bin/ip` from `at` to `ip` port 80, `tries` times: the
/// answers, "caller-address replica-hostname" each, or "FAILED x" (nc:
/// Debian's static busybox wget crashes).
fn get_ip(c: &Cluster, at: &(usize, String), ip: &str, tries: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {tries}); do printf 'GET /cgi-bin/ip HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} 80 | tail -n 1 | grep . || echo FAILED x; done"
    );
    let (_, out) = exec(c, at, &script);
    out.lines().map(str::to_string).collect()
}

/// Waits until the task's httpd answers on its own loopback: "running"
/// is its shell's start, not its server's.
fn serving(c: &Cluster, at: &(usize, String)) {
    let mut last = Vec::new();
    let up = eventually(20, || {
        last = get_ip(c, at, "127.0.0.1", 1);
        last.iter().any(|l| l.contains("127.0.0.1"))
    });
    assert!(up, "the httpd of {at:?}: {last:?}");
}

/// The hostnames answering at `ip` over `tries` requests from `at`.
fn answering(c: &Cluster, at: &(usize, String), ip: &str, tries: usize) -> BTreeSet<String> {
    get_ip(c, at, ip, tries)
        .iter()
        .filter_map(|l| l.split_whitespace().nth(1).map(str::to_string))
        .collect()
}

fn tasks_meet_over_the_overlay(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let x = letter(cli);
    let (net, web, rr) = (format!("ov{x}"), format!("web{x}"), format!("rr{x}"));
    ok(
        &cli.run(m, &["network", "create", "-d", "overlay", &net]),
        "network create",
    );
    let network = format!("name={net},alias=www{x}");
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            name,
            "--network",
            &network,
            "--replicas",
            "3",
            "--replicas-max-per-node",
            "1",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&["busybox", "sh", "-c", CGI_HTTPD]);
        ok(&cli.run(m, &args), "service create");
    };
    create(&web, &[]);
    let mut tasks = Vec::new();
    let up = eventually(60, || {
        tasks = task_containers(c, &web);
        tasks.len() == 3
    });
    assert!(up, "3 replicas of {web}: {tasks:?}");
    let nodes: BTreeSet<usize> = tasks.iter().map(|(n, _)| *n).collect();
    assert_eq!(nodes.len(), 3, "one replica per node");

    // the store's addresses: a VIP in the network's subnet, one per task
    let vip = ok(
        &cli.run(
            m,
            &[
                "service",
                "inspect",
                "--format",
                "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
                &web,
            ],
        ),
        "service inspect",
    );
    let vip = vip.trim().split('/').next().unwrap_or("").to_string();
    let subnet = ok(
        &cli.run(
            m,
            &[
                "network",
                "inspect",
                "--format",
                "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
                &net,
            ],
        ),
        "network inspect",
    );
    let prefix = subnet
        .trim()
        .rsplit_once('.')
        .map(|(p, _)| p.to_string())
        .unwrap_or_default();
    assert!(
        vip.starts_with(&format!("{prefix}.")),
        "VIP {vip} in {subnet}"
    );

    // by address: from the replica on node 0 to the one on node 2
    let a = tasks
        .iter()
        .find(|(n, _)| *n == 0)
        .cloned()
        .expect("a replica on node 0");
    let b = tasks
        .iter()
        .find(|(n, _)| *n == 2)
        .cloned()
        .expect("a replica on node 2");
    let b_ip = ok(
        &c.node(2).daemon.docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            &b.1,
        ]),
        "the replica's address",
    );
    let b_ip = b_ip.trim().to_string();
    assert!(b_ip.starts_with(&format!("{prefix}.")), "{b_ip}");
    let out = get_ip(c, &a, &b_ip, 1).join("");
    assert!(
        !out.contains("FAILED"),
        "node 0 to node 2 over VXLAN: {out}"
    );
    // on the cluster's data path: its UDP port, each node's data address
    let net_id = ok(
        &cli.run(m, &["network", "inspect", "--format", "{{.Id}}", &net]),
        "network id",
    );
    let vxlan = in_overlay_ns(
        c,
        0,
        net_id.trim(),
        "ip -d link show type vxlan; bridge fdb show",
    );
    assert!(vxlan.contains(&format!("dstport {DATA_PORT}")), "{vxlan}");
    assert!(
        vxlan.contains(&format!("dst {} ", data_addr(2))),
        "node 2's tasks behind its --data-path-addr: {vxlan}"
    );
    let a_ip = ok(
        &c.node(0).daemon.docker(&[
            "inspect",
            "--format",
            &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
            &a.1,
        ]),
        "the caller's address",
    );
    // httpd listens on [::]: "[::ffff:10.0.1.3] hostname"
    assert!(
        out.starts_with(&format!("[::ffff:{}]", a_ip.trim())),
        "the callee sees the caller's own address: {out}"
    );

    // by name: the VIP, balanced over all three; tasks.NAME; the alias
    assert_eq!(
        lookup(c, &a, &web),
        BTreeSet::from([vip.clone()]),
        "{}",
        exec(
            c,
            &a,
            &format!("nslookup {web} 127.0.0.11; cat /etc/resolv.conf; ip addr")
        )
        .1
    );
    let task_ips = lookup(c, &a, &format!("tasks.{web}"));
    assert_eq!(task_ips.len(), 3, "tasks.{web}: {task_ips:?}");
    assert_eq!(
        lookup(c, &a, &format!("www{x}")),
        BTreeSet::from([vip.clone()])
    );
    let seen = answering(c, &a, &vip, 12);
    assert_eq!(seen.len(), 3, "every replica behind the VIP: {seen:?}");
    assert!(!seen.contains("x"), "no failed request: {seen:?}");

    // a worker has the network while a task there uses it
    let w = &c.node(1).daemon;
    let ls = ok(
        &cli.run(
            w,
            &[
                "network",
                "ls",
                "--format",
                "{{.Name}} {{.Driver}} {{.Scope}}",
            ],
        ),
        "ls",
    );
    assert!(ls.contains(&format!("{net} overlay swarm")), "{ls}");
    assert!(ls.contains("docker_gwbridge bridge local"), "{ls}");

    // inspect where a task runs: the node's instance, with its container,
    // every node as a peer (at its data address) and, verbose, the
    // service's VIP and tasks
    for node in [m, w] {
        let format = "{{len .Containers}} {{range .Peers}}{{.IP}} {{end}}";
        let o = ok(
            &cli.run(node, &["network", "inspect", "--format", format, &net]),
            "inspect",
        );
        let want: Vec<String> = (0..3).map(data_addr).collect();
        assert_eq!(
            o.trim(),
            format!("1 {}", want.join(" ")),
            "containers, peers"
        );
    }
    let format =
        format!("{{{{with index .Services \"{web}\"}}}}{{{{.VIP}}}} {{{{len .Tasks}}}}{{{{end}}}}");
    let o = ok(
        &cli.run(
            w,
            &["network", "inspect", "--verbose", "--format", &format, &net],
        ),
        "inspect --verbose",
    );
    assert_eq!(o.trim(), format!("{vip} 3"), "the service on {net}");

    // scaled down: the removed task leaves DNS and the VIP
    ok(
        &cli.run(m, &["service", "scale", "--detach", &format!("{web}=2")]),
        "scale",
    );
    let mut now = BTreeSet::new();
    let shrunk = eventually(20, || {
        now = lookup(c, &a, &format!("tasks.{web}"));
        now.len() == 2
    });
    assert!(shrunk, "tasks.{web} after scaling to 2: {now:?}");
    assert!(now.is_subset(&task_ips), "{now:?} ⊂ {task_ips:?}");
    let caller = tasks_left(c, &web);
    let seen = answering(c, &caller, &vip, 10);
    assert_eq!(seen.len(), 2, "two replicas behind the VIP: {seen:?}");
    assert!(
        !seen.contains("x"),
        "no request to a task that has gone: {seen:?}"
    );

    // dnsrr: the name gives the tasks, and there is no VIP
    create(&rr, &["--endpoint-mode", "dnsrr"]);
    let mut rr_ips = BTreeSet::new();
    let listed = eventually(60, || {
        rr_ips = lookup(c, &caller, &rr);
        rr_ips.len() == 3
    });
    assert!(listed, "{rr} by dnsrr: {rr_ips:?}");
    assert_eq!(rr_ips, lookup(c, &caller, &format!("tasks.{rr}")));
    let rr_vips = ok(
        &cli.run(
            m,
            &[
                "service",
                "inspect",
                "--format",
                "{{range .Endpoint.VirtualIPs}}{{.Addr}}{{end}}",
                &rr,
            ],
        ),
        "dnsrr inspect",
    );
    assert_eq!(rr_vips.trim(), "", "a dnsrr service has no VIP");

    // once no task uses it, a worker lets the network go; then it is removed
    ok(&cli.run(m, &["service", "rm", &web, &rr]), "service rm");
    let gone = eventually(30, || {
        let ls = stdout(&cli.run(w, &["network", "ls", "--format", "{{.Name}}"]));
        !ls.lines().any(|l| l == net)
    });
    assert!(gone, "{net} still on the worker");
    let removed = eventually(30, || code(&cli.run(m, &["network", "rm", &net])) == 0);
    assert!(removed, "network rm {net}");
}

/// Waits until the managers have `n` tasks of `service` running: only
/// then are they behind its VIP.
fn running(c: &Cluster, cli: Cli, service: &str, n: usize) {
    let m = &c.node(0).daemon;
    let args = [
        "service",
        "ps",
        "--filter",
        "desired-state=running",
        "--format",
        "{{.CurrentState}}",
        service,
    ];
    let mut states = String::new();
    let up = eventually(60, || {
        states = stdout(&cli.run(m, &args));
        states.lines().filter(|l| l.starts_with("Running")).count() == n
    });
    assert!(up, "{n} tasks of {service} running: {states}");
}

/// `cmd`'s output in node `i`'s namespace of the swarm network `id`.
fn in_overlay_ns(c: &Cluster, i: usize, id: &str, cmd: &str) -> String {
    let short = id.get(..12).unwrap_or(id);
    let ns = c
        .node(i)
        .daemon
        .exec_root()
        .join(format!("netns/ov-{short}"));
    c.node_sh(i, &format!("nsenter --net={} sh -c '{cmd}'", ns.display()))
}

/// A running replica of `service`, once the scale-down has settled.
fn tasks_left(c: &Cluster, service: &str) -> (usize, String) {
    let mut left = Vec::new();
    let settled = eventually(30, || {
        left = task_containers(c, service);
        left.len() == 2
    });
    assert!(settled, "{service}: {left:?}");
    left.remove(0)
}

/// What a node's namespace and its tasks hold, for a failed mesh check.
fn debug_node(c: &Cluster, i: usize, tasks: &[(usize, String)]) -> String {
    let pid = c.node(i).daemon.ns_pid.to_string();
    let o = std::process::Command::new("nsenter")
        .args([
            "-t",
            &pid,
            "-m",
            "-n",
            "--",
            "sh",
            "-c",
            "nft list table ip berth-mesh; ip -br addr; ip route; ip neigh; grep -E '8080|8081' /proc/net/nf_conntrack; cat /proc/sys/net/ipv4/ip_forward /proc/sys/net/ipv4/conf/*/rp_filter; for f in $(find / -xdev -name 'ov-*' -path '*netns*' 2>/dev/null); do echo $f; nsenter --net=$f sh -c 'ip -br link; ip neigh; bridge fdb show | grep dst'; done",
        ])
        .output()
        .expect("nsenter");
    let mut out =
        String::from_utf8_lossy(&o.stdout).to_string() + &String::from_utf8_lossy(&o.stderr);
    for t in tasks {
        out += &exec(c, t, "ip -br addr; ip route; ip rule; ip route show table all | grep 2001; cat /proc/net/nf_conntrack 2>/dev/null | head").1;
    }
    out
}
