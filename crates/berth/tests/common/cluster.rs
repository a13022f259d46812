//! Several berth nodes on one machine. Each node is a `Daemon` (its own
//! mount, network and pid namespaces), wired by a veth pair to a bridge in
//! an "underlay" network namespace that the cluster creates: the nodes see
//! each other as hosts on one LAN, 198.18.0.0/24 (a benchmarking range no
//! engine allocates, so it can't collide with bridge or overlay pools).
//! Faults are real: `Daemon::kill9` a node, `Cluster::cut_link` its cable.
//! Dropping the cluster drops the nodes first, then the underlay.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use super::{Daemon, eventually};

/// The underlay's prefix; node `i` is `198.18.0.{10 + i}`.
pub const UNDERLAY_PREFIX: &str = "198.18.0";
/// Node `i`'s `--data-path-addr` in `Cluster::swarm_on_data_path`.
pub fn data_addr(i: usize) -> String {
    format!("198.18.0.{}", 110 + i)
}

/// A client on the underlay, outside every node: the switch's own
/// address (see `Cluster::underlay_get`).
pub const CLIENT_ADDR: &str = "198.18.0.2";

pub struct Node {
    pub daemon: Daemon,
    /// the node's address on the underlay
    pub addr: String,
}

pub struct Cluster {
    // declared before the underlay: fields drop in order, and a node's
    // veth goes away with its namespace
    pub nodes: Vec<Node>,
    underlay: Underlay,
}

impl Cluster {
    /// `n` nodes, each with busybox imported, all on the underlay.
    pub fn new(n: usize) -> Cluster {
        let mut c = Cluster {
            nodes: Vec::new(),
            underlay: Underlay::new(),
        };
        for _ in 0..n {
            c.add_node();
        }
        c
    }

    /// `n` nodes in one swarm: node 0 its manager, the others workers,
    /// heartbeats every second; returns once every node is ready.
    pub fn swarm(n: usize) -> Cluster {
        Cluster::swarm_with(n, |_| Vec::new())
    }

    /// Like `swarm`, with its overlay traffic on a network of its own: node
    /// `i` also has `data_addr(i)` on its cable, given as its
    /// `--data-path-addr`, and VXLAN runs on UDP `port`.
    pub fn swarm_on_data_path(n: usize, port: u16) -> Cluster {
        Cluster::swarm_with(n, |i| {
            let mut args = vec!["--data-path-addr".to_string(), data_addr(i)];
            if i == 0 {
                args.extend(["--data-path-port".to_string(), port.to_string()]);
            }
            args
        })
    }

    /// `extra(i)`: node `i`'s arguments to `swarm init` or `join`; a
    /// `--data-path-addr` among them is added to the node's cable first.
    fn swarm_with(n: usize, extra: impl Fn(usize) -> Vec<String>) -> Cluster {
        let c = Cluster::new(n);
        let a0 = c.node(0).addr.clone();
        let m = &c.node(0).daemon;
        for i in 0..n {
            let args = extra(i);
            if let Some(at) = args.iter().position(|a| a == "--data-path-addr") {
                let ip = &args[at + 1];
                c.node_sh(i, &format!("ip addr add {ip}/24 dev eth0"));
            }
        }
        let mut init: Vec<String> = ["swarm", "init", "--advertise-addr", &a0]
            .iter()
            .map(|s| s.to_string())
            .collect();
        init.extend(["--dispatcher-heartbeat".into(), "1s".into()]);
        init.extend(extra(0));
        let init: Vec<&str> = init.iter().map(String::as_str).collect();
        super::ok(&m.docker(&init), "init");
        let token = super::ok(&m.docker(&["swarm", "join-token", "-q", "worker"]), "token");
        let remote = format!("{a0}:2377");
        for (i, node) in c.nodes.iter().enumerate().skip(1) {
            let mut join: Vec<String> = super::join_args(token.trim(), &node.addr, &remote)
                .iter()
                .map(|s| s.to_string())
                .collect();
            join.splice(2..2, extra(i));
            let join: Vec<&str> = join.iter().map(String::as_str).collect();
            super::ok(&node.daemon.docker(&join), "join");
        }
        let ready = eventually(20, || {
            let o = m.docker(&["node", "ls", "--format", "{{.Status}}"]);
            super::stdout(&o).lines().filter(|l| *l == "Ready").count() == n
        });
        assert!(ready, "{n} nodes ready");
        c
    }

    /// Starts one more node and plugs it into the underlay.
    pub fn add_node(&mut self) -> &Node {
        let i = self.nodes.len();
        let daemon = Daemon::start();
        let addr = format!("{UNDERLAY_PREFIX}.{}", 10 + i);
        self.underlay.plug(i, daemon.ns_pid, &addr);
        self.nodes.push(Node { daemon, addr });
        &self.nodes[i]
    }

    /// A shell command run in node `i`'s namespaces; its output.
    pub fn node_sh(&self, i: usize, cmd: &str) -> String {
        let pid = self.node(i).daemon.ns_pid.to_string();
        let o = std::process::Command::new("nsenter")
            .args(["-t", &pid, "-m", "-n", "--", "sh", "-c", cmd])
            .output()
            .expect("nsenter");
        String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
    }

    pub fn node(&self, i: usize) -> &Node {
        &self.nodes[i]
    }

    pub fn node_mut(&mut self, i: usize) -> &mut Node {
        &mut self.nodes[i]
    }

    /// Unplugs node `i`'s cable at the switch: its namespace and address
    /// stay, but no frame reaches the other nodes.
    pub fn cut_link(&self, i: usize) {
        self.underlay
            .sh_ok(&format!("ip link set {} down", port_name(i)));
    }

    /// A shell command in the underlay's namespace (the switch and the
    /// client), which must succeed.
    pub fn underlay_sh(&self, cmd: &str) {
        self.underlay.sh_ok(cmd);
    }

    pub fn restore_link(&self, i: usize) {
        self.underlay
            .sh_ok(&format!("ip link set {} up", port_name(i)));
    }

    /// Whether node `from` can open a TCP connection to `to_addr:port`
    /// within `secs`. A refused connection counts as reachable: the
    /// peer's kernel answered.
    pub fn reaches(&self, from: usize, to_addr: &str, port: u16, secs: u64) -> bool {
        let Ok(addr) = format!("{to_addr}:{port}").parse::<SocketAddr>() else {
            return false;
        };
        tcp_reachable_in(self.nodes[from].daemon.ns_pid, addr, secs)
    }
}

/// The veth end of node `i` on the underlay bridge.
fn port_name(i: usize) -> String {
    format!("node{i}")
}

/// A network namespace holding the switch (`br0`) the nodes plug into.
struct Underlay {
    holder: Child,
    pid: i32,
}

impl Underlay {
    fn new() -> Underlay {
        let holder = Command::new("unshare")
            .args(["--net", "--", "sleep", "infinity"])
            .stdin(Stdio::null())
            .spawn()
            .expect("unshare for the underlay");
        // unshare execs sleep once the namespace exists (no fork)
        let pid = holder.id() as i32;
        assert!(
            eventually(5, || std::fs::read_to_string(format!("/proc/{pid}/comm"))
                .is_ok_and(|c| c.trim() == "sleep")),
            "underlay namespace did not start"
        );
        let u = Underlay { holder, pid };
        u.sh_ok(&format!(
            "ip link set lo up && ip link add br0 type bridge && ip link set br0 up \
             && ip addr add {CLIENT_ADDR}/24 dev br0"
        ));
        u
    }

    /// Wires the network namespace of `ns_pid` to the bridge: `eth0` there
    /// with `addr`/24, `node{i}` here.
    fn plug(&self, i: usize, ns_pid: i32, addr: &str) {
        let port = port_name(i);
        self.sh_ok(&format!(
            "ip link add {port} type veth peer name eth0 netns {ns_pid} \
             && ip link set {port} master br0 && ip link set {port} up"
        ));
        let st = Command::new("nsenter")
            .args(["-t", &ns_pid.to_string(), "-n", "--", "sh", "-c"])
            .arg(format!(
                "ip addr add {addr}/24 dev eth0 && ip link set eth0 up"
            ))
            .status()
            .expect("nsenter");
        assert!(st.success(), "configuring eth0 of node {i}");
    }

    fn sh(&self, script: &str) -> Output {
        Command::new("nsenter")
            .args(["-t", &self.pid.to_string(), "-n", "--", "sh", "-c", script])
            .output()
            .expect("nsenter")
    }

    fn sh_ok(&self, script: &str) {
        let out = self.sh(script);
        assert!(
            out.status.success(),
            "underlay: {script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Underlay {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

impl Cluster {
    /// `GET path` over HTTP/1.0 from the underlay's client (outside every
    /// node) to `addr:port`: the body, or None when nothing answers.
    pub fn underlay_get(&self, addr: &str, port: u16, path: &str) -> Option<String> {
        http_get_in(self.underlay.pid, addr, port, path)
    }

    /// The same from inside node `i`'s own namespace.
    pub fn node_get(&self, i: usize, addr: &str, port: u16, path: &str) -> Option<String> {
        http_get_in(self.nodes[i].daemon.ns_pid, addr, port, path)
    }

    /// One UDP datagram from the underlay's client to `addr:port`: the
    /// answer, or None when none comes within a second.
    pub fn underlay_udp(&self, addr: &str, port: u16, payload: &str) -> Option<String> {
        let to: SocketAddr = format!("{addr}:{port}").parse().ok()?;
        let ns = std::fs::File::open(format!("/proc/{}/ns/net", self.underlay.pid)).ok()?;
        let payload = payload.to_string();
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
            let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
            s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
            s.send_to(payload.as_bytes(), to).ok()?;
            let mut buf = [0u8; 512];
            let (n, _) = s.recv_from(&mut buf).ok()?;
            Some(String::from_utf8_lossy(&buf[..n]).into_owned())
        })
        .join()
        .ok()?
    }
}

/// A UDP server in the network namespace pinned at `netns` (a
/// container's, where busybox has none) on `port`: each datagram is
/// answered with "<sender's address> <payload>", for `secs` seconds.
pub fn udp_echo_in(netns: &str, port: u16, secs: u64) -> std::thread::JoinHandle<()> {
    let ns = std::fs::File::open(netns).expect("the container's netns");
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let s = std::net::UdpSocket::bind(("0.0.0.0", port)).expect("bind");
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .expect("timeout");
        let end = std::time::Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 512];
        while std::time::Instant::now() < end {
            if let Ok((n, from)) = s.recv_from(&mut buf) {
                let answer = format!("{} {}", from.ip(), String::from_utf8_lossy(&buf[..n]));
                let _ = s.send_to(answer.as_bytes(), from);
            }
        }
    })
}

/// `GET path` from the network namespace of `pid`, on a thread that
/// enters it; the body, or None on any failure within 3 seconds.
pub fn http_get_in(pid: i32, addr: &str, port: u16, path: &str) -> Option<String> {
    use std::io::{Read, Write};
    let to: SocketAddr = format!("{addr}:{port}").parse().ok()?;
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\n\r\n");
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).ok()?;
        let wait = Duration::from_secs(3);
        let mut s = TcpStream::connect_timeout(&to, wait).ok()?;
        s.set_read_timeout(Some(wait)).ok()?;
        s.write_all(request.as_bytes()).ok()?;
        let mut answer = String::new();
        s.read_to_string(&mut answer).ok()?;
        // a CGI's own headers may end in a bare "\n\n"
        let normalized = answer.replace("\r\n", "\n");
        let (_, body) = normalized.split_once("\n\n")?;
        Some(body.to_string())
    })
    .join()
    .ok()?
}

/// A TCP connect from the network namespace of `pid`, on a thread that
/// enters it; reachable when it connects or is refused before `secs`.
pub fn tcp_reachable_in(pid: i32, addr: SocketAddr, secs: u64) -> bool {
    let Ok(ns) = std::fs::File::open(format!("/proc/{pid}/ns/net")) else {
        return false;
    };
    std::thread::spawn(move || {
        if nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).is_err() {
            return false;
        }
        match TcpStream::connect_timeout(&addr, Duration::from_secs(secs)) {
            Ok(_) => true,
            Err(e) => e.kind() == std::io::ErrorKind::ConnectionRefused,
        }
    })
    .join()
    .unwrap_or(false)
}
