//! `network create -d macvlan -o parent=…` (Docker's macvlan driver),
//! through both CLIs: containers sit on the parent's network with their
//! own MAC and address, reach a host there and each other; bad options
//! get Docker's words. The parent is a veth pair the test makes in the
//! daemon's namespace; its other end plays the outside host.

mod common;

use common::{Cli, Daemon, code, ok, stderr};

fn sh_in(d: &Daemon, cmd: &str) {
    let pid = d.ns_pid.to_string();
    let st = std::process::Command::new("nsenter")
        .args(["-t", &pid, "-m", "-n", "--", "sh", "-c", cmd])
        .status()
        .expect("nsenter");
    assert!(st.success(), "{cmd}");
}

#[test]
fn macvlan_containers_sit_on_the_parents_network() {
    let d = Daemon::start();
    sh_in(
        &d,
        "ip link add mvparent type veth peer name mvhost && ip addr add 192.168.77.1/24 dev mvhost && ip link set mvhost up && ip link set mvparent up",
    );
    for cli in [Cli::Docker, Cli::Berth] {
        let net = match cli {
            Cli::Docker => "mvd",
            Cli::Berth => "mvb",
        };
        let create = [
            "network",
            "create",
            "-d",
            "macvlan",
            "--subnet",
            "192.168.77.0/24",
            "--gateway",
            "192.168.77.1",
            "--ip-range",
            "192.168.77.64/27",
            "-o",
            "parent=mvparent",
            net,
        ];
        ok(&cli.run(&d, &create), "network create -d macvlan");
        let o = ok(
            &cli.run(
                &d,
                &[
                    "run", "--rm", "--network", net, "busybox", "sh", "-c",
                    "ip -o addr show eth0; ip link show eth0; ip route; ping -c 1 -W 2 192.168.77.1",
                ],
            ),
            "a container on the macvlan network",
        );
        assert!(
            o.contains("inet 192.168.77.6"),
            "an address of the range: {o}"
        );
        assert!(
            o.contains("link/ether 02:42:c0:a8:4d:"),
            "libnetwork's MAC: {o}"
        );
        assert!(o.contains("default via 192.168.77.1"), "{o}");
        assert!(
            o.contains("1 packets received"),
            "the parent's host answers: {o}"
        );

        // two containers reach each other (bridge mode)
        let server = format!("{net}-srv");
        ok(
            &cli.run(
                &d,
                &[
                    "run",
                    "-d",
                    "--name",
                    &server,
                    "--network",
                    net,
                    "busybox",
                    "sleep",
                    "60",
                ],
            ),
            "run -d",
        );
        let ip = ok(
            &d.docker(&[
                "inspect",
                "--format",
                &format!("{{{{(index .NetworkSettings.Networks \"{net}\").IPAddress}}}}"),
                &server,
            ]),
            "the server's address",
        );
        let ping = format!("ping -c 1 -W 2 {}", ip.trim());
        let o = ok(
            &cli.run(
                &d,
                &[
                    "run",
                    "--rm",
                    "--network",
                    net,
                    "busybox",
                    "sh",
                    "-c",
                    &ping,
                ],
            ),
            "container to container",
        );
        assert!(o.contains("1 packets received"), "{o}");
        ok(&d.docker(&["rm", "-f", &server]), "rm");
        ok(&cli.run(&d, &["network", "rm", net]), "network rm");
    }

    // Docker's words for bad options
    for (opts, want) in [
        (
            vec!["-o", "parent=nosuch0"],
            "the requested parent interface nosuch0 was not found on the Docker host",
        ),
        (
            vec!["-o", "parent=mvparent", "-o", "macvlan_mode=fast"],
            "requested macvlan mode 'fast' is not valid, 'bridge' mode is the macvlan driver default",
        ),
        (
            vec!["-o", "parent=lo"],
            "loopback interface is not a valid macvlan parent link",
        ),
    ] {
        for cli in [Cli::Docker, Cli::Berth] {
            let mut args = vec![
                "network",
                "create",
                "-d",
                "macvlan",
                "--subnet",
                "192.168.78.0/24",
            ];
            args.extend(opts.iter().copied());
            args.push("badmv");
            let o = cli.run(&d, &args);
            assert_ne!(code(&o), 0, "{args:?}");
            assert!(stderr(&o).contains(want), "{want}: {}", stderr(&o));
        }
    }
}

/// A kill -9 of the daemon loses nothing: the running container keeps its
/// device and address, the driver takes its network back at start (a new
/// container joins it), and the old one restarts on it.
#[test]
fn macvlan_networks_survive_a_daemon_kill() {
    let mut d = Daemon::start();
    sh_in(
        &d,
        "ip link add mvparent type veth peer name mvhost && ip addr add 192.168.79.1/24 dev mvhost && ip link set mvhost up && ip link set mvparent up",
    );
    let create = [
        "network",
        "create",
        "-d",
        "macvlan",
        "--subnet",
        "192.168.79.0/24",
        "--gateway",
        "192.168.79.1",
        "-o",
        "parent=mvparent",
        "-o",
        "macvlan_mode=bridge",
        "mvk",
    ];
    ok(&d.docker(&create), "network create");
    let o = ok(
        &d.docker(&[
            "network",
            "inspect",
            "--format",
            "{{.Driver}} {{index .Options \"parent\"}} {{index .Options \"macvlan_mode\"}}",
            "mvk",
        ]),
        "network inspect",
    );
    assert_eq!(o.trim(), "macvlan mvparent bridge");
    let run = [
        "run",
        "-d",
        "--name",
        "srv",
        "--network",
        "mvk",
        "--ip",
        "192.168.79.50",
        "busybox",
        "sleep",
        "600",
    ];
    ok(&d.docker(&run), "run -d --ip");
    ok(&d.docker(&["restart", "-t", "1", "srv"]), "restart before");
    d.restart_after_kill9();
    let ping = "ping -c 1 -W 2 192.168.79.50";
    let o = ok(
        &d.docker(&[
            "run",
            "--rm",
            "--network",
            "mvk",
            "busybox",
            "sh",
            "-c",
            ping,
        ]),
        "a new container reaches the old one after the restart",
    );
    assert!(o.contains("1 packets received"), "{o}");
    ok(&d.docker(&["restart", "-t", "1", "srv"]), "restart");
    let o = ok(
        &d.docker(&["exec", "srv", "ip", "-o", "addr", "show", "eth0"]),
        "exec",
    );
    assert!(o.contains("inet 192.168.79.50/24"), "{o}");
    let o = ok(
        &d.docker(&[
            "run",
            "--rm",
            "--network",
            "mvk",
            "busybox",
            "sh",
            "-c",
            ping,
        ]),
        "the restarted container answers",
    );
    assert!(o.contains("1 packets received"), "{o}");
    ok(&d.docker(&["rm", "-f", "srv"]), "rm");
    ok(&d.docker(&["network", "rm", "mvk"]), "network rm");
}
