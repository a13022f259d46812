//! Compiled seccomp filters, cached per profile.
//!
//! libseccomp turns the default profile (some 350 rules for two ABIs) into
//! a BPF program in about 6 ms of CPU, and libcontainer did that in every
//! container process it started. The program depends only on the profile
//! and on libseccomp, so it is compiled once, written under the runtime
//! root keyed by a hash of both, and loaded with seccomp(2) directly.
//!
//! `compile` follows libcontainer's `initialize_seccomp` rule for rule, so
//! the program is the one libcontainer would have loaded. Profiles that
//! need more than a program (notify actions, filter flags) are not cached:
//! they still go through libcontainer.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow};
use libseccomp::{ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext};
use oci_spec::runtime::{Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompOperator};
use sha2::{Digest, Sha256};

/// Whether a program alone reproduces what libcontainer would do.
pub(crate) fn cacheable(profile: &LinuxSeccomp) -> bool {
    let notify = profile.default_action() == LinuxSeccompAction::ScmpActNotify
        || profile
            .syscalls()
            .iter()
            .flatten()
            .any(|s| s.action() == LinuxSeccompAction::ScmpActNotify);
    let flags = profile.flags().as_ref().is_some_and(|f| !f.is_empty());
    !notify && !flags
}

/// The cache file of a profile: its hash and libseccomp's version name it,
/// so that a changed profile or an upgraded library gets a new entry.
pub(crate) fn cache_path(dir: &Path, profile: &LinuxSeccomp) -> Result<PathBuf> {
    let v = libseccomp::ScmpVersion::current().map_err(|e| anyhow!("libseccomp version: {e}"))?;
    // the kernel too: libseccomp picks actions by what the kernel supports
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut h = Sha256::new();
    h.update(format!(
        "libseccomp {}.{}.{} kernel {kernel}\n",
        v.major, v.minor, v.micro
    ));
    h.update(serde_json::to_vec(profile)?);
    Ok(dir.join(format!("{}.bpf", hex::encode(&h.finalize()[..16]))))
}

/// The program of a profile: from the cache when there, else compiled and
/// stored (atomically: a concurrent start reads a whole file or none).
pub(crate) fn program(dir: &Path, profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    let path = cache_path(dir, profile)?;
    if let Ok(bytes) = fs::read(&path)
        && valid(&bytes)
    {
        return Ok(bytes);
    }
    let bytes = compile(profile)?;
    // a cache that cannot be written costs time, not correctness
    let _ = store(dir, &path, &bytes);
    Ok(bytes)
}

fn valid(bytes: &[u8]) -> bool {
    !bytes.is_empty() && bytes.len().is_multiple_of(8) && bytes.len() / 8 <= u16::MAX as usize
}

fn store(dir: &Path, path: &Path, bytes: &[u8]) -> Result<()> {
    fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(".{}.tmp", std::process::id()));
    let mut f = fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    drop(f);
    fs::rename(&tmp, path)?;
    Ok(())
}

/// Compiles a profile as libcontainer's `initialize_seccomp` does (same
/// default action, architectures, rules, skipped rules and NNP setting)
/// and exports the program instead of loading it.
pub(crate) fn compile(profile: &LinuxSeccomp) -> Result<Vec<u8>> {
    let default_action = action(profile.default_action(), profile.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new(default_action)
        .map_err(|e| anyhow!("creating seccomp filter: {e}"))?;
    for &a in profile.architectures().iter().flatten() {
        ctx.add_arch(arch(a))
            .map_err(|e| anyhow!("adding architecture {a:?}: {e}"))?;
    }
    ctx.set_ctl_nnp(false)
        .map_err(|e| anyhow!("seccomp nnp attribute: {e}"))?;
    for rule in profile.syscalls().iter().flatten() {
        let act = action(rule.action(), rule.errno_ret())?;
        if act == default_action {
            continue;
        }
        let cmps: Vec<ScmpArgCompare> = rule
            .args()
            .iter()
            .flatten()
            .map(|a| ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value()))
            .collect();
        let mut seen = std::collections::HashSet::new();
        let split = !rule.args().iter().flatten().all(|a| seen.insert(a.index()));
        for name in rule.names() {
            // names the library does not know are skipped, as libcontainer does
            let Ok(sc) = libseccomp::ScmpSyscall::from_name(name) else {
                continue;
            };
            let added = match (&rule.args(), split) {
                (None, _) => ctx.add_rule(act, sc).map(|_| ()),
                (Some(_), false) => ctx.add_rule_conditional(act, sc, &cmps).map(|_| ()),
                (Some(_), true) => cmps.iter().try_for_each(|c| {
                    ctx.add_rule_conditional(act, sc, std::slice::from_ref(c))
                        .map(|_| ())
                }),
            };
            added.map_err(|e| anyhow!("adding seccomp rule for {name}: {e}"))?;
        }
    }
    export(&ctx)
}

fn export(ctx: &ScmpFilterContext) -> Result<Vec<u8>> {
    use std::io::{Read, Seek};
    let mut f = tempfile_in_memory()?;
    ctx.export_bpf(&f)
        .map_err(|e| anyhow!("exporting seccomp program: {e}"))?;
    f.rewind()?;
    let mut bytes = Vec::new();
    f.read_to_end(&mut bytes)?;
    anyhow::ensure!(valid(&bytes), "bad seccomp program ({} bytes)", bytes.len());
    Ok(bytes)
}

fn tempfile_in_memory() -> Result<fs::File> {
    use std::os::fd::FromRawFd;
    // SAFETY: a NUL-terminated name and flags; the descriptor is new and ours
    let fd = unsafe { libc::memfd_create(c"berth-seccomp".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error()).context("memfd_create");
    }
    // SAFETY: fd is a fresh descriptor owned by nobody else
    Ok(unsafe { fs::File::from_raw_fd(fd) })
}

/// Loads a program into this thread, as libseccomp's load does without
/// filter flags. The caller holds CAP_SYS_ADMIN or set no_new_privs.
pub(crate) fn load(program: &[u8]) -> std::io::Result<()> {
    if !valid(program) {
        return Err(std::io::Error::other("bad seccomp program"));
    }
    let prog = libc::sock_fprog {
        len: (program.len() / 8) as u16,
        filter: program.as_ptr() as *mut libc::sock_filter,
    };
    // SAFETY: prog points at `len` whole sock_filter entries that outlive
    // the call; the kernel copies them
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            0,
            &prog as *const libc::sock_fprog,
        )
    };
    if rc < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

fn action(action: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    let errno = errno.map(|e| e as i32).unwrap_or(libc::EPERM);
    Ok(match action {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(
            errno
                .try_into()
                .map_err(|_| anyhow!("seccomp trace errno {errno} out of range"))?,
        ),
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActNotify => ScmpAction::Notify,
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
    })
}

fn op(op: LinuxSeccompOperator, datum_b: Option<u64>) -> ScmpCompareOp {
    match op {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(datum_b.unwrap_or(0)),
    }
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
        Arch::ScmpArchParisc => ScmpArch::Parisc,
        Arch::ScmpArchParisc64 => ScmpArch::Parisc64,
        Arch::ScmpArchLoongarch64 => ScmpArch::Loongarch64,
        Arch::ScmpArchM68k => ScmpArch::M68k,
        Arch::ScmpArchSh => ScmpArch::Sh,
        Arch::ScmpArchSheb => ScmpArch::Sheb,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn default_profile() -> LinuxSeccomp {
        serde_json::from_value(serde_json::json!({
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 1,
            "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
            "syscalls": [
                {"names": ["read", "write", "exit_group", "no_such_syscall"], "action": "SCMP_ACT_ALLOW"},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_EQ"}]},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2114060288, "valueTwo": 0, "op": "SCMP_CMP_MASKED_EQ"}]},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}
            ]
        }))
        .expect("profile")
    }

    #[test]
    fn the_cached_program_is_the_freshly_compiled_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = default_profile();
        let fresh = compile(&p).expect("compile");
        assert!(valid(&fresh));
        let first = program(dir.path(), &p).expect("first");
        let path = cache_path(dir.path(), &p).expect("path");
        assert_eq!(fs::read(&path).expect("cache file"), fresh);
        assert_eq!(first, fresh);
        // the second start reads the file rather than compiling
        let second = program(dir.path(), &p).expect("second");
        assert_eq!(second, fresh);
    }

    #[test]
    fn a_changed_profile_gets_its_own_entry() {
        let dir = tempfile::tempdir().expect("tempdir");
        let p = default_profile();
        let mut q = p.clone();
        let mut rules = q.syscalls().clone().unwrap_or_default();
        rules.truncate(1);
        q.set_syscalls(Some(rules));
        assert_ne!(
            cache_path(dir.path(), &p).unwrap(),
            cache_path(dir.path(), &q).unwrap()
        );
        let a = program(dir.path(), &p).expect("p");
        let b = program(dir.path(), &q).expect("q");
        assert_ne!(a, b);
        assert_eq!(b, compile(&q).expect("compile q"));
        assert_eq!(fs::read_dir(dir.path()).expect("dir").count(), 2);
    }

    #[test]
    fn notify_and_flags_stay_with_libcontainer() {
        let mut p = default_profile();
        assert!(cacheable(&p));
        p.set_flags(Some(vec![
            oci_spec::runtime::LinuxSeccompFilterFlag::SeccompFilterFlagLog,
        ]));
        assert!(!cacheable(&p));
        let mut q = default_profile();
        q.set_default_action(LinuxSeccompAction::ScmpActNotify);
        assert!(!cacheable(&q));
    }
}
