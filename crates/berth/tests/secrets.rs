//! Secrets and configs on a namespace cluster of one manager and two
//! workers (issue #21), through the docker CLI and berth's: the seeds'
//! `secret create … -` and `service create --secret`, a secret and a
//! config delivered to a task on a worker with the asked owner and mode,
//! in memory only (absent from every node's disk, the log, `inspect` and
//! events), rotation Docker's way and with `berth secret rotate`, and
//! Docker's errors for bad input; then stacks from compose files: deployed,
//! edited and redeployed (only the changed service updates, and a deploy
//! by the other CLI changes nothing), pruned and removed, berth's
//! `depends_on` order and its compose errors. One cluster serves every
//! check.

mod common;

use std::io::Write;
use std::process::{Output, Stdio};

use common::cluster::Cluster;
use common::{Cli, Daemon, code, eventually, ok, same, stderr, stdout};

const VALUE: &str = "haslo123456";

/// The CLI with `input` on its standard input.
fn with_input(cli: Cli, d: &Daemon, args: &[&str], input: &[u8]) -> Output {
    let mut child = cli
        .command(d)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the CLI");
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input);
    }
    child.wait_with_output().expect("running the CLI")
}

/// How many containers of `service` run on the nodes.
fn containers(c: &Cluster, service: &str) -> usize {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    c.nodes
        .iter()
        .map(|n| {
            stdout(&n.daemon.docker(&["ps", "-q", "--filter", &filter]))
                .lines()
                .count()
        })
        .sum()
}

/// The node and container running `service`'s one task.
fn task_container(c: &Cluster, service: &str) -> Option<(usize, String)> {
    let filter = format!("label=com.docker.swarm.service.name={service}");
    (0..c.nodes.len()).find_map(|i| {
        let o = c.node(i).daemon.docker(&["ps", "-q", "--filter", &filter]);
        let ids = stdout(&o);
        let mut lines = ids.lines();
        match (lines.next(), lines.next()) {
            (Some(id), None) => Some((i, id.to_string())),
            _ => None,
        }
    })
}

/// Waits for `service`'s task to run a container other than `not`, and
/// returns where.
fn running(c: &Cluster, service: &str, not: Option<&str>) -> (usize, String) {
    let mut found = None;
    let ok = eventually(40, || {
        found = task_container(c, service).filter(|(_, id)| Some(id.as_str()) != not);
        found.is_some()
    });
    assert!(ok, "{service}: no new running task");
    found.expect("found")
}

fn now_secs() -> String {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    now.map_or(0, |d| d.as_secs()).to_string()
}

fn exec(c: &Cluster, at: &(usize, String), script: &str) -> String {
    let o = c
        .node(at.0)
        .daemon
        .docker(&["exec", &at.1, "sh", "-c", script]);
    assert_eq!(code(&o), 0, "{script}: {}", stderr(&o));
    stdout(&o)
}

#[test]
fn secrets_configs_and_stacks_on_one_cluster() {
    let c = Cluster::swarm(3);
    for cli in [Cli::Docker, Cli::Berth] {
        a_secret_and_a_config_in_a_task_on_a_worker(&c, cli);
        bad_input_gets_dockers_errors(&c, cli);
    }
    for (cli, other) in [(Cli::Docker, Cli::Berth), (Cli::Berth, Cli::Docker)] {
        overlay_networks_are_the_swarms(&c, cli);
        a_stack_deployed_edited_pruned_and_removed(&c, cli, other);
    }
    berths_stack_orders_by_depends_on_and_names_compose_errors(&c);
    large_configs_reach_a_new_manager(&c);
}

/// Five configs of nearly 1000 KB, written back to back, then a worker
/// promoted: the log entries (and a batch of them) are larger than gRPC's
/// default 4 MiB message, and the new manager must still catch up.
fn large_configs_reach_a_new_manager(c: &Cluster) {
    let m = &c.node(0).daemon;
    let big = m.dir.path().join("big.conf");
    std::fs::write(&big, vec![b'c'; 1000 * 1024 - 1]).expect("big config");
    let path = big.to_str().expect("utf-8 path");
    for i in 0..5 {
        let name = format!("big{i}");
        ok(
            &m.docker(&["config", "create", &name, path]),
            "config create",
        );
    }
    let worker = &c.node(1).daemon;
    let id = common::node_id(worker);
    ok(&m.docker(&["node", "promote", &id]), "node promote");
    let caught_up = eventually(60, || {
        let o = worker.docker(&["config", "ls", "-q", "--filter", "name=big"]);
        code(&o) == 0 && stdout(&o).lines().count() == 5
    });
    assert!(caught_up, "{}", stderr(&worker.docker(&["config", "ls"])));
    let size = ok(
        &worker.docker(&[
            "config",
            "inspect",
            "--format",
            "{{len .Spec.Data}}",
            "big4",
        ]),
        "config inspect",
    );
    assert_eq!(size.trim(), (1000 * 1024 - 1).to_string());
}

/// Overlay networks live in the managers' store (their data plane is
/// #22's): made, listed and inspected beside the local ones, named by
/// services (stored by id), kept while a service uses them, and refused
/// with Docker's words on a worker, for an overlapping subnet, a taken
/// name and a local network on a service.
fn overlay_networks_are_the_swarms(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let fails = |o: Output, want: &str| {
        assert_ne!(code(&o), 0, "succeeded: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    };
    let create = [
        "network",
        "create",
        "-d",
        "overlay",
        "--subnet",
        "10.77.0.0/24",
        "--label",
        "k=v",
        "ovl",
    ];
    let id = ok(&cli.run(m, &create), "network create")
        .trim()
        .to_string();
    assert_eq!(id.len(), 25, "a swarm id: {id}");
    let format = "{{.Name}} {{.Driver}} {{.Scope}}";
    let ls = ok(
        &cli.run(
            m,
            &[
                "network",
                "ls",
                "--filter",
                "driver=overlay",
                "--format",
                format,
            ],
        ),
        "network ls",
    );
    assert_eq!(ls, "ingress overlay swarm\novl overlay swarm\n");
    let format =
        r#"{{range .IPAM.Config}}{{.Subnet}} {{.Gateway}}{{end}} {{index .Labels "k"}} {{.Scope}}"#;
    let shown = ok(
        &cli.run(m, &["network", "inspect", "--format", format, "ovl"]),
        "network inspect",
    );
    assert_eq!(shown, "10.77.0.0/24 10.77.0.1 v swarm\n");
    fails(
        cli.run(
            m,
            &[
                "network",
                "create",
                "-d",
                "overlay",
                "--subnet",
                "10.77.0.128/25",
                "ovl2",
            ],
        ),
        "Pool overlaps with other one on this address space",
    );
    fails(
        cli.run(m, &["network", "create", "-d", "overlay", "ovl"]),
        "network with name ovl already exists",
    );
    fails(
        cli.run(
            &c.node(2).daemon,
            &["network", "create", "-d", "overlay", "w"],
        ),
        "Cannot create a multi-host network from a worker node. Please create the network from a manager node.",
    );
    let service = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        "netuser",
        "--network",
        "name=ovl,alias=nu",
        "busybox",
        "sleep",
        "1000",
    ];
    ok(&cli.run(m, &service), "service create --network");
    let target = ok(
        &cli.run(
            m,
            &[
                "service",
                "inspect",
                "--format",
                "{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{.Aliases}}{{end}}",
                "netuser",
            ],
        ),
        "service inspect",
    );
    assert_eq!(target, format!("{id} [nu]\n"));
    fails(
        cli.run(m, &["network", "rm", "ovl"]),
        &format!("rpc error: code = FailedPrecondition desc = network {id} is in use by service "),
    );
    ok(
        &cli.run(m, &["network", "create", "locnet"]),
        "local network",
    );
    let local = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--network",
        "locnet",
        "busybox",
    ];
    // both CLIs resolve the name with the swarm scope first (404); an API
    // client that sends the name gets the daemon's 403
    fails(cli.run(m, &local), "network locnet not found");
    let spec = br#"{"Name":"l","TaskTemplate":{"ContainerSpec":{"Image":"busybox"},"Networks":[{"Target":"locnet"}]}}"#;
    let (status, _, body) =
        common::raw_request(&m.sock, "POST", "/services/create", Some(spec)).expect("request");
    assert_eq!(status, 403, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("The network locnet cannot be used with services. Only networks scoped to the swarm can be used, such as those created with the overlay driver."),
        "{}",
        String::from_utf8_lossy(&body)
    );
    ok(&cli.run(m, &["service", "rm", "netuser"]), "service rm");
    let rm = ok(
        &cli.run(m, &["network", "rm", "ovl", "locnet"]),
        "network rm",
    );
    assert_eq!(rm, "ovl\nlocnet\n");
    assert!(
        eventually(30, || containers(c, "netuser") == 0),
        "netuser outlived rm"
    );
}

/// The stack's parts: db and its secret alone make the pruned stack.
macro_rules! db_service {
    () => {
        r#"version: "3.8"
services:
  db:
    image: busybox
    command: sleep 1000
    environment:
      ROLE: db
    secrets:
      - db_pw
"#
    };
}

macro_rules! db_secret {
    () => {
        r#"secrets:
  db_pw:
    file: ./db_pw.txt
"#
    };
}

const STACK: &str = concat!(
    db_service!(),
    r#"  web:
    image: busybox
    command: ["sleep", "1000"]
    depends_on:
      - db
    environment:
      ROLE: ${WEB_ROLE:-web}
    configs:
      - source: app
        target: /etc/app.conf
    deploy:
      replicas: 2
"#,
    db_secret!(),
    r#"configs:
  app:
    file: ./app.conf
"#
);

/// The stack without web (and its config).
const STACK_DB_ONLY: &str = concat!(db_service!(), db_secret!());

/// A directory with the stack's files; `web_role` edits web's environment
/// through `.env` (berth) or the process environment (both CLIs).
fn stack_dir(m: &Daemon, name: &str, compose: &str) -> std::path::PathBuf {
    let dir = m.dir.path().join(name);
    std::fs::create_dir_all(&dir).expect("stack dir");
    std::fs::write(dir.join("stack.yml"), compose).expect("compose file");
    std::fs::write(dir.join("db_pw.txt"), "s3cret-db").expect("secret file");
    std::fs::write(dir.join("app.conf"), "mode=stack\n").expect("config file");
    dir
}

fn deploy(cli: Cli, m: &Daemon, dir: &std::path::Path, extra: &[&str], role: &str) -> Output {
    let file = dir.join("stack.yml");
    let mut args = vec![
        "stack",
        "deploy",
        "--resolve-image",
        "never",
        // the seeds' spelling
        "--compose-file",
        file.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    args.push("st");
    cli.command(m)
        .args(&args)
        .env("WEB_ROLE", role)
        .output()
        .expect("stack deploy")
}

/// The ids of a service's running tasks, sorted.
fn task_ids(m: &Daemon, service: &str) -> Vec<String> {
    let o = m.docker(&[
        "service",
        "ps",
        "-q",
        "--filter",
        "desired-state=running",
        service,
    ]);
    let mut ids: Vec<String> = stdout(&o).lines().map(str::to_string).collect();
    ids.sort();
    ids
}

/// Waits until `service` has `want` running containers and as many
/// running tasks, and gives the tasks.
fn settled(c: &Cluster, service: &str, want: usize) -> Vec<String> {
    let m = &c.node(0).daemon;
    let ok = eventually(40, || {
        containers(c, service) == want && task_ids(m, service).len() == want
    });
    assert!(ok, "{service}: {} containers", containers(c, service));
    task_ids(m, service)
}

fn a_stack_deployed_edited_pruned_and_removed(c: &Cluster, cli: Cli, other: Cli) {
    let m = &c.node(0).daemon;
    let name = match cli {
        Cli::Docker => "stack-docker",
        Cli::Berth => "stack-berth",
    };
    let dir = stack_dir(m, name, STACK);
    let out = ok(&deploy(cli, m, &dir, &[], "web"), "stack deploy");
    for line in [
        "Creating network st_default",
        "Creating secret st_db_pw",
        "Creating config st_app",
        "Creating service st_db",
        "Creating service st_web",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let db = settled(c, "st_db", 1);
    let web = settled(c, "st_web", 2);
    same(m, &["stack", "ls"]);
    let ls = stdout(&m.docker(&["stack", "ls"]));
    assert_eq!(ls, "NAME      SERVICES\nst        2\n");
    same(
        m,
        &["stack", "services", "--format", "{{.Name}} {{.Mode}}", "st"],
    );
    same(
        m,
        &[
            "stack",
            "ps",
            "--format",
            "{{.Name}} {{.DesiredState}}",
            "st",
        ],
    );
    let net = ok(
        &cli.run(
            m,
            &[
                "network",
                "inspect",
                "--format",
                "{{.Scope}} {{.Driver}}",
                "st_default",
            ],
        ),
        "network inspect",
    );
    assert_eq!(net, "swarm overlay\n");
    let at = running(c, "st_db", None);
    assert_eq!(exec(c, &at, "cat /run/secrets/db_pw"), "s3cret-db");

    // an edit to web alone: web's tasks are replaced, db's are not
    let out = ok(&deploy(cli, m, &dir, &[], "web2"), "redeploy");
    assert!(out.contains("Updating service st_db (id: "), "{out}");
    assert!(out.contains("Updating service st_web (id: "), "{out}");
    let ok_web = eventually(40, || {
        let now = task_ids(m, "st_web");
        now.len() == 2 && now.iter().all(|t| !web.contains(t)) && containers(c, "st_web") == 2
    });
    assert!(ok_web, "web was not updated: {:?}", task_ids(m, "st_web"));
    assert_eq!(task_ids(m, "st_db"), db, "db's task was replaced");
    let web = task_ids(m, "st_web");

    // the same files through the other CLI: nothing changes
    ok(
        &deploy(other, m, &dir, &[], "web2"),
        "the other CLI's deploy",
    );
    std::thread::sleep(std::time::Duration::from_secs(2));
    assert_eq!(task_ids(m, "st_db"), db, "the other CLI replaced db");
    assert_eq!(task_ids(m, "st_web"), web, "the other CLI replaced web");

    // web gone from the file: --prune removes it
    std::fs::write(dir.join("stack.yml"), STACK_DB_ONLY).expect("edit");
    let out = ok(
        &deploy(cli, m, &dir, &["--prune"], "web2"),
        "deploy --prune",
    );
    assert!(out.contains("Removing service st_web"), "{out}");
    assert!(
        eventually(30, || containers(c, "st_web") == 0),
        "web outlived --prune"
    );
    assert_eq!(task_ids(m, "st_db"), db, "--prune touched db");

    let out = ok(&cli.run(m, &["stack", "rm", "st"]), "stack rm");
    for line in [
        "Removing service st_db",
        "Removing secret st_db_pw",
        "Removing config st_app",
        "Removing network st_default",
    ] {
        assert!(out.contains(line), "{line}: {out}");
    }
    let label = "label=com.docker.stack.namespace=st";
    for kind in ["service", "secret", "config", "network"] {
        let left = ok(&m.docker(&[kind, "ls", "-q", "--filter", label]), kind);
        assert!(left.trim().is_empty(), "{kind}s left: {left}");
    }
    assert!(
        eventually(30, || containers(c, "st_db") == 0),
        "db outlived stack rm"
    );
    // the removed services' tasks go once their containers have stopped
    assert!(
        eventually(30, || code(&cli.run(m, &["stack", "ps", "st"])) == 1),
        "stack ps after stack rm: {}",
        stdout(&cli.run(m, &["stack", "ps", "st"]))
    );
    let o = cli.run(m, &["stack", "ps", "st"]);
    assert!(
        stderr(&o).contains("nothing found in stack: st"),
        "{}",
        stderr(&o)
    );
}

/// berth's own: services start in `depends_on` order, each dependency
/// running first, and compose errors name the file, line and column.
fn berths_stack_orders_by_depends_on_and_names_compose_errors(c: &Cluster) {
    let m = &c.node(0).daemon;
    let dir = stack_dir(m, "stack-order", STACK);
    std::fs::write(dir.join(".env"), "WEB_ROLE=from-dotenv\n").expect(".env");
    let o = Cli::Berth
        .command(m)
        .args(["stack", "deploy", "--resolve-image", "never", "-c"])
        .arg(dir.join("stack.yml"))
        .arg("st")
        .output()
        .expect("stack deploy");
    let out = ok(&o, "ordered deploy");
    let at = |line: &str| out.find(line).unwrap_or_else(|| panic!("{line}: {out}"));
    assert!(
        at("Creating service st_db")
            < at("Waiting for service st_db to be running (st_web depends on it)")
    );
    assert!(
        at("Service st_db is running") < at("Creating service st_web"),
        "{out}"
    );
    settled(c, "st_web", 2);
    let env = ok(
        &m.docker(&[
            "service",
            "inspect",
            "--format",
            "{{json .Spec.TaskTemplate.ContainerSpec.Env}}",
            "st_web",
        ]),
        "inspect",
    );
    assert!(env.contains("ROLE=from-dotenv"), ".env was not read: {env}");
    ok(&Cli::Berth.run(m, &["stack", "rm", "st"]), "stack rm");

    let bad = |name: &str, compose: &str, want: &str| {
        let d = stack_dir(m, name, compose);
        let o = Cli::Berth
            .command(m)
            .args(["stack", "deploy", "-c"])
            .arg(d.join("stack.yml"))
            .arg("bad")
            .output()
            .expect("stack deploy");
        assert_ne!(code(&o), 0, "{name} deployed");
        assert!(stderr(&o).contains(want), "{name}: {want}: {}", stderr(&o));
    };
    bad(
        "yaml",
        "services:\n  a:\n    image: [busybox\n",
        "yaml: line ",
    );
    bad(
        "top",
        "services: {}\nextra: 1\n",
        "(root) Additional property extra is not allowed",
    );
    bad(
        "unset",
        "services:\n  a:\n    image: ${NO_SUCH_VAR:?set NO_SUCH_VAR}\n",
        "required variable NO_SUCH_VAR is missing a value: set NO_SUCH_VAR",
    );
    bad(
        "noimage",
        "services:\n  a:\n    command: sleep 1\n",
        "invalid image reference for service a: no image specified",
    );
    let left = ok(&m.docker(&["service", "ls", "-q"]), "service ls");
    assert!(
        left.trim().is_empty(),
        "a failed deploy left services: {left}"
    );
}

fn a_secret_and_a_config_in_a_task_on_a_worker(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    // the seeds' command line
    let o = with_input(
        cli,
        m,
        &["secret", "create", "wordpress_secret", "-"],
        VALUE.as_bytes(),
    );
    let id = ok(&o, "secret create").trim().to_string();
    assert_eq!(id.len(), 25, "a swarm id: {id}");
    let conf = m.dir.path().join("app.conf");
    std::fs::write(&conf, "listen 8080\n").expect("config file");
    let conf_path = conf.to_str().expect("utf-8 path");
    ok(
        &cli.run(m, &["config", "create", "app_conf", conf_path]),
        "config create",
    );
    // a templated config: the task's context, its environment and secret
    let tpl = m.dir.path().join("tpl.conf");
    let text = r#"{{.Service.Name}} {{.Task.Slot}} {{env "MYSQL_ROOT_PASSWORD_FILE"}} {{secret "wordpress_secret"}}"#;
    std::fs::write(&tpl, text).expect("template file");
    let tpl_path = tpl.to_str().expect("utf-8 path");
    let o = cli.run(
        m,
        &[
            "config",
            "create",
            "--template-driver",
            "golang",
            "tpl",
            tpl_path,
        ],
    );
    ok(&o, "templated config create");
    let create = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--name",
        "wp",
        "--constraint",
        "node.role==worker",
        "--secret",
        "wordpress_secret",
        "--secret",
        "source=wordpress_secret,target=/etc/pw,uid=33,gid=44,mode=0400",
        "--config",
        "source=app_conf,target=/etc/app.conf",
        "--config",
        "source=tpl,target=/etc/tpl.conf",
        "-e",
        "MYSQL_ROOT_PASSWORD_FILE=/run/secrets/wordpress_secret",
        "busybox",
        "sleep",
        "1000",
    ];
    ok(&cli.run(m, &create), "service create");
    let at = running(c, "wp", None);
    assert_ne!(at.0, 0, "the task runs on a worker");
    assert_eq!(exec(c, &at, "cat $MYSQL_ROOT_PASSWORD_FILE"), VALUE);
    assert_eq!(exec(c, &at, "stat -c '%u %g %a' /etc/pw"), "33 44 400\n");
    assert_eq!(exec(c, &at, "cat /etc/pw"), VALUE);
    assert_eq!(exec(c, &at, "cat /etc/app.conf"), "listen 8080\n");
    assert_eq!(exec(c, &at, "stat -c '%a' /etc/app.conf"), "444\n");
    assert_eq!(
        exec(c, &at, "cat /etc/tpl.conf"),
        format!("wp 1 /run/secrets/wordpress_secret {VALUE}")
    );
    // read-only, in memory
    let o = c.node(at.0).daemon.docker(&[
        "exec",
        &at.1,
        "sh",
        "-c",
        "echo x > /run/secrets/wordpress_secret",
    ]);
    assert_ne!(code(&o), 0, "a secret file is read-only");
    the_value_is_nowhere_else(c, cli, &at);
    // in use: refused, naming the service
    let o = cli.run(m, &["secret", "rm", "wordpress_secret"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("rpc error: code = InvalidArgument desc = secret 'wordpress_secret' is in use by the following service: wp"),
        "{}",
        stderr(&o)
    );
    rotation_dockers_way(c, cli, &at);
    ok(&cli.run(m, &["service", "rm", "wp"]), "service rm");
    let gone = eventually(30, || containers(c, "wp") == 0);
    assert!(gone, "wp's container outlived it");
    let o = cli.run(m, &["secret", "rm", "wordpress_secret", "wp_v2"]);
    assert_eq!(stdout(&o), "wordpress_secret\nwp_v2\n", "{}", stderr(&o));
    ok(
        &cli.run(m, &["config", "rm", "app_conf", "tpl"]),
        "config rm",
    );
    let ls = ok(&cli.run(m, &["secret", "ls", "-q"]), "secret ls");
    assert!(ls.trim().is_empty(), "{ls}");
}

/// Not on any node's disk (the managers' Raft is sealed, the workers keep
/// it in memory), not in the daemons' logs, not in any answer or event.
fn the_value_is_nowhere_else(c: &Cluster, cli: Cli, at: &(usize, String)) {
    let m = &c.node(0).daemon;
    for n in &c.nodes {
        let dir = n.daemon.dir.path().display().to_string();
        let o = std::process::Command::new("grep")
            .args(["-rl", "--", VALUE, &dir])
            .output()
            .expect("grep");
        assert!(stdout(&o).is_empty(), "on disk: {}", stdout(&o));
        assert!(!n.daemon.log().contains(VALUE), "in a daemon's log");
    }
    let shown = [
        cli.run(&c.node(at.0).daemon, &["inspect", &at.1]),
        cli.run(m, &["service", "inspect", "wp"]),
        cli.run(m, &["secret", "inspect", "wordpress_secret"]),
        cli.run(m, &["events", "--since", "0", "--until", &now_secs()]),
    ];
    for o in shown {
        assert!(!stdout(&o).contains(VALUE), "{}", stdout(&o));
    }
}

/// Docker's rotation: a new secret under the old target; the task is
/// replaced and reads the new value.
fn rotation_dockers_way(c: &Cluster, cli: Cli, before: &(usize, String)) {
    let m = &c.node(0).daemon;
    let o = with_input(cli, m, &["secret", "create", "wp_v2", "-"], b"second");
    ok(&o, "secret create wp_v2");
    let update = [
        "service",
        "update",
        "--detach",
        "--secret-rm",
        "wordpress_secret",
        "--secret-add",
        "source=wp_v2,target=wordpress_secret",
        "wp",
    ];
    ok(&cli.run(m, &update), "service update");
    let at = running(c, "wp", Some(&before.1));
    assert_eq!(exec(c, &at, "cat /run/secrets/wordpress_secret"), "second");
    if cli == Cli::Berth {
        berths_rotate(c, &at);
    }
}

/// `berth secret rotate`: new data under the same name, and the service
/// that uses it rolled to mount it.
fn berths_rotate(c: &Cluster, before: &(usize, String)) {
    let m = &c.node(0).daemon;
    let o = with_input(
        Cli::Berth,
        m,
        &["secret", "rotate", "--detach", "wp_v2", "-"],
        b"third",
    );
    let out = ok(&o, "secret rotate");
    assert!(out.contains("Updating service wp (id: "), "{out}");
    let at = running(c, "wp", Some(&before.1));
    assert_eq!(exec(c, &at, "cat /run/secrets/wordpress_secret"), "third");
}

fn bad_input_gets_dockers_errors(c: &Cluster, cli: Cli) {
    let m = &c.node(0).daemon;
    let fails = |o: Output, want: &str| {
        assert_ne!(code(&o), 0, "succeeded: {}", stdout(&o));
        assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
    };
    let big = vec![b'a'; 512_000];
    fails(
        with_input(cli, m, &["secret", "create", "big", "-"], &big),
        "secret data must be larger than 0 and less than 512000 bytes",
    );
    fails(
        with_input(cli, m, &["secret", "create", "x-", "-"], b"v"),
        "invalid name, only 64",
    );
    fails(
        with_input(cli, m, &["secret", "create", "a b", "-"], b"v"),
        "invalid name, only 64 [a-zA-Z0-9-_.] characters allowed, and the start and end character must be [a-zA-Z0-9]",
    );
    ok(
        &with_input(cli, m, &["secret", "create", "dup", "-"], b"v"),
        "dup",
    );
    fails(
        with_input(cli, m, &["secret", "create", "DUP", "-"], b"v"),
        "rpc error: code = AlreadyExists desc = secret DUP already exists",
    );
    let escape = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--secret",
        "source=dup,target=../../etc/shadow",
        "busybox",
    ];
    fails(
        cli.run(m, &escape),
        "invalid secret target \"../../etc/shadow\": must not contain \"..\"",
    );
    let missing = [
        "service",
        "create",
        "--detach",
        "--no-resolve-image",
        "--secret",
        "nope",
        "busybox",
    ];
    fails(cli.run(m, &missing), "secret not found: nope");
    ok(&cli.run(m, &["secret", "rm", "dup"]), "rm dup");
    let o = cli.run(m, &["secret", "inspect", "dup"]);
    assert_ne!(code(&o), 0);
}
