//! The working directory under a mount (`--tmpfs /scratch -w /scratch/x`,
//! a volume): runc makes it once the mounts are in place, which is how
//! dockerd's containers get it; libcontainer only changes into it. A
//! createContainer hook (run in the container's mount namespace, after its
//! mounts, before pivot_root) makes it instead: `berth shim-mkcwd ROOTFS CWD`.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Component, Path};

use oci_spec::runtime::{Hook, HookBuilder, Spec};

pub const HOOK_ACTION: &str = "shim-mkcwd";

/// Adds the hook when the process's working directory lies under one of
/// the spec's mounts: the one place the daemon could not make it.
pub fn add_hook(spec: &mut Spec, binary: &Path) -> anyhow::Result<()> {
    let Some(cwd) = spec.process().as_ref().map(|p| p.cwd().clone()) else {
        return Ok(());
    };
    let Some(root) = spec.root().as_ref().map(|r| r.path().clone()) else {
        return Ok(());
    };
    let under_a_mount = spec.mounts().iter().flatten().any(|m| {
        let dest = m.destination();
        dest.components().any(|c| matches!(c, Component::Normal(_))) && cwd.starts_with(dest)
    });
    if !under_a_mount {
        return Ok(());
    }
    let hook: Hook = HookBuilder::default()
        .path(binary)
        .args(vec![
            "berth".to_string(),
            HOOK_ACTION.to_string(),
            root.display().to_string(),
            cwd.display().to_string(),
        ])
        .build()?;
    let mut hooks = spec.hooks().clone().unwrap_or_default();
    let mut create = hooks.create_container().clone().unwrap_or_default();
    create.push(hook);
    hooks.set_create_container(Some(create));
    spec.set_hooks(Some(hooks));
    Ok(())
}

/// `berth shim-mkcwd ROOTFS CWD`: makes CWD inside ROOTFS (symlinks
/// resolved within it), 0755 and root's as dockerd's; prints the error.
pub fn make_cwd_helper(rootfs: &Path, cwd: &str) -> i32 {
    let made = berth_archive::rootpath::resolve(rootfs, Path::new(cwd), true).and_then(|host| {
        if host.is_dir() {
            return Ok(());
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&host)
    });
    match made {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("making the working directory {cwd}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::runtime::{MountBuilder, ProcessBuilder, RootBuilder, SpecBuilder};

    fn spec(cwd: &str, dests: &[&str]) -> Spec {
        let mounts = dests
            .iter()
            .map(|d| MountBuilder::default().destination(d).build().unwrap())
            .collect::<Vec<_>>();
        SpecBuilder::default()
            .process(ProcessBuilder::default().cwd(cwd).build().unwrap())
            .root(RootBuilder::default().path("/r").build().unwrap())
            .mounts(mounts)
            .hooks(oci_spec::runtime::Hooks::default())
            .build()
            .unwrap()
    }

    fn hook_args(s: &Spec) -> Option<Vec<String>> {
        let hooks = s.hooks().as_ref()?.create_container().clone()?;
        hooks.first()?.args().clone()
    }

    #[test]
    fn only_a_working_dir_under_a_mount_gets_the_hook() {
        let bin = Path::new("/usr/bin/berth");
        let mut s = spec("/scratch/deep", &["/proc", "/scratch"]);
        add_hook(&mut s, bin).unwrap();
        assert_eq!(
            hook_args(&s).unwrap(),
            ["berth", "shim-mkcwd", "/r", "/scratch/deep"]
        );
        for cwd in ["/", "/scratchy", "/work"] {
            let mut s = spec(cwd, &["/", "/scratch"]);
            add_hook(&mut s, bin).unwrap();
            assert_eq!(hook_args(&s), None, "{cwd}");
        }
    }

    #[test]
    fn the_helper_makes_the_directory_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/outside", root.path().join("link")).unwrap();
        assert_eq!(make_cwd_helper(root.path(), "/link/a/b"), 0);
        assert!(root.path().join("outside/a/b").is_dir());
        assert_eq!(make_cwd_helper(root.path(), "/link/a/b"), 0);
        std::fs::write(root.path().join("file"), "").unwrap();
        assert_eq!(make_cwd_helper(root.path(), "/file/x"), 1);
    }
}
