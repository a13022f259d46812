//! A container's names and neighbours as dockerd gives them (issue #18):
//! its /etc/hosts (its own name, the localhost lines, legacy links), the
//! default network sysctls, legacy links (`--link`: variables, hosts,
//! inspect's form, link names, `rm --link`), and the start of a container
//! whose network or namespace donor is gone.

mod common;

use common::{Daemon, code, raw_request, stderr, stdout};

fn message(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).expect("JSON error body");
    v["message"].as_str().unwrap_or_default().to_string()
}

fn inspect(d: &Daemon, name: &str, format: &str) -> String {
    let o = d.docker(&["inspect", "-f", format, name]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    stdout(&o).trim().to_string()
}

const LOCALHOST: &str = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::\tip6-localnet\nff00::\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n";

#[test]
fn the_containers_own_name_resolves_inside_it_as_with_dockerd() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "web",
        "-h",
        "web",
        "--domainname",
        "example.com",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ip = inspect(&d, "web", "{{.NetworkSettings.Networks.bridge.IPAddress}}");
    let o = d.docker(&["exec", "web", "cat", "/etc/hosts"]);
    assert_eq!(
        stdout(&o),
        format!("{LOCALHOST}{ip}\tweb.example.com web\n")
    );
    for name in ["web", "web.example.com"] {
        let o = d.docker(&["exec", "web", "ping", "-c1", "-W2", name]);
        assert_eq!(code(&o), 0, "{name}: {}{}", stdout(&o), stderr(&o));
    }
    // no address, no line of its own
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "none",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    assert_eq!(stdout(&o), LOCALHOST, "{}", stderr(&o));
    // one line per network
    assert_eq!(code(&d.docker(&["network", "create", "second"])), 0);
    let o = d.docker(&[
        "create", "--name", "two", "-h", "two", "busybox", "sleep", "60",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(code(&d.docker(&["network", "connect", "second", "two"])), 0);
    assert_eq!(code(&d.docker(&["start", "two"])), 0);
    let o = d.docker(&["exec", "two", "cat", "/etc/hosts"]);
    let first = inspect(&d, "two", "{{.NetworkSettings.Networks.bridge.IPAddress}}");
    let second = inspect(&d, "two", "{{.NetworkSettings.Networks.second.IPAddress}}");
    assert_eq!(
        stdout(&o),
        format!("{LOCALHOST}{first}\ttwo\n{second}\ttwo\n"),
        "{}",
        stderr(&o)
    );
    // a network connected while it runs adds its line, as dockerd's does
    assert_eq!(code(&d.docker(&["network", "create", "third"])), 0);
    assert_eq!(code(&d.docker(&["network", "connect", "third", "two"])), 0);
    let third = inspect(&d, "two", "{{.NetworkSettings.Networks.third.IPAddress}}");
    let o = d.docker(&["exec", "two", "cat", "/etc/hosts"]);
    assert!(
        stdout(&o).ends_with(&format!("{third}\ttwo\n")),
        "{}",
        stdout(&o)
    );
    d.docker(&["rm", "-f", "two"]);
}

#[test]
fn a_container_with_its_own_network_namespace_gets_dockerds_sysctls() {
    let d = Daemon::start();
    let read =
        "cat /proc/sys/net/ipv4/ping_group_range /proc/sys/net/ipv4/ip_unprivileged_port_start";
    for net in ["bridge", "none"] {
        let o = d.docker(&["run", "--rm", "--network", net, "busybox", "sh", "-c", read]);
        assert_eq!(stdout(&o), "0\t2147483647\n0\n", "{net}: {}", stderr(&o));
    }
    // the user's value wins
    let o = d.docker(&[
        "run",
        "--rm",
        "--sysctl",
        "net.ipv4.ip_unprivileged_port_start=1000",
        "busybox",
        "sh",
        "-c",
        read,
    ]);
    assert_eq!(stdout(&o), "0\t2147483647\n1000\n", "{}", stderr(&o));
    // the host's namespace keeps its own
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "host",
        "busybox",
        "sh",
        "-c",
        read,
    ]);
    assert!(!stdout(&o).ends_with("\n0\n"), "{}", stdout(&o));
}

#[test]
fn legacy_links_give_variables_hosts_and_names_as_dockerd_does() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "db",
        "-h",
        "dbhost",
        "-e",
        "SECRET=s3",
        "--expose",
        "80",
        "busybox",
        "sleep",
        "600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ip = inspect(&d, "db", "{{.NetworkSettings.IPAddress}}");
    let o = d.docker(&[
        "run", "-d", "--name", "web", "--link", "db:data", "busybox", "sleep", "600",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let env = stdout(&d.docker(&["exec", "web", "env"]));
    for want in [
        format!("DATA_PORT=tcp://{ip}:80"),
        format!("DATA_PORT_80_TCP=tcp://{ip}:80"),
        format!("DATA_PORT_80_TCP_ADDR={ip}"),
        "DATA_PORT_80_TCP_PORT=80".to_string(),
        "DATA_PORT_80_TCP_PROTO=tcp".to_string(),
        "DATA_NAME=/web/data".to_string(),
        "DATA_ENV_SECRET=s3".to_string(),
    ] {
        assert!(env.lines().any(|l| l == want), "{want} in {env}");
    }
    let hosts = stdout(&d.docker(&["exec", "web", "cat", "/etc/hosts"]));
    assert!(
        hosts.contains(&format!("{ip}\tdata dbhost db\n")),
        "{hosts}"
    );
    let o = d.docker(&["exec", "web", "ping", "-c1", "-W2", "data"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert_eq!(
        inspect(&d, "web", "{{json .HostConfig.Links}}"),
        r#"["/db:/web/data"]"#
    );
    // the child answers to its link name too
    let o = d.docker(&[
        "ps",
        "--no-trunc",
        "--format",
        "{{.Names}}",
        "-f",
        "name=db",
    ]);
    assert_eq!(stdout(&o), "db,web/data\n", "{}", stderr(&o));
    let o = d.docker(&["ps", "-q", "--no-trunc", "-f", "name=data"]);
    assert_eq!(
        stdout(&o).trim(),
        inspect(&d, "db", "{{.Id}}"),
        "{}",
        stderr(&o)
    );
    // its own name is no link to remove: a plain error, as dockerd's
    let (status, _, body) =
        raw_request(&d.sock, "DELETE", "/containers/db?link=1", None).expect("request");
    assert_eq!(status, 500);
    assert_eq!(
        message(&body),
        "Conflict, cannot remove the default link name of the container"
    );
    let (status, _, body) =
        raw_request(&d.sock, "DELETE", "/containers/web/nothing?link=1", None).expect("request");
    assert_eq!(status, 404);
    assert_eq!(message(&body), "No such container: web/nothing");
    let o = d.docker(&["rm", "--link", "web/data"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(inspect(&d, "web", "{{json .HostConfig.Links}}"), "null");
    assert_eq!(inspect(&d, "db", "{{.State.Running}}"), "true");
    let hosts = stdout(&d.docker(&["exec", "web", "cat", "/etc/hosts"]));
    assert!(!hosts.contains("data"), "{hosts}");
}

#[test]
fn a_link_to_a_stopped_container_fails_the_start_with_dockerds_words() {
    let d = Daemon::start();
    assert_eq!(
        code(&d.docker(&["create", "--name", "db", "busybox", "true"])),
        0
    );
    let o = d.docker(&["create", "--name", "web", "--link", "db", "busybox", "true"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/web/start", None).expect("request");
    assert_eq!(status, 500);
    assert_eq!(
        message(&body),
        "Cannot link to a non running container: /db AS /web/db"
    );
}

#[test]
fn a_network_removed_since_create_fails_the_start_with_a_404() {
    let d = Daemon::start();
    assert_eq!(code(&d.docker(&["network", "create", "gone"])), 0);
    assert_eq!(
        code(&d.docker(&["create", "--name", "cc", "busybox", "true"])),
        0
    );
    assert_eq!(code(&d.docker(&["network", "connect", "gone", "cc"])), 0);
    assert_eq!(code(&d.docker(&["network", "rm", "gone"])), 0);
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/cc/start", None).expect("request");
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        message(&body),
        "failed to set up container networking: network gone not found"
    );
    // inspect still shows the network it has
    assert_eq!(
        inspect(
            &d,
            "cc",
            "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}"
        ),
        "bridge"
    );
}

#[test]
fn the_namespace_donor_is_stored_by_id_and_a_missing_one_fails_the_start() {
    let d = Daemon::start();
    assert_eq!(
        code(&d.docker(&["create", "--name", "owner", "busybox", "sleep", "60"])),
        0
    );
    let id = inspect(&d, "owner", "{{.Id}}");
    let o = d.docker(&[
        "create",
        "--name",
        "guest",
        "--network",
        "container:owner",
        "busybox",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        inspect(&d, "guest", "{{.HostConfig.NetworkMode}}"),
        format!("container:{id}")
    );
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/guest/start", None).expect("request");
    assert_eq!(status, 409);
    assert_eq!(
        message(&body),
        "cannot join network namespace of a non running container: container owner is created"
    );
    // a donor that does not exist is taken at create, refused at start
    let o = d.docker(&[
        "create",
        "--name",
        "lost",
        "--network",
        "container:ghost",
        "busybox",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(
        inspect(&d, "lost", "{{.HostConfig.NetworkMode}}"),
        "container:ghost"
    );
    let (status, _, body) =
        raw_request(&d.sock, "POST", "/containers/lost/start", None).expect("request");
    assert_eq!(status, 500);
    assert_eq!(
        message(&body),
        "joining network namespace of container: No such container: ghost"
    );
}
