//! OCI runtime specs as Docker makes them for a container (`spec`: the
//! default capabilities, mounts, namespaces, resources and masked paths)
//! and its seccomp profiles (`seccomp`). The container service builds the
//! spec; the runtime driver runs it.

pub mod seccomp;
pub mod spec;

/// The cgroup a container is placed in, under the daemon's own cgroup
/// `parent`: the spec names it, and a forced delete empties it.
pub fn cgroup_path(parent: &str, id: &str) -> String {
    format!("{}/berth/{}", parent.trim_end_matches('/'), id)
}

#[cfg(test)]
mod tests {
    #[test]
    fn cgroups_nest_under_the_daemons() {
        assert_eq!(
            super::cgroup_path("/user.slice/", "abc"),
            "/user.slice/berth/abc"
        );
    }
}
