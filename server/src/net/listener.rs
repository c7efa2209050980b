//! Listening sockets, made on the main thread before the shards start: one socket per
//! shard on the same port (SO_REUSEPORT), so the kernel spreads connections over shards.
//! Port 0 asks for an ephemeral port; the first socket learns it and the others join it.

use std::net::{IpAddr, SocketAddr, TcpListener as StdListener};

use socket2::{Domain, Protocol, Socket, Type};

/// Backlog of each listening socket.
pub const LISTEN_BACKLOG: i32 = 1024;

fn reuseport_socket(addr: SocketAddr) -> std::io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// `count` sockets listening on `ip:port` (port 0: one ephemeral port shared by all).
///
/// # Errors
/// The port is taken or the address is not local.
pub fn bind_group(ip: IpAddr, port: u16, count: usize) -> std::io::Result<Vec<StdListener>> {
    let first = reuseport_socket(SocketAddr::new(ip, port))?;
    let port = first.local_addr()?.port();
    let mut all = vec![first];
    for _ in 1..count {
        all.push(reuseport_socket(SocketAddr::new(ip, port))?);
    }
    Ok(all)
}

/// Hands a listening std socket (bound on the main thread) to the glommio executor this
/// is called on. The one place a listener's fd changes owner.
pub fn adopt(listener: StdListener) -> glommio::net::TcpListener {
    use std::os::fd::{FromRawFd, IntoRawFd};
    // SAFETY: `into_raw_fd` gives up the std listener's ownership of a valid listening
    // socket fd, so the glommio listener becomes its only owner (closed once, on drop).
    unsafe { glommio::net::TcpListener::from_raw_fd(listener.into_raw_fd()) }
}
