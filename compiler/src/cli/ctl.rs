//! `serc ctl`: the operator's command line for a running proxy, in the
//! spirit of `openserctl fifo …`. It sends one MI command through one of the
//! proxy's management doors and prints the reply:
//!
//! - the FIFO (`mi_fifo`, the default, at OpenSER's `/tmp/openser_fifo`):
//!   OpenSER 1.3's FIFO protocol as openserctl spoke it — a reply FIFO of
//!   our own in the reply directory, `:command:reply_fifo`, one argument
//!   per line and an empty line written to the server's FIFO, the reply read
//!   from ours until the server closes it, ours removed;
//! - the datagram socket (`mi_datagram`, `unix:PATH` or `udp:IP:PORT`): the
//!   request in one datagram, the reply in one datagram;
//! - the HTTP door (`http://127.0.0.1:PORT`): JSON-RPC 2.0 on `/rpc`.
//!
//! Whatever the door, the reply is printed as the text the FIFO gives
//! (`--format text`) or as the JSON rendering of the reply tree (`--format
//! json`, `serc_runtime::mi::MiReply::to_json`); replies read as text are
//! parsed back into a tree for that. Exit status: 0 for a 2xx reply, 1 for any
//! other MI code, 2 when no answer came (no proxy, a timeout, a refused
//! request).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use serc_runtime::mi::{MiNode, MiReply};
use serde_json::Value as Json;

use super::Status;

/// OpenSER's default `fifo_name`.
pub const DEFAULT_FIFO: &str = "/tmp/openser_fifo";
/// The largest reply read (an `ul_dump` of a big location table fits).
pub const MAX_REPLY: usize = 16 * 1024 * 1024;
/// 1.3's datagram buffer: the largest datagram reply.
const MAX_DATAGRAM: usize = 65_536;

const AFTER_HELP: &str = "\
Doors (the first given wins: flags, then SERC_CTL_HTTP, SERC_CTL_DATAGRAM, SERC_CTL_FIFO):
  --fifo /tmp/openser_fifo        the proxy's mi_fifo (modparam(\"mi_fifo\", \"fifo_name\", …)); the default.
                                  The reply comes back through a FIFO serc ctl creates in --reply-dir,
                                  which must be the proxy's reply_dir (default /tmp/).
  --datagram unix:/tmp/openser.sock   mi_datagram's socket_name (also udp:127.0.0.1:8080)
  --http http://127.0.0.1:8888    the built proxy's HTTP door (JSON-RPC 2.0 on /rpc)

Shortcuts:
  serc ctl stats [GROUP:|NAME…]   get_statistics (default: all)
  serc ctl ul show AOR            ul_show_contact location AOR
  serc ctl ul rm AOR              ul_rm location AOR
  serc ctl ul dump                ul_dump
Anything else is an MI command and its arguments, as OpenSER 1.3 names them (serc ctl which lists them).

Examples:
  serc ctl ps
  serc ctl uptime
  serc ctl --fifo /var/run/openser_fifo stats core:
  serc ctl stats tm:UAS_transactions usrloc:registered_users
  serc ctl ul show alice@example.com
  serc ctl --format json ul dump
  serc ctl --datagram udp:127.0.0.1:8080 debug 3
  SERC_CTL_HTTP=http://127.0.0.1:8888 serc ctl get_statistics all

Exit status: 0 a 2xx reply, 1 another MI reply (404 not found, 500 failed, an unknown command …),
2 no answer (no proxy serving the door, a timeout) or a request that cannot be sent.";

/// The output format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum CtlFormat {
    /// The reply as the FIFO writes it: `CODE REASON`, then one line per node
    #[default]
    Text,
    /// The reply tree as JSON: {"code", "reason", "nodes": [{"name", "value", "attributes", "children"}]}
    Json,
}

/// Send an MI command to a running proxy (over its FIFO, datagram socket or HTTP door)
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct CtlArgs {
    /// The proxy's MI FIFO [default: /tmp/openser_fifo; env: SERC_CTL_FIFO]
    #[arg(long, value_name = "PATH", conflicts_with_all = ["datagram", "http"])]
    pub fifo: Option<PathBuf>,
    /// The proxy's mi_datagram socket: unix:PATH or udp:IP:PORT [env: SERC_CTL_DATAGRAM]
    #[arg(long, value_name = "SOCKET", conflicts_with = "http")]
    pub datagram: Option<String>,
    /// The proxy's HTTP door: http://127.0.0.1:PORT [env: SERC_CTL_HTTP]
    #[arg(long, value_name = "URL")]
    pub http: Option<String>,
    /// How to print the reply
    #[arg(long, value_enum, default_value_t)]
    pub format: CtlFormat,
    /// Where to create the reply FIFO: the proxy's mi_fifo reply_dir
    #[arg(long, value_name = "DIR", default_value = "/tmp/")]
    pub reply_dir: PathBuf,
    /// How long to wait for the reply, in seconds
    #[arg(long, value_name = "SECONDS", default_value = "5", value_parser = parse_timeout)]
    pub timeout: Duration,
    /// The MI command (or a shortcut: stats, ul show|rm|dump) and its arguments
    #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs <= 3600.0 => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("{s:?} is not a number of seconds between 0 and 3600")),
    }
}

/// Where the request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Door {
    Fifo(PathBuf),
    Unix(PathBuf),
    Udp(String),
    Http(String),
}

impl Door {
    /// The door the flags name, else the environment's, else the default FIFO.
    fn choose(args: &CtlArgs, env: impl Fn(&str) -> Option<String>) -> Result<Door, String> {
        if let Some(f) = &args.fifo {
            return Ok(Door::Fifo(f.clone()));
        }
        if let Some(d) = &args.datagram {
            return Door::datagram(d);
        }
        if let Some(h) = &args.http {
            return Ok(Door::Http(h.clone()));
        }
        let set = |name: &str| env(name).filter(|v| !v.is_empty());
        if let Some(h) = set("SERC_CTL_HTTP") {
            return Ok(Door::Http(h));
        }
        if let Some(d) = set("SERC_CTL_DATAGRAM") {
            return Door::datagram(&d);
        }
        Ok(Door::Fifo(set("SERC_CTL_FIFO").map_or_else(|| PathBuf::from(DEFAULT_FIFO), PathBuf::from)))
    }

    fn datagram(s: &str) -> Result<Door, String> {
        if let Some(addr) = s.strip_prefix("udp:") {
            return Ok(Door::Udp(addr.to_string()));
        }
        let path = s.strip_prefix("unix:").unwrap_or(s);
        if path.is_empty() {
            return Err("--datagram: an empty socket path".to_string());
        }
        Ok(Door::Unix(PathBuf::from(path)))
    }
}

/// The MI command and arguments a command line means, shortcuts expanded.
pub fn expand(words: &[String]) -> Result<(String, Vec<String>), String> {
    let Some((first, rest)) = words.split_first() else { return Err("no command".to_string()) };
    let rest = rest.to_vec();
    let location = |aor: &[String], cmd: &str| match aor {
        [aor] => Ok((cmd.to_string(), vec!["location".to_string(), aor.clone()])),
        _ => Err(format!("`serc ctl ul {}` takes one AOR (user@domain)", if cmd == "ul_rm" { "rm" } else { "show" })),
    };
    match first.as_str() {
        "stats" if rest.is_empty() => Ok(("get_statistics".to_string(), vec!["all".to_string()])),
        "stats" => Ok(("get_statistics".to_string(), rest)),
        "ul" => match rest.split_first() {
            Some((sub, aor)) if sub == "show" => location(aor, "ul_show_contact"),
            Some((sub, aor)) if sub == "rm" => location(aor, "ul_rm"),
            Some((sub, more)) if sub == "dump" && more.is_empty() => Ok(("ul_dump".to_string(), vec![])),
            _ => Err("`serc ctl ul` takes show AOR, rm AOR or dump".to_string()),
        },
        _ => Ok((first.clone(), rest)),
    }
}

/// Why no reply could be had.
#[derive(Debug)]
pub struct Failure(pub String);

/// A reply as it came: the text (FIFO, datagram) or the tree (HTTP).
enum Answer {
    Text(String),
    Tree(MiReply),
}

pub fn run(args: &CtlArgs) -> Status {
    match ask(args) {
        Ok((reply, text)) => {
            let out = match args.format {
                CtlFormat::Text => text,
                CtlFormat::Json => {
                    let mut s = serde_json::to_string_pretty(&reply.to_json()).unwrap_or_default();
                    s.push('\n');
                    s
                }
            };
            // Nothing useful can be done when standard output is gone.
            let _ = io::stdout().lock().write_all(out.as_bytes());
            if reply.is_ok() {
                Status::Ok
            } else {
                Status::Errors
            }
        }
        Err(Failure(message)) => {
            eprintln!("error: {message}");
            Status::Failure
        }
    }
}

/// Sends the command; the reply as a tree and as text.
fn ask(args: &CtlArgs) -> Result<(MiReply, String), Failure> {
    let door = Door::choose(args, |name| std::env::var(name).ok()).map_err(Failure)?;
    let (command, argv) = expand(&args.command).map_err(Failure)?;
    if command.is_empty() || command.contains([':', '\n', '\r', ' ']) {
        return Err(Failure(format!("{command:?} is not an MI command name")));
    }
    let answer = match &door {
        Door::Fifo(path) => fifo(path, &args.reply_dir, &command, &argv, args.timeout),
        Door::Unix(path) => unix_datagram(path, &args.reply_dir, &command, &argv, args.timeout),
        Door::Udp(addr) => udp(addr, &command, &argv, args.timeout),
        Door::Http(url) => http(url, &command, &argv, args.timeout),
    }?;
    match answer {
        Answer::Text(text) => {
            let reply = parse_reply(&text)
                .ok_or_else(|| Failure(format!("the proxy answered something that is not an MI reply: {text:?}")))?;
            let mut text = text.trim_end_matches('\n').to_string();
            text.push('\n');
            Ok((reply, text))
        }
        Answer::Tree(reply) => {
            let text = String::from_utf8_lossy(&serc_runtime::mi::text::write_reply(&reply, "\t", false)).into_owned();
            Ok((reply, text))
        }
    }
}

/// The argument lines of a request in the text format, quoting what would
/// not read back as itself.
fn request_lines(args: &[String]) -> Result<String, Failure> {
    let mut out = String::new();
    for a in args {
        let plain = !a.is_empty()
            && a.trim() == a
            && !a.contains(['"', '\n', '\r'])
            && !a.contains("::")
            && !a.starts_with(char::is_whitespace);
        if plain {
            out.push_str(a);
        } else {
            if a.split('\n').any(|l| l.trim().is_empty()) && a.contains('\n') {
                return Err(Failure(format!("the argument {a:?} has an empty line, which would end the request")));
            }
            if a.ends_with('\\') {
                return Err(Failure(format!("the argument {a:?} ends with a backslash, which would escape its quote")));
            }
            out.push('"');
            out.push_str(&a.replace('"', "\\\""));
            out.push('"');
        }
        out.push('\n');
    }
    Ok(out)
}

/// A file name no other `serc ctl` uses at the same time.
fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
    format!("{prefix}_{}_{nanos}_{}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Removes a file when dropped (the reply FIFO, the client socket).
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(unix)]
fn fifo(server: &Path, reply_dir: &Path, command: &str, args: &[String], timeout: Duration) -> Result<Answer, Failure> {
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
    use std::os::unix::io::AsRawFd;

    let shown = server.display();
    match std::fs::metadata(server) {
        Ok(m) if m.file_type().is_fifo() => {}
        Ok(_) => return Err(Failure(format!("{shown} is not a FIFO"))),
        Err(e) => {
            return Err(Failure(format!(
                "cannot use the FIFO {shown}: {e} (is the proxy running with mi_fifo's fifo_name there? \
                 --fifo, --datagram or --http name another door)"
            )))
        }
    }
    let name = unique_name("serc_ctl_reply");
    if name.len() + reply_dir.as_os_str().len() + 2 > serc_runtime::mi::text::MAX_REPLY_PATH {
        return Err(Failure(format!("the reply directory {} is too long for OpenSER's FIFO", reply_dir.display())));
    }
    let path = reply_dir.join(&name);
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Failure("a NUL in the reply directory".to_string()))?;
    // SAFETY: `c` is a valid NUL-terminated path that outlives the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        let e = io::Error::last_os_error();
        return Err(Failure(format!("cannot create the reply FIFO {}: {e}", path.display())));
    }
    let _remove = RemoveOnDrop(path.clone());
    // The proxy may run as another user: it only needs to write (as
    // openserctl's `chmod a+w`).
    let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o622));
    // Opened before the request is sent, so that the server finds a reader.
    let mut reply = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .map_err(|e| Failure(format!("cannot open the reply FIFO {}: {e}", path.display())))?;
    let request = format!(":{command}:{name}\n{}\n", request_lines(args)?);
    serc_runtime::mi::fifo::send_request(server, request.as_bytes()).map_err(|e| {
        if e.raw_os_error() == Some(libc::ENXIO) {
            Failure(format!("nobody reads the FIFO {shown}: is the proxy running?"))
        } else {
            Failure(format!("cannot write to the FIFO {shown}: {e}"))
        }
    })?;
    // Read until the server closes its end. Until a writer has opened it,
    // poll reports nothing on our FIFO (no POLLHUP), so a server that never
    // answers is a timeout, not an empty reply.
    let deadline = Instant::now() + timeout;
    let mut text = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure(format!(
                "no reply through {} within {:.1} s (is the proxy's reply_dir {}?)",
                path.display(),
                timeout.as_secs_f64(),
                reply_dir.display()
            )));
        }
        let mut pfd = libc::pollfd { fd: reply.as_raw_fd(), events: libc::POLLIN, revents: 0 };
        let ms = libc::c_int::try_from(left.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one valid pollfd for the duration of the call.
        let r = unsafe { libc::poll(&mut pfd, 1, ms) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(Failure(format!("poll: {e}")));
        }
        if r == 0 {
            continue;
        }
        match reply.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                text.extend_from_slice(&buf[..n]);
                if text.len() > MAX_REPLY {
                    return Err(Failure(format!("the reply is longer than {MAX_REPLY} bytes")));
                }
            }
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {}
            Err(e) => return Err(Failure(format!("reading the reply: {e}"))),
        }
    }
    Ok(Answer::Text(String::from_utf8_lossy(&text).into_owned()))
}

#[cfg(not(unix))]
fn fifo(_: &Path, _: &Path, _: &str, _: &[String], _: Duration) -> Result<Answer, Failure> {
    Err(Failure("the FIFO door needs a Unix system: use --http".to_string()))
}

#[cfg(unix)]
fn unix_datagram(
    server: &Path,
    reply_dir: &Path,
    command: &str,
    args: &[String],
    timeout: Duration,
) -> Result<Answer, Failure> {
    use std::os::unix::net::UnixDatagram;
    let path = reply_dir.join(unique_name("serc_ctl_sock"));
    let sock = UnixDatagram::bind(&path)
        .map_err(|e| Failure(format!("cannot create the reply socket {}: {e}", path.display())))?;
    let _remove = RemoveOnDrop(path);
    let request = format!(":{command}:\n{}\n", request_lines(args)?);
    sock.send_to(request.as_bytes(), server).map_err(|e| {
        Failure(format!("cannot send to unix:{}: {e} (is the proxy running with mi_datagram there?)", server.display()))
    })?;
    sock.set_read_timeout(Some(timeout)).map_err(|e| Failure(e.to_string()))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = sock.recv(&mut buf).map_err(|e| no_reply(&format!("unix:{}", server.display()), &e, timeout))?;
    Ok(Answer::Text(String::from_utf8_lossy(&buf[..n]).into_owned()))
}

#[cfg(not(unix))]
fn unix_datagram(_: &Path, _: &Path, _: &str, _: &[String], _: Duration) -> Result<Answer, Failure> {
    Err(Failure("Unix sockets need a Unix system: use --datagram udp:IP:PORT or --http".to_string()))
}

fn no_reply(door: &str, e: &io::Error, timeout: Duration) -> Failure {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            Failure(format!("no reply from {door} within {:.1} s", timeout.as_secs_f64()))
        }
        io::ErrorKind::ConnectionRefused => Failure(format!("nobody listens at {door}: is the proxy running?")),
        _ => Failure(format!("no reply from {door}: {e}")),
    }
}

fn resolve(addr: &str) -> Result<SocketAddr, Failure> {
    addr.to_socket_addrs()
        .map_err(|e| Failure(format!("{addr}: {e}")))?
        .next()
        .ok_or_else(|| Failure(format!("{addr} has no address")))
}

fn udp(addr: &str, command: &str, args: &[String], timeout: Duration) -> Result<Answer, Failure> {
    let server = resolve(addr)?;
    let local: SocketAddr = if server.is_ipv4() { ([0, 0, 0, 0], 0).into() } else { ([0u16; 8], 0).into() };
    let sock = UdpSocket::bind(local).map_err(|e| Failure(format!("cannot bind a UDP socket: {e}")))?;
    let door = format!("udp:{server}");
    sock.connect(server).map_err(|e| Failure(format!("{door}: {e}")))?;
    let request = format!(":{command}:\n{}\n", request_lines(args)?);
    sock.send(request.as_bytes()).map_err(|e| no_reply(&door, &e, timeout))?;
    sock.set_read_timeout(Some(timeout)).map_err(|e| Failure(e.to_string()))?;
    let mut buf = vec![0u8; MAX_DATAGRAM];
    let n = sock.recv(&mut buf).map_err(|e| no_reply(&door, &e, timeout))?;
    Ok(Answer::Text(String::from_utf8_lossy(&buf[..n]).into_owned()))
}

/// JSON-RPC 2.0 over HTTP/1.1 (`http://HOST:PORT[/PATH]`, `/rpc` by default).
fn http(url: &str, command: &str, args: &[String], timeout: Duration) -> Result<Answer, Failure> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Failure(format!("{url:?}: the HTTP door is http://HOST:PORT (no TLS: it is a local door)")))?;
    let (authority, path) = match rest.find('/') {
        Some(i) if i + 1 < rest.len() => (&rest[..i], &rest[i..]),
        Some(i) => (&rest[..i], "/rpc"),
        None => (rest, "/rpc"),
    };
    let addr = resolve(authority)?;
    let deadline = Instant::now() + timeout;
    let mut s = TcpStream::connect_timeout(&addr, timeout).map_err(|e| no_reply(url, &e, timeout))?;
    let body = serde_json::json!({ "jsonrpc": "2.0", "method": command, "params": args, "id": 1 }).to_string();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/json\r\nAccept: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = s.set_write_timeout(Some(timeout));
    s.write_all(head.as_bytes()).and_then(|()| s.write_all(body.as_bytes())).map_err(|e| no_reply(url, &e, timeout))?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure(format!("no reply from {url} within {:.1} s", timeout.as_secs_f64())));
        }
        let _ = s.set_read_timeout(Some(left));
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) if raw.len() + n > MAX_REPLY => {
                return Err(Failure(format!("the reply is longer than {MAX_REPLY} bytes")))
            }
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(no_reply(url, &e, timeout)),
        }
    }
    let (status, body) = http_response(&raw).ok_or_else(|| Failure(format!("{url} did not answer in HTTP")))?;
    if status != 200 {
        let first = String::from_utf8_lossy(&body).lines().next().unwrap_or_default().to_string();
        return Err(Failure(format!("{url} answered HTTP {status}: {first}")));
    }
    let json: Json = serde_json::from_slice(&body).map_err(|e| Failure(format!("{url} answered bad JSON: {e}")))?;
    rpc_reply(&json, command).map(Answer::Tree)
}

/// The status and body of an HTTP/1.1 response (Content-Length, chunked or
/// up to the end).
fn http_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let status = head.strip_prefix("HTTP/1.")?.get(2..5)?.parse().ok()?;
    let body = &raw[end + 4..];
    let chunked = head.lines().any(|l| {
        l.split_once(':').is_some_and(|(n, v)| {
            n.trim().eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
        })
    });
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

/// The MI reply in a JSON-RPC response: the `result`, or the `data` of an
/// MI error; JSON-RPC's own errors as the FIFO would word them.
fn rpc_reply(json: &Json, command: &str) -> Result<MiReply, Failure> {
    if let Some(result) = json.get("result") {
        return reply_from_json(result).ok_or_else(|| Failure(format!("not an MI reply: {result}")));
    }
    let Some(error) = json.get("error") else { return Err(Failure(format!("not a JSON-RPC response: {json}"))) };
    if let Some(reply) = error.get("data").and_then(reply_from_json) {
        return Ok(reply);
    }
    let code = error.get("code").and_then(Json::as_i64).unwrap_or(0);
    let message = error.get("message").and_then(Json::as_str).unwrap_or("");
    match code {
        -32601 => Ok(MiReply::new(500, format!("command '{command}' not available"))),
        300..=999 => Ok(MiReply::new(code as u32, message)),
        _ => Err(Failure(format!("the proxy refused the request: {message} ({code})"))),
    }
}

/// An [`MiReply`] from its JSON rendering.
pub fn reply_from_json(j: &Json) -> Option<MiReply> {
    let code = u32::try_from(j.get("code")?.as_u64()?).ok()?;
    let reason = j.get("reason")?.as_str()?.to_string();
    let nodes =
        j.get("nodes").and_then(Json::as_array).map_or_else(Vec::new, |n| n.iter().map(node_from_json).collect());
    Some(MiReply { code, reason, nodes })
}

fn node_from_json(j: &Json) -> MiNode {
    let text = |j: &Json, key: &str| j.get(key).and_then(Json::as_str).map(str::to_string);
    MiNode {
        name: text(j, "name"),
        value: text(j, "value"),
        attributes: j
            .get("attributes")
            .and_then(Json::as_array)
            .map_or_else(Vec::new, |a| a.iter().map(|a| (text(a, "name"), text(a, "value"))).collect()),
        children: j
            .get("children")
            .and_then(Json::as_array)
            .map_or_else(Vec::new, |c| c.iter().map(node_from_json).collect()),
    }
}

/// A reply in the text format read back into a tree: `CODE REASON`, then a
/// node per line, a tab per level of depth. A node without a value has its
/// attributes right after `name:: `, each as ` key=value`
/// (`Process::  ID=0 PID=42`); after a value, attributes cannot be told
/// from it and are read as part of the value.
pub fn parse_reply(text: &str) -> Option<MiReply> {
    let mut lines = text.lines();
    let first = lines.next()?;
    let (code, reason) = first.split_once(' ').unwrap_or((first, ""));
    let code = code.trim().parse::<u32>().ok().filter(|c| (100..1000).contains(c))?;
    let mut reply = MiReply::new(code, reason.trim_end());
    // The nodes read so far, as a path of indexes from the top.
    let mut path: Vec<usize> = Vec::new();
    for line in lines {
        if line.is_empty() {
            continue;
        }
        let depth = line.bytes().take_while(|b| *b == b'\t').count();
        let node = node_from_line(&line[depth..]);
        let depth = depth.min(path.len());
        path.truncate(depth);
        let siblings = children_at(&mut reply.nodes, &path);
        siblings.push(node);
        path.push(siblings.len() - 1);
    }
    Some(reply)
}

fn children_at<'a>(nodes: &'a mut Vec<MiNode>, path: &[usize]) -> &'a mut Vec<MiNode> {
    match path.split_first() {
        // The path only holds indexes of nodes pushed before.
        Some((i, rest)) if *i < nodes.len() => children_at(&mut nodes[*i].children, rest),
        _ => nodes,
    }
}

fn node_from_line(line: &str) -> MiNode {
    let (name, rest) = match line.split_once(":: ") {
        Some((n, r)) => (Some(n.to_string()), r),
        None => (None, line),
    };
    // No value: each attribute is written ` key=value` right after `name:: `.
    if let Some(attrs) = rest.strip_prefix(' ') {
        let attributes: Option<Vec<_>> = attrs
            .split(' ')
            .map(|w| w.split_once('=').map(|(k, v)| (Some(k.to_string()), Some(v.to_string()))))
            .collect();
        if let Some(attributes) = attributes {
            return MiNode { name, value: None, attributes, children: Vec::new() };
        }
    }
    MiNode { name, value: (!rest.is_empty()).then(|| rest.to_string()), ..MiNode::default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn shortcuts() {
        assert_eq!(expand(&words("stats")), Ok(("get_statistics".into(), words("all"))));
        assert_eq!(expand(&words("stats core: tm:")), Ok(("get_statistics".into(), words("core: tm:"))));
        assert_eq!(expand(&words("ul show a@b")), Ok(("ul_show_contact".into(), words("location a@b"))));
        assert_eq!(expand(&words("ul rm a@b")), Ok(("ul_rm".into(), words("location a@b"))));
        assert_eq!(expand(&words("ul dump")), Ok(("ul_dump".into(), vec![])));
        assert!(expand(&words("ul show")).is_err());
        assert!(expand(&words("ul")).is_err());
        assert_eq!(expand(&words("ps")), Ok(("ps".into(), vec![])));
    }

    #[test]
    fn arguments_are_quoted_when_needed() {
        let args = vec!["all".to_string(), "a::b".into(), "".into(), " x".into(), "say \"hi\"".into()];
        assert_eq!(request_lines(&args).unwrap(), "all\n\"a::b\"\n\"\"\n\" x\"\n\"say \\\"hi\\\"\"\n");
        assert!(request_lines(&["a\n\nb".to_string()]).is_err());
    }

    #[test]
    fn text_replies_read_back() {
        let tree = MiReply::ok()
            .node(MiNode::new("Up since", "Thu Nov 26 22:00:00 2026"))
            .node(MiNode::named("Process").attr("ID", "0").attr("PID", "42"))
            .node(MiNode::new("AOR", "alice").child(MiNode::new("Contact", "<sip:a@h>;q=").child(MiNode::value("x"))));
        let text = String::from_utf8(serc_runtime::mi::text::write_reply(&tree, "\t", true)).unwrap();
        assert_eq!(parse_reply(&text), Some(tree.clone()));
        assert_eq!(reply_from_json(&tree.to_json()), Some(tree));
        assert_eq!(parse_reply("404 AOR not found\n"), Some(MiReply::new(404, "AOR not found")));
        assert_eq!(parse_reply("junk"), None);
    }

    #[test]
    fn doors() {
        let args = |extra: &[&str]| {
            use clap::Parser;
            #[derive(Parser)]
            struct T {
                #[command(flatten)]
                a: CtlArgs,
            }
            let mut v = vec!["t"];
            v.extend_from_slice(extra);
            T::parse_from(v).a
        };
        let none = |_: &str| None;
        assert_eq!(Door::choose(&args(&["ps"]), none), Ok(Door::Fifo(DEFAULT_FIFO.into())));
        let env = |n: &str| (n == "SERC_CTL_HTTP").then(|| "http://127.0.0.1:1".to_string());
        assert_eq!(Door::choose(&args(&["ps"]), env), Ok(Door::Http("http://127.0.0.1:1".into())));
        assert_eq!(Door::choose(&args(&["--fifo", "/f", "ps"]), env), Ok(Door::Fifo("/f".into())));
        assert_eq!(Door::choose(&args(&["--datagram", "/s", "ps"]), none), Ok(Door::Unix("/s".into())));
        assert_eq!(
            Door::choose(&args(&["--datagram", "udp:1.2.3.4:5", "ps"]), none),
            Ok(Door::Udp("1.2.3.4:5".into()))
        );
        assert_eq!(http_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"), Some((200, b"hi".to_vec())));
        assert_eq!(
            http_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n1\r\n!\r\n0\r\n\r\n"),
            Some((200, b"hi!".to_vec()))
        );
    }
}
