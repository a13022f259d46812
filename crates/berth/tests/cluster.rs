//! The multi-node harness itself: nodes on one underlay, each its own
//! engine, and a cut cable that really isolates a node.

mod common;

use common::cluster::Cluster;
use common::{code, eventually, stdout};

/// Port 2377 has no listener yet: a refused connect is the peer's kernel
/// answering, which is what reachability means here.
const PORT: u16 = 2377;

#[test]
fn nodes_reach_each_other_on_the_underlay_and_a_cut_link_isolates_one() {
    let c = Cluster::new(3);
    let (a1, a2) = (c.node(1).addr.clone(), c.node(2).addr.clone());
    assert!(c.reaches(0, &a1, PORT, 3), "node 0 cannot reach node 1");
    assert!(
        c.reaches(2, &c.node(0).addr, PORT, 3),
        "node 2 cannot reach node 0"
    );

    c.cut_link(1);
    assert!(
        !c.reaches(0, &a1, PORT, 1),
        "node 1 is reachable with its link cut"
    );
    assert!(c.reaches(0, &a2, PORT, 3), "cutting node 1 isolated node 2");

    c.restore_link(1);
    assert!(
        eventually(10, || c.reaches(0, &a1, PORT, 1)),
        "node 1 unreachable after its link came back"
    );
}

#[test]
fn each_node_is_an_engine_of_its_own() {
    let c = Cluster::new(2);
    let run = c.node(0).daemon.docker(&[
        "run",
        "-d",
        "--name",
        "only-here",
        "busybox",
        "sleep",
        "100",
    ]);
    assert_eq!(code(&run), 0, "{}", common::stderr(&run));
    let names = |i: usize| {
        stdout(
            &c.node(i)
                .daemon
                .docker(&["ps", "-a", "--format", "{{.Names}}"]),
        )
    };
    assert_eq!(names(0).trim(), "only-here");
    assert_eq!(names(1).trim(), "");
}
