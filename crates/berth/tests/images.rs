//! Image listing filters, history and prune, through berth's CLI and the
//! docker CLI.

mod common;

use common::{Daemon, code, stderr, stdout};

fn ids(o: &std::process::Output) -> Vec<String> {
    let mut v: Vec<String> = stdout(o).lines().map(String::from).collect();
    v.sort();
    v.dedup();
    v
}

fn short(d: &Daemon, name: &str) -> String {
    let o = d.berth(&["image", "inspect", "--format", "{{.Id}}", name]);
    stdout(&o).trim().trim_start_matches("sha256:")[..12].to_string()
}

#[test]
fn filters_history_and_prune() {
    let d = Daemon::start();
    let o = d.berth(&["run", "--name", "src", "busybox", "sh", "-c", "echo x > /x"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = d.berth(&[
        "commit",
        "-c",
        "LABEL stage=two",
        "-m",
        "second layer",
        "src",
        "labeled:1",
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // a dangling image: a commit without a name
    let o = d.berth(&["commit", "src"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let dangling = stdout(&o).trim().trim_start_matches("sha256:")[..12].to_string();
    let busybox = short(&d, "busybox");
    let labeled = short(&d, "labeled:1");

    for cli in ["berth", "docker"] {
        let run = |args: &[&str]| {
            if cli == "berth" {
                d.berth(args)
            } else {
                d.docker(args)
            }
        };
        let o = run(&["images", "-q", "--filter", "label=stage=two"]);
        assert_eq!(ids(&o).join(","), labeled, "{cli}: {}", stderr(&o));
        let o = run(&["images", "-q", "--filter", "reference=busy*"]);
        assert_eq!(ids(&o).join(","), busybox, "{cli}: {}", stderr(&o));
        let o = run(&["images", "-q", "--filter", "dangling=true"]);
        assert_eq!(ids(&o).join(","), dangling, "{cli}: {}", stderr(&o));
        let o = run(&["images", "-q", "--filter", "since=busybox"]);
        let mut want = vec![labeled.clone(), dangling.clone()];
        want.sort();
        assert_eq!(ids(&o), want, "{cli}: {}", stderr(&o));
        let o = run(&["images", "-q", "--filter", "before=labeled:1"]);
        assert_eq!(ids(&o).join(","), busybox, "{cli}: {}", stderr(&o));
        let o = run(&["images", "--filter", "bogus=1"]);
        assert_ne!(code(&o), 0);
        assert!(
            stderr(&o).contains("invalid filter 'bogus'"),
            "{cli}: {}",
            stderr(&o)
        );
    }

    // history: newest first, the top entry carries the id
    let o = d.docker(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "labeled:1",
    ]);
    let text = stdout(&o);
    let lines: Vec<&str> = text.lines().collect();
    let o2 = d.berth(&[
        "history",
        "--format",
        "{{.ID}}|{{.CreatedBy}}|{{.Comment}}",
        "labeled:1",
    ]);
    assert_eq!(stdout(&o2), stdout(&o), "{}", stderr(&o2));
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert!(lines[0].starts_with(&labeled), "{lines:?}");
    assert!(lines[0].ends_with("|second layer"), "{lines:?}");
    assert!(lines[1].starts_with("<missing>|"), "{lines:?}");
    let o = d.berth(&["history", "-H=false", "--format", "{{.Size}}", "busybox"]);
    assert!(
        stdout(&o).trim().parse::<u64>().unwrap() > 1_000_000,
        "{}",
        stdout(&o)
    );
    let o = d.berth(&["history", "busybox"]);
    assert!(stdout(&o).starts_with("IMAGE "), "{}", stdout(&o));
    assert!(stdout(&o).contains("Imported from -"), "{}", stdout(&o));

    // prune: the dangling image goes; with -a, what no container uses
    let o = d.berth(&["image", "prune", "-f"]);
    let out = stdout(&o);
    assert!(
        out.contains(&format!("deleted: sha256:{dangling}")),
        "{out}"
    );
    assert!(out.contains("Total reclaimed space:"), "{out}");
    assert!(!out.contains(&labeled), "{out}");
    let o = d.berth(&["images", "-q", "--filter", "dangling=true"]);
    assert_eq!(stdout(&o), "");
    let o = d.docker(&["image", "prune", "-a", "-f"]);
    let out = stdout(&o);
    assert!(out.contains("untagged: labeled:1"), "{out}");
    // busybox is used by container src
    assert!(!out.contains("busybox"), "{out}");
    let o = d.berth(&["images", "-q"]);
    assert_eq!(ids(&o), [busybox]);
}
