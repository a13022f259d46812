//! Bridge networking: the default bridge, published ports (from the host,
//! its loopback and an outside host), outbound masquerade, user-defined
//! networks with IPAM, isolation, --internal, the user's nftables chain,
//! daemon restarts and leaks. The "outside host" is a second network
//! namespace wired to the daemon's.

mod common;

use common::{Daemon, OutsideHost, code, eventually, stderr, stdout};

/// `.NetworkSettings.Networks.<net>.<field>` of a container, trimmed.
fn net_field(d: &Daemon, container: &str, net: &str, field: &str) -> String {
    let tpl = format!("{{{{.NetworkSettings.Networks.{net}.{field}}}}}");
    stdout(&d.berth(&["inspect", "-f", &tpl, container]))
        .trim()
        .to_string()
}

fn nft_map(d: &Daemon, map: &str) -> String {
    stdout(&d.sh(&format!("nft list map ip berth {map}")))
}

#[test]
fn published_ports_answer_from_the_host_and_from_outside() {
    let d = Daemon::start();
    let outside = OutsideHost::new(&d);
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "web",
        "-p",
        "8080:80",
        "-p",
        "127.0.0.1:8081:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let id = stdout(&o).trim().to_string();
    let host = format!("{}\n", &id[..12]);
    // the hostname file of the container answers
    assert!(eventually(10, || d
        .get("http://127.0.0.1:8080/hostname")
        .as_deref()
        == Some(&host)));
    assert_eq!(
        d.get("http://127.0.0.1:8081/hostname").as_deref(),
        Some(host.as_str())
    );
    // IPv6 loopback, through the daemon's proxy
    assert_eq!(
        d.get("http://[::1]:8080/hostname").as_deref(),
        Some(host.as_str())
    );
    assert_eq!(
        outside
            .get(&format!("http://{}:8080/hostname", OutsideHost::HOST_ADDR))
            .as_deref(),
        Some(host.as_str())
    );
    // bound to 127.0.0.1 only: not from outside
    assert_eq!(
        outside.get(&format!("http://{}:8081/hostname", OutsideHost::HOST_ADDR)),
        None
    );
    // hairpin: a container reaches a published port through the host
    // (nc: Debian's static busybox wget crashes)
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "sh",
        "-c",
        &format!(
            "printf 'GET /hostname HTTP/1.0\\r\\n\\r\\n' | nc -w 5 {} 8080",
            OutsideHost::HOST_ADDR
        ),
    ]);
    assert!(
        stdout(&o).ends_with(&format!("\r\n\r\n{host}")),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    // what both CLIs show
    for o in [d.berth(&["port", "web"]), d.docker(&["port", "web"])] {
        let out = stdout(&o);
        assert!(out.contains("80/tcp -> 0.0.0.0:8080"), "{out}");
        assert!(out.contains("80/tcp -> 127.0.0.1:8081"), "{out}");
    }
    let ours = stdout(&d.berth(&["ps", "--format", "{{.Ports}}"]));
    let theirs = stdout(&d.docker(&["ps", "--format", "{{.Ports}}"]));
    assert_eq!(ours, theirs);
    assert_eq!(ours.trim(), "0.0.0.0:8080->80/tcp, 127.0.0.1:8081->80/tcp");
    // a port already published is refused, naming it
    let o = d.berth(&["run", "-d", "-p", "8080:80", "busybox", "sleep", "9"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("0.0.0.0:8080"), "{}", stderr(&o));
    assert!(stderr(&o).contains("already allocated"), "{}", stderr(&o));
    // outbound traffic is masqueraded: the outside host has no route back
    // to the bridge's subnet, so a reply proves the source was rewritten
    let o = d.berth(&[
        "run",
        "--rm",
        "busybox",
        "ping",
        "-c",
        "1",
        "-W",
        "3",
        OutsideHost::ADDR,
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // stopping releases the port: the map is empty again
    d.berth(&["rm", "-f", "web"]);
    assert!(
        !nft_map(&d, "ports_tcp").contains("8080"),
        "{}",
        nft_map(&d, "ports_tcp")
    );
    assert_eq!(
        outside.get(&format!("http://{}:8080/", OutsideHost::HOST_ADDR)),
        None
    );
}

#[test]
fn random_ports_and_publish_all() {
    let d = Daemon::start();
    let o = d.docker(&[
        "run",
        "-d",
        "--name",
        "rnd",
        "--expose",
        "90",
        "-P",
        "-p",
        "127.0.0.1::80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let port = stdout(&d.berth(&["port", "rnd", "80"]));
    let hp: u16 = port.trim().rsplit(':').next().unwrap().parse().unwrap();
    assert!(hp >= 1024, "{port}");
    assert!(eventually(10, || d
        .get(&format!("http://127.0.0.1:{hp}/hostname"))
        .is_some()));
    let p90 = stdout(&d.berth(&["port", "rnd", "90/tcp"]));
    assert!(p90.starts_with("0.0.0.0:"), "{p90}");
    for bad in ["70000:80", "80/sctp", "[::1]:8080:80"] {
        let o = d.berth(&["run", "--rm", "-p", bad, "busybox", "true"]);
        assert_eq!(code(&o), 125, "{bad}");
        assert!(
            stderr(&o).contains("-p, --publish"),
            "{bad}: {}",
            stderr(&o)
        );
    }
}

#[test]
fn user_networks_have_ipam_isolation_and_internal_mode() {
    let d = Daemon::start();
    let outside = OutsideHost::new(&d);
    let o = d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.55.0.0/24",
        "--gateway",
        "10.55.0.254",
        "app",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.docker(&["network", "create", "--subnet", "10.55.0.128/25", "clash"]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("overlaps") && stderr(&o).contains("app"),
        "{}",
        stderr(&o)
    );
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        "--ip",
        "10.55.0.50",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ip = net_field(&d, "db", "app", "IPAddress");
    assert_eq!(ip.trim(), "10.55.0.50");
    let gw = net_field(&d, "db", "app", "Gateway");
    assert_eq!(gw.trim(), "10.55.0.254");
    // the same address again is refused
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "app",
        "--ip",
        "10.55.0.50",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("in use"), "{}", stderr(&o));
    // same network: reachable; from the default bridge: isolated
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        "10.55.0.50",
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = d.berth(&["run", "--rm", "busybox", "ping", "-c1", "-W2", "10.55.0.50"]);
    assert_ne!(code(&o), 0, "the default bridge reached a user network");
    // network inspect lists the running container; ls shows all networks
    let net = stdout(&d.docker(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{.IPv4Address}}{{end}}",
        "app",
    ]));
    assert_eq!(net.trim(), "db 10.55.0.50/24");
    let ls = stdout(&d.berth(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]));
    for n in ["app bridge", "bridge bridge", "host host", "none null"] {
        assert!(ls.contains(n), "{ls}");
    }
    assert_eq!(
        ls,
        stdout(&d.docker(&["network", "ls", "--format", "{{.Name}} {{.Driver}}"]))
    );
    // a network with endpoints stays; a predefined one always stays
    let o = d.berth(&["network", "rm", "app"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("active endpoints"), "{}", stderr(&o));
    let o = d.docker(&["network", "rm", "bridge"]);
    assert!(stderr(&o).contains("pre-defined network"), "{}", stderr(&o));
    // --internal: the members talk, nothing leaves
    d.berth(&["network", "create", "--internal", "sealed"]);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "in1",
        "--network",
        "sealed",
        "busybox",
        "sleep",
        "1000",
    ]);
    let in1 = net_field(&d, "in1", "sealed", "IPAddress");
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        in1.trim(),
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "sealed",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        OutsideHost::ADDR,
    ]);
    assert_ne!(code(&o), 0, "an internal network reached outside");
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "ping",
        "-c1",
        "-W2",
        OutsideHost::ADDR,
    ]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    drop(outside);
    // removal takes the bridge with it
    d.berth(&["rm", "-f", "db", "in1"]);
    let id = stdout(&d.berth(&["network", "inspect", "-f", "{{.Id}}", "app"]));
    assert_eq!(code(&d.berth(&["network", "rm", "app"])), 0);
    let links = stdout(&d.sh("ip -o link"));
    assert!(
        !links.contains(&format!("br-{}", &id.trim()[..12])),
        "{links}"
    );
    let o = d.berth(&["network", "prune", "-f"]);
    assert!(stdout(&o).contains("sealed"), "{}", stdout(&o));
    assert_eq!(
        code(&d.berth(&["run", "--rm", "--network", "nosuch", "busybox", "true"])),
        125
    );
}

#[test]
fn the_user_chain_is_honoured_and_survives_a_restart() {
    let mut d = Daemon::start();
    let outside = OutsideHost::new(&d);
    d.berth(&[
        "run", "-d", "--name", "web", "-p", "8080:80", "busybox", "httpd", "-f", "-p", "80", "-h",
        "/etc",
    ]);
    let url = format!("http://{}:8080/hostname", OutsideHost::HOST_ADDR);
    assert!(eventually(10, || outside.get(&url).is_some()));
    // the documented example: only one source may reach published ports
    let o = d.sh("nft add rule ip berth berth-user iifname outv ip saddr != 10.99.0.3 drop");
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(outside.get(&url), None, "the user chain was ignored");
    assert!(d.get("http://127.0.0.1:8080/hostname").is_some());
    d.restart_after_kill9();
    let chain = stdout(&d.sh("nft list chain ip berth berth-user"));
    assert!(chain.contains("10.99.0.3"), "{chain}");
    assert_eq!(outside.get(&url), None);
    // the running container's port survived, once
    assert!(d.get("http://127.0.0.1:8080/hostname").is_some());
    assert_eq!(nft_map(&d, "ports_tcp").matches("8080").count(), 1);
    d.sh("nft flush chain ip berth berth-user");
    assert!(outside.get(&url).is_some());
    // the forward chain is berth's and whole, once
    let fwd = stdout(&d.sh("nft list chain ip berth forward"));
    assert_eq!(fwd.matches("jump berth-user").count(), 1, "{fwd}");
}

#[test]
fn no_leaks_after_many_runs_and_a_kill_9() {
    let mut d = Daemon::start();
    d.berth(&["network", "create", "leaky"]);
    for i in 0..100 {
        let net = if i % 2 == 0 { "bridge" } else { "leaky" };
        let o = d.berth(&[
            "run",
            "--rm",
            "--network",
            net,
            "-p",
            "9000:80",
            "busybox",
            "true",
        ]);
        assert_eq!(code(&o), 0, "run {i}: {}", stderr(&o));
    }
    // the kernel frees an unpinned namespace (and its veth) asynchronously
    assert!(
        eventually(10, || !stdout(&d.sh("ip -o link")).contains("veth")),
        "{}",
        stdout(&d.sh("ip -o link"))
    );
    assert!(!nft_map(&d, "ports_tcp").contains("9000"));
    let netns = d.exec_root().join("netns");
    assert_eq!(std::fs::read_dir(&netns).map(|r| r.count()).unwrap_or(0), 0);
    // addresses come back: the next container gets the first one again
    d.berth(&[
        "run", "-d", "--name", "keep", "-p", "9001:80", "busybox", "sleep", "1000",
    ]);
    let ip = net_field(&d, "keep", "bridge", "IPAddress");
    assert!(ip.trim().ends_with(".0.2"), "{ip}");
    // a kill -9 and restart keeps its address, port and namespace
    d.restart_after_kill9();
    let ip2 = net_field(&d, "keep", "bridge", "IPAddress");
    assert_eq!(ip, ip2);
    let o = d.berth(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(
        !stdout(&o).contains(&format!(" {}/", ip.trim())),
        "address given twice: {}",
        stdout(&o)
    );
    assert_eq!(nft_map(&d, "ports_tcp").matches("9001").count(), 1);
    d.berth(&["rm", "-f", "keep"]);
    assert!(!nft_map(&d, "ports_tcp").contains("9001"));
    assert_eq!(std::fs::read_dir(&netns).map(|r| r.count()).unwrap_or(0), 0);
    // the kernel frees an unpinned namespace (and its veth) asynchronously
    assert!(
        eventually(10, || !stdout(&d.sh("ip -o link")).contains("veth")),
        "{}",
        stdout(&d.sh("ip -o link"))
    );
}

/// A DNS server for one name, in the namespace of `pid`: what the daemon
/// forwards unknown names to. Answers `upstream.test` with 192.0.2.7 and
/// ends after `queries` queries (or 30 s).
fn fake_upstream(pid: i32, queries: usize) -> std::thread::JoinHandle<usize> {
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let h = std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = std::net::UdpSocket::bind("127.0.0.1:53").unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        tx.send(()).unwrap();
        let mut served = 0;
        let mut buf = [0u8; 512];
        while served < queries {
            let Ok((n, peer)) = s.recv_from(&mut buf) else {
                break;
            };
            let q = &buf[..n];
            let mut a = q.to_vec();
            a[2] |= 0x80;
            a[3] = 0x80;
            a[6..8].copy_from_slice(&1u16.to_be_bytes());
            a.extend_from_slice(&[0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 7]);
            s.send_to(&a, peer).unwrap();
            served += 1;
        }
        served
    });
    rx.recv().unwrap();
    h
}

/// An A query over TCP to 127.0.0.11:53 from the network namespace pinned
/// at `netns`: the answer's addresses.
fn dns_over_tcp(netns: &str, name: &str) -> Vec<std::net::Ipv4Addr> {
    use std::io::{Read, Write};
    let ns = std::fs::File::open(netns).unwrap();
    let name = name.to_string();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut q = vec![0xab, 0xcd, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        for l in name.split('.') {
            q.push(l.len() as u8);
            q.extend_from_slice(l.as_bytes());
        }
        q.extend_from_slice(&[0, 0, 1, 0, 1]);
        let mut s = std::net::TcpStream::connect("127.0.0.11:53").unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        let mut msg = (q.len() as u16).to_be_bytes().to_vec();
        msg.extend_from_slice(&q);
        s.write_all(&msg).unwrap();
        let mut len = [0u8; 2];
        s.read_exact(&mut len).unwrap();
        let mut a = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut a).unwrap();
        assert_eq!(&a[..2], &[0xab, 0xcd]);
        let count = u16::from_be_bytes([a[6], a[7]]) as usize;
        (0..count)
            .map(|i| {
                let end = q.len() + (i + 1) * 16;
                std::net::Ipv4Addr::new(a[end - 4], a[end - 3], a[end - 2], a[end - 1])
            })
            .collect()
    })
    .join()
    .unwrap()
}

#[test]
fn embedded_dns_on_user_networks() {
    let mut d = Daemon::start();
    d.berth(&["network", "create", "app"]);
    d.berth(&["network", "create", "other"]);
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "app",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "1000",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let db_ip = net_field(&d, "db", "app", "IPAddress");
    let db_ip = db_ip.trim();
    // by name, alias, name.network and short id; from the same network only
    let short = &stdout(&d.berth(&["inspect", "-f", "{{.Id}}", "db"]))[..12];
    for name in ["db", "database", "db.app", short] {
        let o = d.berth(&[
            "run",
            "--rm",
            "--network",
            "app",
            "busybox",
            "ping",
            "-c1",
            "-W2",
            name,
        ]);
        assert_eq!(code(&o), 0, "{name}: {}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).contains(db_ip), "{name}: {}", stdout(&o));
    }
    let o = d.docker(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "nslookup",
        "db",
    ]);
    assert!(
        stdout(&o).contains(&format!("Address: {db_ip}")),
        "{}",
        stdout(&o)
    );
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    assert!(
        stdout(&o).contains("nameserver 127.0.0.11"),
        "{}",
        stdout(&o)
    );
    // not on the default bridge (as in Docker), nor from another network
    for net in ["bridge", "other"] {
        let o = d.berth(&[
            "run",
            "--rm",
            "--network",
            net,
            "busybox",
            "ping",
            "-c1",
            "-W1",
            "db",
        ]);
        assert_ne!(code(&o), 0, "{net} resolved db");
    }
    // other names go to the host's nameservers, asked from the host
    let resolv = d.dir.path().join("resolv.conf");
    std::fs::write(&resolv, "nameserver 127.0.0.1\n").unwrap();
    let o = d.sh(&format!(
        "mount --bind {} /etc/resolv.conf",
        resolv.display()
    ));
    assert!(o.status.success(), "{}", stderr(&o));
    let upstream = fake_upstream(d.ns_pid, 1);
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "app",
        "busybox",
        "nslookup",
        "-type=a",
        "upstream.test",
    ]);
    assert!(
        stdout(&o).contains("192.0.2.7"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert_eq!(upstream.join().unwrap(), 1);
    // a daemon killed and restarted serves running containers again
    d.berth(&[
        "run",
        "-d",
        "--name",
        "client",
        "--network",
        "app",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.restart_after_kill9();
    let o = d.berth(&["exec", "client", "ping", "-c1", "-W2", "database"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // over TCP too (the pinned namespace, seen through the daemon's mounts)
    let id = stdout(&d.berth(&["inspect", "-f", "{{.Id}}", "client"]));
    let netns = format!(
        "/proc/{}/root{}",
        d.ns_pid,
        d.exec_root().join("netns").join(id.trim()).display()
    );
    assert_eq!(
        dns_over_tcp(&netns, "database"),
        vec![db_ip.parse::<std::net::Ipv4Addr>().unwrap()]
    );
    // gone with the container
    d.berth(&["rm", "-f", "db"]);
    let o = d.berth(&["exec", "client", "nslookup", "db"]);
    assert!(!stdout(&o).contains(db_ip), "{}", stdout(&o));
}

#[test]
fn connect_and_disconnect_live_and_for_the_next_start() {
    let d = Daemon::start();
    d.berth(&["network", "create", "--subnet", "10.66.0.0/24", "app"]);
    d.berth(&[
        "run",
        "-d",
        "--name",
        "peer",
        "--network",
        "app",
        "busybox",
        "sleep",
        "1000",
    ]);
    d.berth(&["run", "-d", "--name", "c1", "busybox", "sleep", "1000"]);
    // live, through the docker CLI
    let o = d.docker(&["network", "connect", "--alias", "one", "app", "c1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["exec", "c1", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(
        stdout(&o).contains("10.66.0."),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let nets = stdout(&d.berth(&[
        "inspect",
        "-f",
        "{{range $k, $v := .NetworkSettings.Networks}}{{$k}} {{end}}",
        "c1",
    ]));
    assert_eq!(nets.trim(), "app bridge");
    // the new network's names resolve both ways
    let o = d.berth(&["exec", "peer", "ping", "-c1", "-W2", "one"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = d.berth(&["exec", "c1", "ping", "-c1", "-W2", "peer"]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    let o = d.berth(&["network", "connect", "app", "c1"]);
    assert!(stderr(&o).contains("already exists"), "{}", stderr(&o));
    // off again
    let o = d.berth(&["network", "disconnect", "app", "c1"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&["exec", "c1", "ip", "-o", "link", "show", "eth1"]);
    assert_ne!(code(&o), 0, "eth1 is still there: {}", stdout(&o));
    let o = d.berth(&["exec", "peer", "ping", "-c1", "-W1", "one"]);
    assert_ne!(code(&o), 0);
    // even the primary network can go, and come back
    assert_eq!(
        code(&d.berth(&["network", "disconnect", "bridge", "c1"])),
        0
    );
    let o = d.berth(&["exec", "c1", "ip", "-o", "link", "show", "eth0"]);
    assert_ne!(code(&o), 0, "eth0 is still there: {}", stdout(&o));
    let nets = stdout(&d.berth(&["inspect", "-f", "{{len .NetworkSettings.Networks}}", "c1"]));
    assert_eq!(nets.trim(), "0");
    assert_eq!(code(&d.docker(&["network", "connect", "bridge", "c1"])), 0);
    let o = d.berth(&["exec", "c1", "ip", "route"]);
    assert!(stdout(&o).contains("default via"), "{}", stdout(&o));
    // a stopped container joins at its next start
    d.berth(&["create", "--name", "later", "busybox", "sleep", "1000"]);
    assert_eq!(
        code(&d.berth(&["network", "connect", "--ip", "10.66.0.77", "app", "later"])),
        0
    );
    d.berth(&["start", "later"]);
    let o = d.berth(&["exec", "later", "ip", "-4", "-o", "addr", "show", "eth1"]);
    assert!(
        stdout(&o).contains("10.66.0.77/24"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    let members = stdout(&d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .Containers}}{{.Name}} {{end}}",
        "app",
    ]));
    assert!(
        members.contains("later") && members.contains("peer"),
        "{members}"
    );
    // containers on the host's network cannot join others
    d.berth(&[
        "run",
        "-d",
        "--name",
        "hosty",
        "--network",
        "host",
        "busybox",
        "sleep",
        "1000",
    ]);
    let o = d.berth(&["network", "connect", "app", "hosty"]);
    assert_ne!(code(&o), 0);
    d.berth(&["rm", "-f", "later", "c1", "peer", "hosty"]);
    assert!(eventually(10, || !stdout(&d.sh("ip -o link")).contains("veth")));
}

#[test]
fn dns_flags_hosts_mac_and_shared_namespaces() {
    let d = Daemon::start();
    // --dns, --dns-search, --dns-option replace the host's lines
    let o = d.berth(&[
        "run",
        "--rm",
        "--dns",
        "192.0.2.53",
        "--dns-search",
        "corp.example",
        "--dns-option",
        "ndots:2",
        "busybox",
        "cat",
        "/etc/resolv.conf",
    ]);
    let conf = stdout(&o);
    assert!(conf.contains("nameserver 192.0.2.53\n"), "{conf}");
    assert!(conf.contains("search corp.example\n"), "{conf}");
    assert!(conf.contains("options ndots:2\n"), "{conf}");
    assert_eq!(conf.matches("nameserver").count(), 1, "{conf}");
    // --add-host, host-gateway included, before the container's own line
    let o = d.docker(&[
        "run",
        "--rm",
        "--add-host",
        "db.local:10.1.2.3",
        "--add-host",
        "gw:host-gateway",
        "busybox",
        "cat",
        "/etc/hosts",
    ]);
    let hosts = stdout(&o);
    assert!(hosts.contains("10.1.2.3\tdb.local\n"), "{hosts}");
    let gw = stdout(&d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Gateway}}{{end}}",
        "bridge",
    ]));
    assert!(hosts.contains(&format!("{}\tgw\n", gw.trim())), "{hosts}");
    let o = d.berth(&["run", "--rm", "--add-host", "x:notanip", "busybox", "true"]);
    assert_eq!(code(&o), 125);
    assert!(
        stderr(&o).contains("invalid IP address in add-host"),
        "{}",
        stderr(&o)
    );
    // --mac-address
    let o = d.docker(&[
        "run",
        "--rm",
        "--mac-address",
        "92:d0:c6:0a:29:33",
        "busybox",
        "cat",
        "/sys/class/net/eth0/address",
    ]);
    assert_eq!(stdout(&o), "92:d0:c6:0a:29:33\n", "{}", stderr(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--mac-address",
        "01:00:5e:00:00:01",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("invalid MAC address"), "{}", stderr(&o));
    // --network container:NAME shares the namespace and its files
    d.berth(&[
        "run",
        "-d",
        "--name",
        "owner",
        "-h",
        "ownerhost",
        "busybox",
        "sleep",
        "1000",
    ]);
    let ip = net_field(&d, "owner", "bridge", "IPAddress");
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "busybox",
        "sh",
        "-c",
        "ip -4 -o addr show eth0; hostname",
    ]);
    assert!(
        stdout(&o).contains(&format!(" {}/", ip.trim())),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    assert!(stdout(&o).ends_with("ownerhost\n"), "{}", stdout(&o));
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:owner",
        "-p",
        "80:80",
        "busybox",
        "true",
    ]);
    assert_eq!(code(&o), 125);
    assert!(stderr(&o).contains("conflicting options"), "{}", stderr(&o));
    d.berth(&["create", "--name", "idle", "busybox", "true"]);
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "container:idle",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("non running container"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn daemon_address_options() {
    let mut d = Daemon::start();
    // bip and fixed-cidr shape the default bridge; pools the new networks
    d.flags = [
        "--bip",
        "10.200.0.1/24",
        "--fixed-cidr",
        "10.200.0.128/25",
        "--default-address-pool",
        "base=10.201.0.0/16,size=24",
    ]
    .map(String::from)
    .to_vec();
    d.stop();
    // a fresh data root: the default bridge is made once
    std::fs::remove_dir_all(d.data_root()).unwrap();
    d.sh("ip link del berth0");
    d.start_again();
    d.import_busybox();
    let o = d.berth(&[
        "run", "--rm", "busybox", "ip", "-4", "-o", "addr", "show", "eth0",
    ]);
    assert!(
        stdout(&o).contains(" 10.200.0.128/24"),
        "{}{}",
        stdout(&o),
        stderr(&o)
    );
    d.berth(&["network", "create", "pooled"]);
    let sub = stdout(&d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}{{end}}",
        "pooled",
    ]));
    assert_eq!(sub.trim(), "10.201.0.0/24");
}

#[test]
fn bridge_driver_options() {
    let d = Daemon::start();
    let o = d.docker(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.enable_icc=false",
        "-o",
        "com.docker.network.bridge.host_binding_ipv4=127.0.0.1",
        "-o",
        "com.docker.network.driver.mtu=1400",
        "-o",
        "com.docker.network.bridge.name=brtight",
        "tight",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&d.sh("ip -o link show brtight")).contains("brtight"));
    d.berth(&[
        "run",
        "-d",
        "--name",
        "a1",
        "--network",
        "tight",
        "-p",
        "8085:80",
        "busybox",
        "sleep",
        "1000",
    ]);
    let a1 = net_field(&d, "a1", "tight", "IPAddress");
    // no traffic between the network's containers; names still resolve
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "tight",
        "busybox",
        "ping",
        "-c1",
        "-W1",
        a1.trim(),
    ]);
    assert_ne!(code(&o), 0, "icc=false let traffic through");
    // published on the network's default host address
    assert_eq!(
        stdout(&d.berth(&["port", "a1"])).trim(),
        "80/tcp -> 127.0.0.1:8085"
    );
    let o = d.berth(&["exec", "a1", "cat", "/sys/class/net/eth0/mtu"]);
    assert_eq!(stdout(&o), "1400\n");
    // an invalid bridge name is refused
    let o = d.berth(&[
        "network",
        "create",
        "-o",
        "com.docker.network.bridge.name=bad name!",
        "bad",
    ]);
    assert_ne!(code(&o), 0);
}

#[test]
fn ipv6_networks() {
    let d = Daemon::start();
    let outside = OutsideHost::new(&d);
    assert!(
        d.sh("ip -6 addr add fd99::1/64 dev outv nodad")
            .status
            .success()
    );
    assert!(
        outside
            .sh("ip -6 addr add fd99::2/64 dev eth0 nodad")
            .status
            .success()
    );
    let o = d.berth(&["network", "create", "--ipv6", "nosub"]);
    assert_ne!(code(&o), 0);
    assert!(stderr(&o).contains("IPv6 --subnet"), "{}", stderr(&o));
    let o = d.docker(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.77.0.0/24",
        "--subnet",
        "fd00:77::/64",
        "six",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "fd00:77:0:0:1::/80",
        "clash6",
    ]);
    assert!(stderr(&o).contains("overlaps"), "{}", stderr(&o));
    // the berth CLI pairs subnets and gateways by family
    let o = d.berth(&[
        "network",
        "create",
        "--ipv6",
        "--subnet",
        "10.78.0.0/24",
        "--subnet",
        "fd00:78::/64",
        "--gateway",
        "fd00:78::fe",
        "dual",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let cfg = stdout(&d.berth(&[
        "network",
        "inspect",
        "-f",
        "{{range .IPAM.Config}}{{.Subnet}}={{.Gateway}} {{end}}",
        "dual",
    ]));
    assert_eq!(
        cfg.trim(),
        "10.78.0.0/24=10.78.0.1 fd00:78::/64=fd00:78::fe"
    );
    let en = stdout(&d.berth(&["network", "inspect", "-f", "{{.EnableIPv6}}", "six"]));
    assert_eq!(en.trim(), "true");
    let o = d.berth(&[
        "run",
        "-d",
        "--name",
        "web6",
        "--network",
        "six",
        "-p",
        "8086:80",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/etc",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let ip6 = net_field(&d, "web6", "six", "GlobalIPv6Address");
    assert_eq!(ip6.trim(), "fd00:77::2");
    let gw6 = net_field(&d, "web6", "six", "IPv6Gateway");
    assert_eq!(gw6.trim(), "fd00:77::1");
    // over IPv6 between containers, by name (AAAA from the embedded DNS)
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "six",
        "--ip6",
        "fd00:77::99",
        "busybox",
        "sh",
        "-c",
        "ip -6 -o addr show eth0 scope global; ping -6 -c1 -W2 web6",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("fd00:77::2"), "{}", stdout(&o));
    assert!(
        stdout(&o).contains("inet6 fd00:77::99/64"),
        "{}",
        stdout(&o)
    );
    // the published port answers on the host's IPv6 address from outside
    let id = stdout(&d.berth(&["inspect", "-f", "{{.Id}}", "web6"]));
    let want = format!("{}\n", &id[..12]);
    assert!(eventually(10, || outside
        .get("http://[fd99::1]:8086/hostname")
        .as_deref()
        == Some(want.as_str())));
    assert_eq!(
        d.get("http://[::1]:8086/hostname").as_deref(),
        Some(want.as_str())
    );
    let ports = stdout(&d.berth(&["ps", "--format", "{{.Ports}}"]));
    assert!(
        ports.contains("[::]:8086->80/tcp") && ports.contains("0.0.0.0:8086->80/tcp"),
        "{ports}"
    );
    assert_eq!(ports, stdout(&d.docker(&["ps", "--format", "{{.Ports}}"])));
    // outbound IPv6 is masqueraded like IPv4 (the outside host has no route
    // back to fd00:77::/64)
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "six",
        "busybox",
        "ping",
        "-6",
        "-c1",
        "-W3",
        "fd99::2",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    d.berth(&["rm", "-f", "web6"]);
    let map = stdout(&d.sh("nft list map ip6 berth ports_tcp"));
    assert!(!map.contains("8086"), "{map}");
    assert_eq!(code(&d.berth(&["network", "rm", "six"])), 0);
}

#[test]
fn ipam_ranges_aux_addresses_labels_and_events() {
    let d = Daemon::start();
    let o = d.berth(&[
        "network",
        "create",
        "--subnet",
        "10.88.0.0/24",
        "--ip-range",
        "10.88.0.64/26",
        "--aux-address",
        "printer=10.88.0.64",
        "--label",
        "team=a",
        "ranged",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // the range's first address is reserved by the aux address
    d.berth(&[
        "run",
        "-d",
        "--name",
        "r1",
        "--network",
        "ranged",
        "busybox",
        "sleep",
        "1000",
    ]);
    let ip = net_field(&d, "r1", "ranged", "IPAddress");
    assert_eq!(ip.trim(), "10.88.0.65");
    // an address outside the subnet is refused
    let o = d.berth(&[
        "run",
        "--rm",
        "--network",
        "ranged",
        "--ip",
        "10.99.9.9",
        "busybox",
        "true",
    ]);
    assert_ne!(code(&o), 0);
    assert!(
        stderr(&o).contains("no configured subnet"),
        "{}",
        stderr(&o)
    );
    // labels and filters
    let ls = stdout(&d.berth(&[
        "network",
        "ls",
        "-q",
        "--no-trunc",
        "--filter",
        "label=team=a",
    ]));
    let id = stdout(&d.berth(&["network", "inspect", "-f", "{{.Id}}", "ranged"]));
    assert_eq!(ls.trim(), id.trim());
    let custom = stdout(&d.docker(&[
        "network",
        "ls",
        "--filter",
        "type=custom",
        "--format",
        "{{.Name}}",
    ]));
    assert_eq!(custom.trim(), "ranged");
    // network events: create, connect, disconnect, destroy
    d.berth(&["rm", "-f", "r1"]);
    d.berth(&["network", "rm", "ranged"]);
    let until = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 1)
    .to_string();
    let o = d.docker(&[
        "events",
        "--since",
        "0",
        "--until",
        &until,
        "--filter",
        "type=network",
        "--filter",
        "network=ranged",
        "--format",
        "{{.Action}}",
    ]);
    let actions: Vec<String> = stdout(&o).lines().map(String::from).collect();
    assert_eq!(
        actions,
        ["create", "connect", "disconnect", "destroy"],
        "{}",
        stderr(&o)
    );
}
