//! `mi_datagram`: MI commands over a datagram socket, as OpenSER 1.3's
//! `mi_datagram` module serves them.
//!
//! `socket_name` (required) is a Unix datagram socket path, or `udp:HOST:PORT`.
//! A Unix socket file left by an earlier run is replaced (1.3 deleted what was
//! there; serc only replaces a socket or a FIFO); the socket gets
//! `unix_socket_mode` (default 0660; 0 is taken as 0600 with a warning) and
//! `unix_socket_user`/`unix_socket_group` when set. A UDP socket listens on a
//! loopback address only: whoever reaches it can run every command, `kill`
//! included, with no authentication, so another address stops the start with
//! an error saying so (1.3 listened on any; reach a remote proxy's MI through
//! SSH or its Unix socket).
//!
//! A request is one datagram: `:command:\n`, one argument per line, an
//! optional empty line (see [`super::text`]). The reply goes back to the
//! sender's address in one datagram: the reply text without the final empty
//! line (1.3's datagram writer leaves it out). The error replies are 1.3's:
//! `500 command not available` (also for a malformed first line), `400 parse
//! error in command`, `500 command failed`. A datagram longer than 1.3's
//! buffer ([`MAX_DATAGRAM`], 65457 bytes) is refused with `400 request too
//! long` (1.3 silently truncated it); a reply that would be longer is logged
//! and answered `500 command failed` (1.3 sent nothing). Replies are sent
//! within `socket_timeout` milliseconds (default 2000) or dropped; a Unix
//! client without a bound address cannot be answered (logged). Requests run in
//! their own tasks, at most 16 at once; the socket's task never blocks.
//! `children_count` is ignored (tasks, not processes).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{UdpSocket, UnixDatagram};
use tokio::sync::{watch, Semaphore};

use super::fifo::{apply_mode_owner, owner, parse_mode, remove_stale};
use super::text;
use super::{Mi, Outcome, Transport, MAX_IN_FLIGHT};
use crate::script::{Config, Value};

/// 1.3's `DATAGRAM_SOCK_BUF_SIZE`: the largest request and reply.
pub const MAX_DATAGRAM: usize = 65457;

/// Where the socket listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocketName {
    Unix(PathBuf),
    /// `udp:HOST:PORT`, the host not yet resolved.
    Udp {
        host: String,
        port: u16,
    },
}

impl SocketName {
    /// Reads `socket_name`: `udp:HOST:PORT` (an IPv6 address in brackets) or a
    /// path (1.3's form), also written `unix:PATH` (as `serc ctl` names it).
    pub fn parse(s: &str) -> Result<SocketName, String> {
        let Some(rest) = s.strip_prefix("udp:") else {
            let path = s.strip_prefix("unix:").unwrap_or(s);
            if path.is_empty() {
                return Err("empty socket_name".to_string());
            }
            return Ok(SocketName::Unix(PathBuf::from(path)));
        };
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| format!("no port in {s:?}"))?;
        let port = port.parse::<u16>().map_err(|_| format!("bad port in {s:?}"))?;
        let host = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        if host.is_empty() {
            return Err(format!("no host in {s:?}"));
        }
        Ok(SocketName::Udp { host: host.to_string(), port })
    }
}

/// What the datagram server is configured with.
#[derive(Clone, Debug)]
pub struct DatagramOptions {
    pub socket: SocketName,
    pub mode: u32,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub reply_indent: String,
    pub timeout: Duration,
}

impl DatagramOptions {
    /// Reads mi_datagram's modparams.
    pub fn from_config(config: &Config) -> Result<DatagramOptions, String> {
        let p = &config.params;
        let socket = match p.get("mi_datagram", "socket_name") {
            Value::Str(s) => SocketName::parse(&s).map_err(|e| format!("mi_datagram: {e}"))?,
            _ => return Err("mi_datagram: no socket_name configured".to_string()),
        };
        let mut mode = match p.get("mi_datagram", "unix_socket_mode") {
            Value::Int(m) => u32::try_from(m).map_err(|_| format!("mi_datagram: bad unix_socket_mode {m}"))?,
            Value::Str(s) => parse_mode(&s).ok_or_else(|| format!("mi_datagram: bad unix_socket_mode {s:?}"))?,
            Value::Null => 0o660,
        };
        if mode == 0 {
            tracing::warn!("mi_datagram: unix_socket_mode 0 is not allowed, using rw------- (0600)");
            mode = 0o600;
        }
        let uid = owner(p.get("mi_datagram", "unix_socket_user"), "/etc/passwd")
            .map_err(|e| format!("mi_datagram: unix_socket_user: {e}"))?;
        let gid = owner(p.get("mi_datagram", "unix_socket_group"), "/etc/group")
            .map_err(|e| format!("mi_datagram: unix_socket_group: {e}"))?;
        let reply_indent = match p.get("mi_datagram", "reply_indent") {
            Value::Str(s) => s,
            _ => "\t".to_string(),
        };
        let ms = match p.get("mi_datagram", "socket_timeout") {
            Value::Int(n) if n > 0 => n as u64,
            _ => 2000,
        };
        Ok(DatagramOptions { socket, mode, uid, gid, reply_indent, timeout: Duration::from_millis(ms) })
    }
}

/// Starts the datagram server when the config loads `mi_datagram`.
pub async fn start(config: &Config, mi: &Mi) -> Result<Option<Transport>, String> {
    if !config.params.is_loaded("mi_datagram") {
        return Ok(None);
    }
    let opts = DatagramOptions::from_config(config)?;
    serve(opts, mi).await.map(Some)
}

/// The socket, either kind.
enum Sock {
    Udp(UdpSocket),
    Unix(UnixDatagram, PathBuf),
}

/// Where a request came from.
enum Peer {
    Udp(SocketAddr),
    Unix(Option<PathBuf>),
}

impl Sock {
    async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Peer)> {
        match self {
            Sock::Udp(s) => s.recv_from(buf).await.map(|(n, a)| (n, Peer::Udp(a))),
            Sock::Unix(s, _) => {
                s.recv_from(buf).await.map(|(n, a)| (n, Peer::Unix(a.as_pathname().map(PathBuf::from))))
            }
        }
    }

    async fn send(&self, bytes: &[u8], to: &Peer) -> io::Result<usize> {
        match (self, to) {
            (Sock::Udp(s), Peer::Udp(a)) => s.send_to(bytes, a).await,
            (Sock::Unix(s, _), Peer::Unix(Some(p))) => s.send_to(bytes, p).await,
            _ => Err(io::Error::new(io::ErrorKind::AddrNotAvailable, "the client has no address to answer")),
        }
    }
}

/// Binds the socket and starts serving it.
pub async fn serve(opts: DatagramOptions, mi: &Mi) -> Result<Transport, String> {
    let (sock, name) = match &opts.socket {
        SocketName::Unix(path) => {
            remove_stale(path).map_err(|e| format!("mi_datagram: {e}"))?;
            let s =
                UnixDatagram::bind(path).map_err(|e| format!("mi_datagram: cannot bind {}: {e}", path.display()))?;
            apply_mode_owner(path, opts.mode, opts.uid, opts.gid).map_err(|e| format!("mi_datagram: {e}"))?;
            (Sock::Unix(s, path.clone()), format!("unix:{}", path.display()))
        }
        SocketName::Udp { host, port } => {
            let ip: IpAddr = match host.parse() {
                Ok(ip) => ip,
                Err(_) => tokio::net::lookup_host((host.as_str(), *port))
                    .await
                    .map_err(|e| format!("mi_datagram: cannot resolve {host}: {e}"))?
                    .next()
                    .map(|a| a.ip())
                    .ok_or_else(|| format!("mi_datagram: {host} has no address"))?,
            };
            if !ip.is_loopback() {
                return Err(format!(
                    "mi_datagram: socket_name udp:{host}:{port} is not a loopback address: whoever reaches it \
                     could run every MI command (kill included) without authentication; listen on 127.0.0.1 \
                     (or a Unix socket) and reach it through SSH"
                ));
            }
            let s = UdpSocket::bind(SocketAddr::new(ip, *port))
                .await
                .map_err(|e| format!("mi_datagram: cannot bind udp:{ip}:{port}: {e}"))?;
            let bound = s.local_addr().map_err(|e| format!("mi_datagram: {e}"))?;
            (Sock::Udp(s), format!("udp:{bound}"))
        }
    };
    let (stop_tx, mut stop) = watch::channel(false);
    let sock = Arc::new(sock);
    let opts = Arc::new(opts);
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let server_mi = mi.clone();
    let task = tokio::spawn(async move {
        // One byte more than the limit, to tell a datagram that is too long.
        let mut buf = vec![0u8; MAX_DATAGRAM + 1];
        loop {
            let received = tokio::select! {
                _ = stop.changed() => break,
                r = sock.recv(&mut buf) => r,
            };
            let (n, peer) = match received {
                Ok(r) => r,
                Err(e) => {
                    // ICMP errors of earlier replies and the like: go on.
                    tracing::debug!("mi_datagram: receive: {e}");
                    continue;
                }
            };
            if n == 0 {
                continue;
            }
            let permit = tokio::select! {
                _ = stop.changed() => break,
                p = permits.clone().acquire_owned() => p,
            };
            let Ok(permit) = permit else { break };
            let request = buf[..n].to_vec();
            let (mi, opts, sock) = (server_mi.clone(), opts.clone(), sock.clone());
            tokio::spawn(async move {
                let reply = answer(&mi, &opts, &request).await;
                match tokio::time::timeout(opts.timeout, sock.send(&reply, &peer)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!("mi_datagram: cannot send the reply: {e}"),
                    Err(_) => tracing::warn!("mi_datagram: the reply could not be sent in time: dropped"),
                }
                drop(permit);
            });
        }
        if let Sock::Unix(_, path) = &*sock {
            if let Ok(m) = std::fs::symlink_metadata(path) {
                if std::os::unix::fs::FileTypeExt::is_socket(&m.file_type()) {
                    let _ = std::fs::remove_file(path);
                }
            }
        }
    });
    mi.add_process("MI Datagram");
    mi.add_endpoint(name.clone());
    tracing::info!("mi_datagram: serving {name}");
    Ok(Transport::new(name, stop_tx, task))
}

/// The reply datagram to `request`.
pub async fn answer(mi: &Mi, opts: &DatagramOptions, request: &[u8]) -> Vec<u8> {
    const NOT_AVAILABLE: &[u8] = b"500 command not available\n";
    const PARSE_ERROR: &[u8] = b"400 parse error in command\n";
    const FAILED: &[u8] = b"500 command failed\n";
    if request.len() > MAX_DATAGRAM {
        tracing::warn!("mi_datagram: a request longer than {MAX_DATAGRAM} bytes: refused");
        return b"400 request too long\n".to_vec();
    }
    let Some((command, lines)) = text::parse_datagram(request) else {
        tracing::warn!("mi_datagram: a malformed request line");
        return NOT_AVAILABLE.to_vec();
    };
    if !mi.has(&command) {
        tracing::warn!("mi_datagram: command {command:?} is not available");
        return NOT_AVAILABLE.to_vec();
    }
    let values = if mi.ignores_input(&command) {
        Vec::new()
    } else {
        match text::parse_args(&lines) {
            Ok(nodes) => nodes.into_iter().map(|n| n.value.unwrap_or_default()).collect(),
            Err(e) => {
                tracing::warn!("mi_datagram: command {command:?}: {e}");
                return PARSE_ERROR.to_vec();
            }
        }
    };
    match mi.dispatch(&command, values).await {
        Outcome::Reply(r) => {
            let bytes = text::write_reply(&r, &opts.reply_indent, false);
            if bytes.len() > MAX_DATAGRAM {
                tracing::error!("mi_datagram: the reply to {command:?} is longer than {MAX_DATAGRAM} bytes");
                return FAILED.to_vec();
            }
            bytes
        }
        Outcome::NotAvailable => NOT_AVAILABLE.to_vec(),
        Outcome::Failed => {
            tracing::error!("mi_datagram: command {command:?} failed");
            FAILED.to_vec()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts() -> DatagramOptions {
        DatagramOptions {
            socket: SocketName::Unix(PathBuf::from("/nonexistent")),
            mode: 0o600,
            uid: None,
            gid: None,
            reply_indent: "\t".to_string(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn socket_names() {
        assert_eq!(SocketName::parse("/tmp/s"), Ok(SocketName::Unix("/tmp/s".into())));
        assert_eq!(SocketName::parse("unix:/tmp/s"), Ok(SocketName::Unix("/tmp/s".into())));
        assert!(SocketName::parse("unix:").is_err());
        assert_eq!(
            SocketName::parse("udp:127.0.0.1:8080"),
            Ok(SocketName::Udp { host: "127.0.0.1".into(), port: 8080 })
        );
        assert_eq!(SocketName::parse("udp:[::1]:0"), Ok(SocketName::Udp { host: "::1".into(), port: 0 }));
        assert!(SocketName::parse("udp:127.0.0.1").is_err());
        assert!(SocketName::parse("udp::80").is_err());
        assert!(SocketName::parse("udp:h:99999").is_err());
        assert!(SocketName::parse("").is_err());
    }

    #[test]
    fn replies_as_1_3_sends_them() {
        let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        let mi = Mi::new();
        mi.register("echo", super::super::Arity::AtLeast(0), |args| {
            args.into_iter().fold(super::super::MiReply::ok(), |r, a| r.node(super::super::MiNode::value(a)))
        });
        rt.block_on(async {
            let o = opts();
            assert_eq!(answer(&mi, &o, b":echo:\na\n \"b c\"\n\n").await, b"200 OK\na\nb c\n");
            assert_eq!(answer(&mi, &o, b":echo:\n").await, b"200 OK\n");
            assert_eq!(answer(&mi, &o, b":nope:\n").await, b"500 command not available\n");
            assert_eq!(answer(&mi, &o, b"garbage").await, b"500 command not available\n");
            assert_eq!(answer(&mi, &o, b":echo:\na\"b\n").await, b"400 parse error in command\n");
            assert_eq!(answer(&mi, &o, b":get_statistics:\n").await, b"400 Too few or too many arguments\n");
            assert_eq!(answer(&mi, &o, &vec![b'x'; MAX_DATAGRAM + 1]).await, b"400 request too long\n");
            let stats = answer(&mi, &o, b":get_statistics:\nrcv_requests\n").await;
            assert_eq!(stats, b"200 OK\ncore:rcv_requests = 0\n");
        });
    }
}
