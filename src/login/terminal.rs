//! The local terminal during `microctl ssh`: whether stdin is one, its window size, and raw
//! mode (every key goes to the remote side as typed) restored however the session ends.

use std::io::IsTerminal;

/// Columns and rows of the terminal on stdout (else stdin), or 80x24.
pub fn size() -> (u32, u32) {
    for fd in [libc::STDOUT_FILENO, libc::STDIN_FILENO] {
        // SAFETY: TIOCGWINSZ writes one `winsize` into the struct we pass.
        let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
        if unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
            return (u32::from(ws.ws_col), u32::from(ws.ws_row));
        }
    }
    (80, 24)
}

pub fn stdin_is_terminal() -> bool {
    std::io::stdin().is_terminal()
}

pub fn stdout_is_terminal() -> bool {
    std::io::stdout().is_terminal()
}

/// Raw mode on stdin while alive; the previous mode comes back on drop.
pub struct RawMode {
    saved: libc::termios,
}

impl RawMode {
    /// Puts stdin into raw mode; `None` when it is not a terminal or refuses.
    pub fn enter() -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr read and write one `termios` for fd 0.
        unsafe {
            let mut saved: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(libc::STDIN_FILENO, &mut saved) != 0 {
                return None;
            }
            let mut raw = saved;
            libc::cfmakeraw(&mut raw);
            if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &raw) != 0 {
                return None;
            }
            Some(RawMode { saved })
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the `termios` read in `enter`.
        unsafe {
            libc::tcsetattr(libc::STDIN_FILENO, libc::TCSADRAIN, &self.saved);
        }
    }
}
