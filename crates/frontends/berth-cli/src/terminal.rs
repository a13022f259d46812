//! The local side of `-t`: raw mode on the user's terminal, its size sent
//! to the daemon at start and on every SIGWINCH, and docker's detach keys.

use std::os::fd::AsRawFd;

use nix::sys::termios::{SetArg, Termios, cfmakeraw, tcgetattr, tcsetattr};

pub fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor
    unsafe { libc::isatty(fd) == 1 }
}

/// The size of the terminal on stdout (or stdin): (height, width).
pub fn size() -> Option<(u16, u16)> {
    for fd in [1, 0, 2] {
        let mut ws = libc::winsize {
            ws_row: 0,
            ws_col: 0,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: TIOCGWINSZ writes a winsize we own
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_row > 0 {
            return Some((ws.ws_row, ws.ws_col));
        }
    }
    None
}

/// Puts stdin in raw mode until dropped.
pub struct RawMode {
    saved: Termios,
}

impl RawMode {
    pub fn enable() -> Option<RawMode> {
        let stdin = std::io::stdin();
        let fd = stdin.as_fd_ref();
        let saved = tcgetattr(fd).ok()?;
        let mut raw = saved.clone();
        cfmakeraw(&mut raw);
        tcsetattr(fd, SetArg::TCSANOW, &raw).ok()?;
        Some(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = tcsetattr(stdin.as_fd_ref(), SetArg::TCSANOW, &self.saved);
    }
}

/// One line typed on the terminal on stdin, not echoed (the docker
/// CLI's `term.ReadPassword`); the terminal's modes are restored after.
pub fn read_password() -> std::io::Result<String> {
    use nix::sys::termios::LocalFlags;
    use std::io::BufRead;
    let stdin = std::io::stdin();
    let saved = tcgetattr(stdin.as_fd_ref()).map_err(std::io::Error::from)?;
    let mut quiet = saved.clone();
    quiet.local_flags.remove(LocalFlags::ECHO);
    quiet.local_flags.insert(LocalFlags::ICANON);
    tcsetattr(stdin.as_fd_ref(), SetArg::TCSANOW, &quiet).map_err(std::io::Error::from)?;
    let mut line = String::new();
    let read = stdin.lock().read_line(&mut line);
    let _ = tcsetattr(stdin.as_fd_ref(), SetArg::TCSANOW, &saved);
    read?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

trait AsFdRef {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_>;
}

impl AsFdRef for std::io::Stdin {
    fn as_fd_ref(&self) -> std::os::fd::BorrowedFd<'_> {
        // SAFETY: stdin stays open for the life of the process
        unsafe { std::os::fd::BorrowedFd::borrow_raw(self.as_raw_fd()) }
    }
}
