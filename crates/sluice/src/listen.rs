//! Where the client listener comes from: the socket systemd passes on
//! socket activation (`sluice.socket`), which outlives each Sluice process
//! so that a restart refuses no connection, or one Sluice binds itself,
//! optionally with `SO_REUSEPORT` so that a new process can bind beside a
//! draining one.

use std::os::fd::{FromRawFd, RawFd};

use anyhow::{bail, Context};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const FIRST_PASSED_FD: RawFd = 3;

/// The environment of socket activation, read once at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activation {
    pub listen_pid: Option<String>,
    pub listen_fds: Option<String>,
}

impl Activation {
    /// Reads `LISTEN_PID` and `LISTEN_FDS` and removes them (with
    /// `LISTEN_FDNAMES`), as `sd_listen_fds(1)` does, so nothing Sluice
    /// might start later takes them for its own. Call before any thread
    /// starts.
    pub fn take_from_env() -> Activation {
        let read = |name| std::env::var(name).ok();
        let activation = Activation {
            listen_pid: read("LISTEN_PID"),
            listen_fds: read("LISTEN_FDS"),
        };
        for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
            std::env::remove_var(name);
        }
        activation
    }

    /// How many sockets systemd passed to this process: 0 when the
    /// variables are absent or name another process (they were inherited
    /// from a parent), as `sd_listen_fds` reads them.
    pub fn passed_sockets(&self, own_pid: u32) -> anyhow::Result<usize> {
        let (Some(pid), Some(fds)) = (&self.listen_pid, &self.listen_fds) else {
            return Ok(0);
        };
        let pid: u32 = pid
            .trim()
            .parse()
            .with_context(|| format!("LISTEN_PID={pid:?} is not a process id"))?;
        if pid != own_pid {
            return Ok(0);
        }
        fds.trim()
            .parse()
            .with_context(|| format!("LISTEN_FDS={fds:?} is not a count"))
    }
}

/// The client listener systemd passed, if it passed one. Sluice takes
/// exactly one socket: a listening TCP socket.
pub fn activated_listener(
    activation: &Activation,
) -> anyhow::Result<Option<std::net::TcpListener>> {
    match activation.passed_sockets(std::process::id())? {
        0 => Ok(None),
        1 => passed_tcp_listener(FIRST_PASSED_FD).map(Some),
        n => bail!(
            "socket activation passed {n} sockets; Sluice takes one, the client \
             listener (one ListenStream= in sluice.socket)"
        ),
    }
}

fn passed_tcp_listener(fd: RawFd) -> anyhow::Result<std::net::TcpListener> {
    let what = "the socket passed by systemd (LISTEN_FDS)";
    let domain =
        socket_option(fd, libc::SO_DOMAIN).with_context(|| format!("{what} is unusable"))?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        bail!("{what} is not a TCP socket (use ListenStream=ADDRESS:PORT in sluice.socket)");
    }
    if socket_option(fd, libc::SO_TYPE)? != libc::SOCK_STREAM {
        bail!("{what} is not a stream socket (use ListenStream= in sluice.socket)");
    }
    if socket_option(fd, libc::SO_ACCEPTCONN)? != 1 {
        bail!("{what} is not listening (Accept=no in sluice.socket)");
    }
    // SAFETY: fd 3 was handed to this process for it to own, and was
    // checked above to be a listening TCP socket; nothing else wraps it.
    let listener = unsafe { std::net::TcpListener::from_raw_fd(fd) };
    // The descriptor must not leak into anything Sluice starts.
    // SAFETY: fcntl on a descriptor this process owns.
    if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error()).context(what);
    }
    listener.set_nonblocking(true).context(what)?;
    Ok(listener)
}

fn socket_option(fd: RawFd, option: libc::c_int) -> std::io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc == 0 {
        Ok(value)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Binds `address` for clients. With `reuse_port`, a second Sluice can
/// bind the same address while the first drains (an upgrade without
/// systemd).
pub fn bind(
    address: std::net::SocketAddr,
    reuse_port: bool,
) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std's and tokio's own bind do: a restart can rebind at once
    // while the old connections are in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    if reuse_port {
        socket.set_reuseport(true)?;
    }
    socket.bind(address)?;
    socket.listen(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn activation(pid: Option<&str>, fds: Option<&str>) -> Activation {
        Activation {
            listen_pid: pid.map(String::from),
            listen_fds: fds.map(String::from),
        }
    }

    #[test]
    fn no_variables_no_sockets() {
        assert_eq!(activation(None, None).passed_sockets(7).unwrap(), 0);
        assert_eq!(activation(Some("7"), None).passed_sockets(7).unwrap(), 0);
        assert_eq!(activation(None, Some("1")).passed_sockets(7).unwrap(), 0);
    }

    #[test]
    fn sockets_meant_for_another_process_are_not_taken() {
        assert_eq!(
            activation(Some("8"), Some("1")).passed_sockets(7).unwrap(),
            0
        );
    }

    #[test]
    fn counts_sockets_passed_to_this_process() {
        assert_eq!(
            activation(Some("7"), Some("1")).passed_sockets(7).unwrap(),
            1
        );
        assert_eq!(
            activation(Some("7"), Some("2")).passed_sockets(7).unwrap(),
            2
        );
        assert_eq!(
            activation(Some("7"), Some("0")).passed_sockets(7).unwrap(),
            0
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_guess() {
        let e = activation(Some("x"), Some("1"))
            .passed_sockets(7)
            .unwrap_err();
        assert!(e.to_string().contains("LISTEN_PID"), "{e}");
        let e = activation(Some("7"), Some("-1"))
            .passed_sockets(7)
            .unwrap_err();
        assert!(e.to_string().contains("LISTEN_FDS"), "{e}");
    }

    #[test]
    fn a_passed_descriptor_that_is_not_a_tcp_listener_is_refused() {
        use std::os::fd::AsRawFd;
        let (unix, _peer) = std::os::unix::net::UnixStream::pair().unwrap();
        let e = passed_tcp_listener(unix.as_raw_fd()).unwrap_err();
        assert!(e.to_string().contains("not a TCP socket"), "{e}");
        let connected = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = std::net::TcpStream::connect(connected.local_addr().unwrap()).unwrap();
        let e = passed_tcp_listener(stream.as_raw_fd()).unwrap_err();
        assert!(e.to_string().contains("not listening"), "{e}");
    }

    #[test]
    fn two_processes_worth_of_listeners_share_a_port_with_reuse_port() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let first = bind("127.0.0.1:0".parse().unwrap(), true).unwrap();
            let address = first.local_addr().unwrap();
            assert!(bind(address, true).is_ok());
            let plain = bind("127.0.0.1:0".parse().unwrap(), false).unwrap();
            assert!(bind(plain.local_addr().unwrap(), false).is_err());
        });
    }
}
