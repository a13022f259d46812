//! Files of a container read and written as tar streams (`docker cp`,
//! `export`) through file descriptors: every path is resolved with
//! openat2(RESOLVE_IN_ROOT) against the container's root, so `..` and
//! symlinks (absolute ones included) stay inside it even while the
//! container changes its files under us.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Component, Path, PathBuf};

use crate::sparse::CopyError;
use nix::errno::Errno;
use nix::fcntl::{OFlag, OpenHow, ResolveFlag, openat, openat2, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat, mkdirat, mknodat};
use nix::unistd::{Gid, Uid, UnlinkatFlags, fchownat, linkat, symlinkat, unlinkat};
use serde::Serialize;

/// An open directory that stands for `/` of a container.
pub struct Root(OwnedFd);

impl Root {
    /// A path naming the root through its descriptor, for code that takes
    /// paths and resolves inside a root itself.
    pub fn proc_path(&self) -> PathBuf {
        PathBuf::from(format!("/proc/self/fd/{}", self.0.as_raw_fd()))
    }

    pub fn open(path: &Path) -> io::Result<Root> {
        let fd = nix::fcntl::open(
            path,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        // SAFETY: open returned a new descriptor that nothing else owns
        Ok(Root(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    /// Opens `path` (a path inside the container) with `flags`.
    fn open_in(&self, path: &Path, flags: OFlag, follow_last: bool) -> io::Result<OwnedFd> {
        let mut flags = flags | OFlag::O_CLOEXEC;
        if !follow_last {
            flags |= OFlag::O_NOFOLLOW;
        }
        let how = OpenHow::new()
            .flags(flags)
            .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
        let fd = openat2(self.0.as_raw_fd(), path, how)?;
        // SAFETY: openat2 returned a new descriptor that nothing else owns
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// The directory `path`, created (with parents, mode 0755) if missing.
    fn mkdir_all(&self, path: &Path) -> io::Result<OwnedFd> {
        match self.open_in(path, OFlag::O_PATH | OFlag::O_DIRECTORY, true) {
            Ok(fd) => return Ok(fd),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e),
        }
        let parent = path.parent().unwrap_or(Path::new("/"));
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::other("no name"))?;
        let pfd = self.mkdir_all(parent)?;
        match mkdirat(Some(pfd.as_raw_fd()), name, Mode::from_bits_truncate(0o755)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(e.into()),
        }
        self.open_in(path, OFlag::O_PATH | OFlag::O_DIRECTORY, true)
    }
}

/// An O_PATH descriptor of `dest` in the container, created as a directory
/// (or an empty file for `file`) if missing: something to mount onto.
pub fn mount_target(root: &Root, dest: &Path, file: bool) -> io::Result<OwnedFd> {
    if !file {
        return root.mkdir_all(dest);
    }
    let parent = root.mkdir_all(dest.parent().unwrap_or(Path::new("/")))?;
    let name = dest
        .file_name()
        .ok_or_else(|| io::Error::other("no name"))?;
    match openat(
        Some(parent.as_raw_fd()),
        name,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o644),
    ) {
        // SAFETY: a new descriptor that nothing else owns
        Ok(fd) => drop(unsafe { OwnedFd::from_raw_fd(fd) }),
        Err(Errno::EEXIST) => {}
        Err(e) => return Err(e.into()),
    }
    root.open_in(dest, OFlag::O_PATH, false)
}

/// Docker's `X-Docker-Container-Path-Stat`: the mode is Go's os.FileMode.
#[derive(Debug, Clone, Serialize)]
pub struct PathStat {
    pub name: String,
    pub size: i64,
    pub mode: u32,
    pub mtime: String,
    #[serde(rename = "linkTarget")]
    pub link_target: String,
}

const GO_DIR: u32 = 1 << 31;
const GO_SYMLINK: u32 = 1 << 27;
const GO_DEVICE: u32 = 1 << 26;
const GO_PIPE: u32 = 1 << 25;
const GO_SOCKET: u32 = 1 << 24;
const GO_SETUID: u32 = 1 << 23;
const GO_SETGID: u32 = 1 << 22;
const GO_CHARDEV: u32 = 1 << 21;
const GO_STICKY: u32 = 1 << 20;

fn go_mode(st: &FileStat) -> u32 {
    let m = st.st_mode;
    let mut out = m & 0o777;
    match m & libc::S_IFMT {
        libc::S_IFDIR => out |= GO_DIR,
        libc::S_IFLNK => out |= GO_SYMLINK,
        libc::S_IFIFO => out |= GO_PIPE,
        libc::S_IFSOCK => out |= GO_SOCKET,
        libc::S_IFCHR => out |= GO_DEVICE | GO_CHARDEV,
        libc::S_IFBLK => out |= GO_DEVICE,
        _ => {}
    }
    if m & libc::S_ISUID != 0 {
        out |= GO_SETUID;
    }
    if m & libc::S_ISGID != 0 {
        out |= GO_SETGID;
    }
    if m & libc::S_ISVTX != 0 {
        out |= GO_STICKY;
    }
    out
}

/// `path` without a trailing `/` or `/.` asks for the link itself.
fn follows_last(path: &str) -> bool {
    path.ends_with('/') || path.ends_with("/.")
}

/// Go's filepath.Base: the last element, trailing slashes dropped; "/" for
/// the root and "." for an empty path.
pub fn go_base(path: &str) -> String {
    if path.is_empty() {
        return ".".into();
    }
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".into();
    }
    trimmed.rsplit('/').next().unwrap_or(trimmed).to_string()
}

/// Go's path.Clean of an absolute path.
fn clean_abs(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// The path dockerd archives for a `path` parameter: relative to the
/// container's root (not its working directory), cleaned, with a trailing
/// `/` or `/.` kept, since those ask for what a final link points to
/// (go-archive's PreserveTrailingDotOrSeparator over filepath.Join("/", p)).
pub fn archive_path(path: &str) -> String {
    let mut out = clean_abs(path);
    if go_base(path) == "." && go_base(&out) != "." {
        if !out.ends_with('/') {
            out.push('/');
        }
        out.push('.');
    }
    if path.ends_with('/') && !out.ends_with('/') {
        out.push('/');
    }
    out
}

fn is_dir(st: &FileStat) -> bool {
    st.st_mode & libc::S_IFMT == libc::S_IFDIR
}

/// Stats `path` in the container; a relative path is relative to its root.
/// A link's target is given fully resolved inside the container, as
/// dockerd's FollowSymlinkInScope gives it (as far as it exists).
pub fn stat(root: &Root, path: &str) -> io::Result<PathStat> {
    let fd = root.open_in(Path::new(path), OFlag::O_PATH, follows_last(path))?;
    let st = fstat(fd.as_raw_fd())?;
    let link_target = if st.st_mode & libc::S_IFMT == libc::S_IFLNK {
        let top = root.proc_path();
        let resolved = crate::rootpath::resolve(&top, Path::new(path), true)?;
        let inside = resolved.strip_prefix(&top).unwrap_or(&resolved);
        Path::new("/").join(inside).display().to_string()
    } else {
        String::new()
    };
    Ok(PathStat {
        name: go_base(path),
        size: st.st_size,
        mode: go_mode(&st),
        mtime: chrono::DateTime::from_timestamp(st.st_mtime, st.st_mtime_nsec as u32)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        link_target,
    })
}

/// Writes `path` as a tar stream whose top entry is named after the path's
/// last component (or "." for `dir/.`), for the builder's COPY.
pub fn write_tar(root: &Root, path: &str, out: impl Write) -> io::Result<()> {
    let fd = root.open_in(Path::new(path), OFlag::O_PATH, follows_last(path))?;
    let mut w = Walk::new(out, Layout::Plain);
    let name = go_base(path);
    let name = if name == "." { "./".to_string() } else { name };
    w.add_entry(&fd, None, name.as_bytes())?;
    w.finish()
}

/// Writes `path` (from [`archive_path`]) as dockerd's archive endpoint
/// does: a directory as itself first, named after its last component with
/// its contents under that name ("./" for `dir/.`, "/" for the root), a
/// file or a link (not followed unless the path ends in `/` or `/.`) as
/// one entry, files with several links as one file and hard links to it.
pub fn write_archive(root: &Root, path: &str, out: impl Write) -> io::Result<()> {
    let fd = root.open_in(Path::new(path), OFlag::O_PATH, follows_last(path))?;
    let mut w = Walk::new(out, Layout::Docker);
    let name = go_base(path);
    // go-archive rebases onto "" for the root, so its members are "/bin"...
    let name = if name == "/" { String::new() } else { name };
    w.add_entry(&fd, None, name.as_bytes())?;
    w.finish()
}

/// Writes the whole tree under `root` (for `export`), without a top entry,
/// named and linked as dockerd's export names them.
pub fn write_tree(root: &Root, out: impl Write) -> io::Result<()> {
    let mut w = Walk::new(out, Layout::Docker);
    let fd = root.open_in(Path::new("/"), OFlag::O_RDONLY | OFlag::O_DIRECTORY, true)?;
    w.add_children(&fd, None)?;
    w.finish()
}

fn header_for(st: &FileStat) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(st.st_uid as u64);
    h.set_gid(st.st_gid as u64);
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(0);
    h
}

/// How a walk names its members.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// names as the tar crate writes them (the builder rewrites them)
    Plain,
    /// names as go-archive writes them: directories with a trailing `/`,
    /// "./" and "/" prefixes kept, files with several links linked
    Docker,
}

struct Walk<W: Write> {
    b: tar::Builder<W>,
    layout: Layout,
    /// (device, inode) of a file with several links -> its first name
    linked: std::collections::HashMap<(u64, u64), Vec<u8>>,
}

impl<W: Write> Walk<W> {
    fn new(out: W, layout: Layout) -> Self {
        let mut b = tar::Builder::new(out);
        b.follow_symlinks(false);
        Walk {
            b,
            layout,
            linked: Default::default(),
        }
    }

    fn finish(self) -> io::Result<()> {
        self.b.into_inner()?.flush()
    }

    fn append(
        &mut self,
        h: &mut tar::Header,
        name: &[u8],
        link: Option<&[u8]>,
        data: impl Read,
    ) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        if self.layout == Layout::Docker {
            return append_raw(&mut self.b, h, name, link, data);
        }
        let name = Path::new(OsStr::from_bytes(name));
        match link {
            Some(l) => append_symlink(&mut self.b, h, name, Path::new(OsStr::from_bytes(l))),
            None => self.b.append_data(h, name, data),
        }
    }

    /// Adds one entry: `fd` is an O_PATH descriptor of it, or `at` names
    /// it in a directory descriptor.
    fn add_entry(
        &mut self,
        fd: &OwnedFd,
        at: Option<(&OwnedFd, &OsStr)>,
        name: &[u8],
    ) -> io::Result<()> {
        let st = match at {
            Some((dir, n)) => fstatat(
                Some(dir.as_raw_fd()),
                n,
                nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
            )?,
            None => fstat(fd.as_raw_fd())?,
        };
        let mut h = header_for(&st);
        let kind = st.st_mode & libc::S_IFMT;
        if kind != libc::S_IFDIR && self.layout == Layout::Docker && st.st_nlink > 1 {
            let key = (st.st_dev, st.st_ino);
            if let Some(first) = self.linked.get(&key).cloned() {
                h.set_entry_type(tar::EntryType::Link);
                return append_raw(&mut self.b, &mut h, name, Some(&first), io::empty());
            }
            self.linked.insert(key, name.to_vec());
        }
        match kind {
            libc::S_IFDIR => {
                h.set_entry_type(tar::EntryType::Directory);
                let mut dir_name = name.to_vec();
                if self.layout == Layout::Docker && !dir_name.ends_with(b"/") {
                    dir_name.push(b'/');
                }
                self.append(&mut h, &dir_name, None, io::empty())?;
                let dfd = reopen(fd, at, OFlag::O_RDONLY | OFlag::O_DIRECTORY)?;
                if !is_pseudo_fs(&dfd) {
                    self.add_children(&dfd, Some(name))?;
                }
            }
            libc::S_IFREG => {
                h.set_entry_type(tar::EntryType::Regular);
                let size = st.st_size.max(0) as u64;
                h.set_size(size);
                let file = File::from(reopen(fd, at, OFlag::O_RDONLY)?);
                // a file that changes while it is read still fills exactly
                // its header's size, so the archive stays well-formed
                let data = file.take(size).chain(io::repeat(0)).take(size);
                self.append(&mut h, name, None, data)?;
            }
            libc::S_IFLNK => {
                use std::os::unix::ffi::OsStrExt;
                h.set_entry_type(tar::EntryType::Symlink);
                let target = match at {
                    Some((dir, n)) => readlinkat(Some(dir.as_raw_fd()), n)?,
                    None => readlinkat(Some(fd.as_raw_fd()), "")?,
                };
                self.append(&mut h, name, Some(target.as_bytes()), io::empty())?;
            }
            kind @ (libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO) => {
                h.set_entry_type(match kind {
                    libc::S_IFCHR => tar::EntryType::Char,
                    libc::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                });
                if kind != libc::S_IFIFO {
                    h.set_device_major(libc::major(st.st_rdev))?;
                    h.set_device_minor(libc::minor(st.st_rdev))?;
                }
                self.append(&mut h, name, None, io::empty())?;
            }
            // sockets are not archived, as in Docker
            _ => {}
        }
        Ok(())
    }

    /// Adds what is in `dir`, named under `prefix` (none: at the top).
    fn add_children(&mut self, dir: &OwnedFd, prefix: Option<&[u8]>) -> io::Result<()> {
        use std::os::unix::ffi::OsStrExt;
        for n in list_dir(dir)? {
            let child = match prefix {
                None => n.as_bytes().to_vec(),
                Some(p) if self.layout == Layout::Plain && p.is_empty() => n.as_bytes().to_vec(),
                Some(p) => {
                    let mut c = p.to_vec();
                    if !c.ends_with(b"/") {
                        c.push(b'/');
                    }
                    c.extend_from_slice(n.as_bytes());
                    c
                }
            };
            match self.add_entry(dir, Some((dir, &n)), &child) {
                Ok(()) => {}
                // removed while we walked: skip it, as tar does
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Whether `dir` is on a kernel file system (procfs, sysfs, cgroups…) that
/// a running container's root shows: its mount point goes into an archive
/// as an empty directory, as dockerd's (which reads the root without those
/// mounts) has it; its live files change while they are read.
fn is_pseudo_fs(dir: &OwnedFd) -> bool {
    const PSEUDO: [i64; 10] = [
        0x9fa0,      // proc
        0x6265_6572, // sysfs
        0x6367_7270, // cgroup2
        0x0027_e0eb, // cgroup
        0x1cd1,      // devpts
        0x1980_0202, // mqueue
        0x7363_6673, // securityfs
        0x6462_6720, // debugfs
        0x7472_6163, // tracefs
        0x6e73_6673, // nsfs
    ];
    let mut st = std::mem::MaybeUninit::<libc::statfs>::zeroed();
    // SAFETY: `st` is a valid statfs buffer and `dir` an open descriptor
    let rc = unsafe { libc::fstatfs(dir.as_raw_fd(), st.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: fstatfs filled it in
    #[allow(clippy::unnecessary_cast)] // f_type's width differs by architecture
    let f_type = unsafe { st.assume_init() }.f_type as i64;
    PSEUDO.contains(&f_type)
}

/// Appends an entry named (and linked) by raw bytes, as Go's tar writer
/// does: names are not cleaned, so "./x" and "/x" stay as they are; a name
/// or link too long for the header goes first as a GNU long-name entry.
fn append_raw<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &[u8],
    link: Option<&[u8]>,
    data: impl Read,
) -> io::Result<()> {
    if name.contains(&0) || link.is_some_and(|l| l.contains(&0)) {
        return Err(io::Error::other(
            "a name in the archive contains a NUL byte",
        ));
    }
    let name_slot = h.as_old().name.len();
    if name.len() > name_slot {
        long_name(b, tar::EntryType::GNULongName, name)?;
    }
    let n = name.len().min(name_slot);
    let slot = &mut h.as_old_mut().name;
    slot.fill(0);
    slot[..n].copy_from_slice(&name[..n]);
    if let Some(l) = link {
        let link_slot = h.as_old().linkname.len();
        if l.len() > link_slot {
            long_name(b, tar::EntryType::GNULongLink, l)?;
        }
        let n = l.len().min(link_slot);
        let slot = &mut h.as_old_mut().linkname;
        slot.fill(0);
        slot[..n].copy_from_slice(&l[..n]);
    }
    h.set_cksum();
    b.append(h, data)
}

fn long_name<W: Write>(
    b: &mut tar::Builder<W>,
    kind: tar::EntryType,
    value: &[u8],
) -> io::Result<()> {
    let mut h = tar::Header::new_gnu();
    let tag = b"././@LongLink";
    h.as_old_mut().name[..tag.len()].copy_from_slice(tag);
    h.set_mode(0o644);
    h.set_entry_type(kind);
    h.set_size(value.len() as u64 + 1);
    h.set_cksum();
    b.append(&h, value.chain(&[0u8][..]))
}

/// Adds a symlink entry. The tar crate (0.4.46) writes a target of "/" as
/// "//"; a target that fits the header is written as its bytes instead.
pub fn append_symlink<W: Write>(
    b: &mut tar::Builder<W>,
    h: &mut tar::Header,
    name: &Path,
    target: &Path,
) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let bytes = target.as_os_str().as_bytes();
    let slot = &mut h.as_old_mut().linkname;
    if bytes.is_empty() || bytes.len() >= slot.len() || bytes.contains(&0) {
        return b.append_link(h, name, target);
    }
    slot.fill(0);
    slot[..bytes.len()].copy_from_slice(bytes);
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_size(0);
    b.append_data(h, name, io::empty())
}

fn reopen(fd: &OwnedFd, at: Option<(&OwnedFd, &OsStr)>, flags: OFlag) -> io::Result<OwnedFd> {
    let raw = match at {
        Some((dir, n)) => openat(
            Some(dir.as_raw_fd()),
            n,
            flags | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?,
        // an O_PATH descriptor is reopened through its /proc/self/fd link,
        // which names the object itself and resolves nothing
        None => nix::fcntl::open(
            format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
            flags | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?,
    };
    // SAFETY: a new descriptor that nothing else owns
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn list_dir(dir: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names: Vec<std::ffi::OsString> =
        std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd()))?
            .filter_map(|e| e.ok().map(|e| e.file_name()))
            .collect();
    names.sort();
    Ok(names)
}

#[derive(Debug, Default, Clone, Copy)]
pub struct ExtractOptions {
    /// keep the archive's owners (`cp -a`); otherwise root owns everything
    pub copy_uid_gid: bool,
    /// refuse to replace a directory with a non-directory or the reverse
    pub no_overwrite_dir_non_dir: bool,
}

/// A tar stream that cannot be read is the client's fault: a 400, not a
/// failure of the daemon.
fn bad_archive(e: io::Error) -> ExtractError {
    ExtractError::Invalid(format!("invalid archive: {e}"))
}

#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

impl From<Errno> for ExtractError {
    fn from(e: Errno) -> Self {
        ExtractError::Io(e.into())
    }
}

/// An archive member's path relative to the extraction point; `None` for
/// the point itself. Absolute names are made relative; a name that climbs
/// out of the extraction point is refused.
fn member_path(raw: &Path) -> Result<Option<PathBuf>, ExtractError> {
    let mut parts: Vec<&OsStr> = Vec::new();
    for c in raw.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::ParentDir => {
                if parts.pop().is_none() {
                    return Err(ExtractError::Invalid(format!(
                        "archive entry {:?} would be written outside the destination",
                        raw.display().to_string()
                    )));
                }
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Ok((!parts.is_empty()).then(|| parts.iter().collect()))
}

/// Extracts a tar stream into the directory `dest` of the container.
pub fn extract_tar(
    root: &Root,
    dest: &str,
    input: impl Read,
    opts: ExtractOptions,
) -> Result<(), ExtractError> {
    let dest = Path::new(dest);
    let dfd = root.open_in(dest, OFlag::O_PATH, true)?;
    if !is_dir(&fstat(dfd.as_raw_fd())?) {
        return Err(ExtractError::Invalid(
            "extraction point is not a directory".into(),
        ));
    }
    let mut x = Extraction {
        root,
        dest,
        opts,
        dirs: Vec::new(),
    };
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(bad_archive)? {
        x.member(&mut entry.map_err(bad_archive)?)?;
    }
    x.set_dir_times();
    Ok(())
}

struct Extraction<'a> {
    root: &'a Root,
    dest: &'a Path,
    opts: ExtractOptions,
    /// directories made or merged, with their times to set at the end
    dirs: Vec<(PathBuf, i64)>,
}

impl Extraction<'_> {
    fn member<R: Read>(&mut self, entry: &mut tar::Entry<R>) -> Result<(), ExtractError> {
        let sparse = crate::sparse::pax_sparse(entry).map_err(bad_archive)?;
        let raw = match sparse.as_ref().and_then(|s| s.name()) {
            Some(n) => n.to_path_buf(),
            None => entry.path().map_err(bad_archive)?.into_owned(),
        };
        let Some(rel) = member_path(&raw)? else {
            return Ok(());
        };
        let full = self.dest.join(&rel);
        let name = full
            .file_name()
            .map(|n| n.to_os_string())
            .ok_or_else(|| ExtractError::Invalid(format!("bad entry name {raw:?}")))?;
        let parent = self
            .root
            .mkdir_all(full.parent().unwrap_or(Path::new("/")))?;
        let (pfd, n) = (parent.as_raw_fd(), name.as_os_str());
        let h = entry.header().clone();
        let mode = Mode::from_bits_truncate(h.mode().unwrap_or(0o644) & 0o7777);
        let kind = h.entry_type();
        let merge_dir = self.clear_way(pfd, n, kind == tar::EntryType::Directory, &full)?;
        match kind {
            tar::EntryType::Directory => {
                if !merge_dir {
                    mkdirat(Some(pfd), n, Mode::from_bits_truncate(0o700))?;
                }
                set_attrs(pfd, n, &h, mode, self.opts, false)?;
                self.dirs.push((full, h.mtime().unwrap_or(0) as i64));
            }
            tar::EntryType::Regular | tar::EntryType::Continuous | tar::EntryType::GNUSparse => {
                write_file(pfd, n, entry, sparse.as_ref(), &raw)?;
                set_attrs(pfd, n, &h, mode, self.opts, false)?;
            }
            tar::EntryType::Symlink => {
                let target = h.link_name()?.ok_or_else(|| {
                    ExtractError::Invalid(format!("symlink {raw:?} has no target"))
                })?;
                symlinkat(target.as_ref(), Some(pfd), n)?;
                set_attrs(pfd, n, &h, mode, self.opts, true)?;
            }
            tar::EntryType::Link => self.hard_link(pfd, n, &h, &raw)?,
            tar::EntryType::Char | tar::EntryType::Block | tar::EntryType::Fifo => {
                let (k, dev) = device_of(&h).map_err(bad_archive)?;
                mknodat(Some(pfd), n, k, mode, dev)?;
                set_attrs(pfd, n, &h, mode, self.opts, false)?;
            }
            // pax and GNU metadata entries are consumed by the reader;
            // anything else (volume labels) is skipped
            _ => {}
        }
        Ok(())
    }

    /// Makes room for a member named `n`: what is there goes, unless both
    /// are directories (returns true: merge into it). A directory is never
    /// replaced by a non-directory, nor the reverse with
    /// `noOverwriteDirNonDir`.
    fn clear_way(
        &self,
        pfd: RawFd,
        n: &OsStr,
        want_dir: bool,
        full: &Path,
    ) -> Result<bool, ExtractError> {
        let Ok(st) = fstatat(Some(pfd), n, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) else {
            return Ok(false);
        };
        if is_dir(&st) && want_dir {
            return Ok(true);
        }
        if is_dir(&st) || (want_dir && self.opts.no_overwrite_dir_non_dir) {
            let what = |dir: bool| if dir { "directory" } else { "non-directory" };
            return Err(ExtractError::Invalid(format!(
                "cannot overwrite {} {:?} with {}",
                what(is_dir(&st)),
                full.display().to_string(),
                what(want_dir),
            )));
        }
        unlinkat(Some(pfd), n, UnlinkatFlags::NoRemoveDir)?;
        Ok(false)
    }

    /// A hard link to a member earlier in the archive or a file already in
    /// the destination, resolved inside the root.
    fn hard_link(
        &self,
        pfd: RawFd,
        n: &OsStr,
        h: &tar::Header,
        raw: &Path,
    ) -> Result<(), ExtractError> {
        let target = h
            .link_name()?
            .ok_or_else(|| ExtractError::Invalid(format!("hard link {raw:?} has no target")))?;
        let Some(trel) = member_path(&target)? else {
            return Err(ExtractError::Invalid(format!(
                "invalid hard link target {target:?}"
            )));
        };
        let src = self
            .root
            .open_in(&self.dest.join(&trel), OFlag::O_PATH, false)
            .map_err(|e| match e.raw_os_error() {
                Some(libc::ENOENT) | Some(libc::ENOTDIR) => ExtractError::Invalid(format!(
                    "invalid archive: hard link {raw:?} points to {target:?}, which is neither in the archive before it nor in the destination"
                )),
                _ => ExtractError::Io(e),
            })?;
        // linking through /proc/self/fd needs no CAP_DAC_READ_SEARCH
        // (AT_EMPTY_PATH would)
        let proc_path = PathBuf::from(format!("/proc/self/fd/{}", src.as_raw_fd()));
        linkat(
            None,
            proc_path.as_path(),
            Some(pfd),
            Path::new(n),
            nix::fcntl::AtFlags::AT_SYMLINK_FOLLOW,
        )
        .map_err(|e| ExtractError::Io(io::Error::other(format!("linking {raw:?}: {e}"))))
    }

    /// Directories get their times last: filling them changed them.
    fn set_dir_times(&self) {
        for (dir, mtime) in self.dirs.iter().rev() {
            if let Ok(fd) = self
                .root
                .open_in(dir, OFlag::O_PATH | OFlag::O_DIRECTORY, false)
            {
                let t = nix::sys::time::TimeSpec::new(mtime.to_owned(), 0);
                let _ = nix::sys::stat::utimensat(
                    None,
                    format!("/proc/self/fd/{}", fd.as_raw_fd()).as_str(),
                    &t,
                    &t,
                    nix::sys::stat::UtimensatFlags::FollowSymlink,
                );
            }
        }
    }
}

/// A regular (or sparse) member's content in a new file; an archive that
/// breaks off leaves no partial file behind.
fn write_file<R: Read>(
    pfd: RawFd,
    n: &OsStr,
    entry: &mut tar::Entry<R>,
    sparse: Option<&crate::sparse::PaxSparse>,
    raw: &Path,
) -> Result<(), ExtractError> {
    let fd = openat(
        Some(pfd),
        n,
        OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_WRONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::from_bits_truncate(0o600),
    )?;
    // SAFETY: a new descriptor that nothing else owns
    let mut f = unsafe { File::from_raw_fd(fd) };
    let copied = crate::sparse::write_contents(entry, sparse, &mut f);
    drop(f);
    copied.map(|_| ()).map_err(|e| {
        let _ = unlinkat(Some(pfd), n, UnlinkatFlags::NoRemoveDir);
        match e {
            CopyError::Archive(e) => {
                ExtractError::Invalid(format!("invalid archive: {raw:?}: {e}"))
            }
            CopyError::Write(e) => ExtractError::Io(e),
        }
    })
}

/// The node type and device number of a device or fifo member.
fn device_of(h: &tar::Header) -> io::Result<(SFlag, libc::dev_t)> {
    let dev = || -> io::Result<libc::dev_t> {
        Ok(libc::makedev(
            h.device_major()?.unwrap_or(0),
            h.device_minor()?.unwrap_or(0),
        ))
    };
    Ok(match h.entry_type() {
        tar::EntryType::Char => (SFlag::S_IFCHR, dev()?),
        tar::EntryType::Block => (SFlag::S_IFBLK, dev()?),
        _ => (SFlag::S_IFIFO, 0),
    })
}

fn set_attrs(
    pfd: RawFd,
    name: &OsStr,
    h: &tar::Header,
    mode: Mode,
    opts: ExtractOptions,
    symlink: bool,
) -> Result<(), ExtractError> {
    let (uid, gid) = if opts.copy_uid_gid {
        (h.uid().unwrap_or(0) as u32, h.gid().unwrap_or(0) as u32)
    } else {
        (0, 0)
    };
    fchownat(
        Some(pfd),
        name,
        Some(Uid::from_raw(uid)),
        Some(Gid::from_raw(gid)),
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )?;
    if !symlink {
        // after chown, which clears setuid bits
        nix::sys::stat::fchmodat(
            Some(pfd),
            name,
            mode,
            nix::sys::stat::FchmodatFlags::FollowSymlink,
        )?;
    }
    let t = nix::sys::time::TimeSpec::new(h.mtime().unwrap_or(0) as i64, 0);
    nix::sys::stat::utimensat(
        Some(pfd),
        name,
        &t,
        &t,
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_paths_stay_inside() {
        assert_eq!(
            member_path(Path::new("/etc/x")).ok().flatten(),
            Some(PathBuf::from("etc/x"))
        );
        assert_eq!(
            member_path(Path::new("./a/../b")).ok().flatten(),
            Some(PathBuf::from("b"))
        );
        assert!(member_path(Path::new("./")).ok().flatten().is_none());
        assert!(member_path(Path::new("../x")).is_err());
        assert!(member_path(Path::new("a/../../x")).is_err());
    }

    #[test]
    fn paths_are_made_absolute_and_named_as_go_does() {
        for (p, want) in [
            (".", "/."),
            ("./", "/./"),
            ("/", "/"),
            ("etc/hostname", "/etc/hostname"),
            ("/d/", "/d/"),
            ("/d/.", "/d/."),
            ("d/./", "/d/./"),
            ("/a/../b//c", "/b/c"),
            ("../..", "/"),
        ] {
            assert_eq!(archive_path(p), want, "{p}");
        }
        for (p, want) in [
            ("/", "/"),
            ("//", "/"),
            (".", "."),
            ("/d/.", "."),
            ("/d/", "d"),
            ("etc/hostname", "hostname"),
            ("", "."),
        ] {
            assert_eq!(go_base(p), want, "{p}");
        }
    }

    fn members(tar: &[u8]) -> Vec<(String, char, String)> {
        let mut ar = tar::Archive::new(tar);
        ar.entries()
            .expect("tar")
            .map(|e| {
                let e = e.expect("entry");
                let kind = match e.header().entry_type() {
                    tar::EntryType::Directory => 'd',
                    tar::EntryType::Symlink => 'l',
                    tar::EntryType::Link => 'h',
                    _ => 'f',
                };
                let link = e
                    .link_name_bytes()
                    .map(|l| String::from_utf8_lossy(&l).into_owned())
                    .unwrap_or_default();
                (
                    String::from_utf8_lossy(&e.path_bytes()).into_owned(),
                    kind,
                    link,
                )
            })
            .collect()
    }

    #[test]
    fn archives_are_named_and_linked_as_dockerd_names_them() {
        let src = tempfile::tempdir().expect("tempdir");
        let d = src.path().join("d");
        std::fs::create_dir_all(d.join("sub")).expect("mkdir");
        std::fs::write(d.join("sub/f"), b"x").expect("write");
        std::fs::hard_link(d.join("sub/f"), d.join("hard")).expect("link");
        std::os::unix::fs::symlink("/etc/passwd", d.join("lnk")).expect("symlink");
        let long = "n".repeat(120);
        std::fs::write(d.join(&long), b"").expect("write");
        let root = Root::open(src.path()).expect("root");
        let tar_of = |p: &str| {
            let mut buf = Vec::new();
            write_archive(&root, &archive_path(p), &mut buf).expect("tar");
            members(&buf)
        };
        let s = |n: &str, k: char, l: &str| (n.to_string(), k, l.to_string());
        assert_eq!(
            tar_of("/d"),
            [
                s("d/", 'd', ""),
                s("d/hard", 'f', ""),
                s("d/lnk", 'l', "/etc/passwd"),
                s(&format!("d/{long}"), 'f', ""),
                s("d/sub/", 'd', ""),
                s("d/sub/f", 'h', "d/hard"),
            ]
        );
        assert_eq!(tar_of("d/.")[..2], [s("./", 'd', ""), s("./hard", 'f', "")]);
        assert_eq!(tar_of("/")[..2], [s("/", 'd', ""), s("/d/", 'd', "")]);
        assert_eq!(tar_of(".")[..2], [s("./", 'd', ""), s("./d/", 'd', "")]);
        // the final link is itself unless the path ends in "/" or "/."
        assert_eq!(tar_of("d/lnk"), [s("lnk", 'l', "/etc/passwd")]);
        let err = write_archive(&root, "/d/hard/", io::sink()).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOTDIR));
        assert_eq!(stat(&root, ".").expect("stat").name, ".");
        assert_eq!(stat(&root, "d/sub").expect("stat").name, "sub");
    }

    #[test]
    fn round_trip_keeps_links_inside_the_root() {
        let src = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir_all(src.path().join("d/sub")).expect("mkdir");
        std::fs::write(src.path().join("d/sub/f"), b"hello").expect("write");
        std::os::unix::fs::symlink("/etc", src.path().join("d/abs")).expect("symlink");
        let root = Root::open(src.path()).expect("root");
        let mut buf = Vec::new();
        write_tar(&root, "/d", &mut buf).expect("tar");
        let st = stat(&root, "/d/abs").expect("stat");
        assert_eq!(st.mode & GO_SYMLINK, GO_SYMLINK);
        assert_eq!(st.link_target, "/etc");

        let dst = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(dst.path().join("etc")).expect("mkdir");
        let droot = Root::open(dst.path()).expect("root");
        extract_tar(&droot, "/", &buf[..], ExtractOptions::default()).expect("extract");
        assert_eq!(
            std::fs::read(dst.path().join("d/sub/f")).ok().as_deref(),
            Some(&b"hello"[..])
        );
        // extracting through the absolute link writes into the root's /etc,
        // never the host's
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_size(2);
        h.set_mode(0o644);
        b.append_data(&mut h, "d/abs/berth-test-file", &b"hi"[..])
            .expect("append");
        let tarball = b.into_inner().expect("tar");
        extract_tar(&droot, "/", &tarball[..], ExtractOptions::default()).expect("extract");
        assert!(dst.path().join("etc/berth-test-file").exists());
        assert!(!Path::new("/etc/berth-test-file").exists());
    }

    #[test]
    fn a_directory_member_replaces_a_file_unless_told_not_to() {
        let dst = tempfile::tempdir().expect("tempdir");
        std::fs::write(dst.path().join("d"), b"a file").expect("write");
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, "d/", io::empty()).expect("dir");
        let mut f = tar::Header::new_gnu();
        f.set_size(2);
        f.set_mode(0o644);
        b.append_data(&mut f, "d/inner", &b"hi"[..]).expect("file");
        let tarball = b.into_inner().expect("tar");
        let root = Root::open(dst.path()).expect("root");
        let refuse = ExtractOptions {
            no_overwrite_dir_non_dir: true,
            ..Default::default()
        };
        let err = extract_tar(&root, "/", &tarball[..], refuse).unwrap_err();
        assert!(
            err.to_string().contains("cannot overwrite non-directory"),
            "{err}"
        );
        assert!(
            dst.path().join("d").is_file(),
            "the refusal changed nothing"
        );
        extract_tar(&root, "/", &tarball[..], ExtractOptions::default()).expect("extract");
        assert!(dst.path().join("d").is_dir());
        assert_eq!(
            std::fs::read(dst.path().join("d/inner")).expect("read"),
            b"hi"
        );
    }
}
