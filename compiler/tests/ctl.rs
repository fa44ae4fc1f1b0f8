//! `serc ctl` against real MI servers: the runtime's `mi_fifo`,
//! `mi_datagram` (Unix and UDP) and HTTP doors, started in this process on
//! an `Mi` with usrloc-like commands; the `serc` binary run as an operator
//! would. Outputs and exit statuses, shortcuts, `--format json`, and the
//! errors when nobody answers.

mod common;

use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{Run, TempDir};
use serc_runtime::mi::datagram::{self, DatagramOptions, SocketName};
use serc_runtime::mi::fifo::{self, FifoOptions};
use serc_runtime::mi::{http, Arity, Mi, MiNode, MiReply, Transport};
use serde_json::Value as Json;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap()
}

/// An `Mi` with moved counters and stand-ins for usrloc's commands that
/// answer for alice@example.com in the `location` table only.
fn mi() -> Mi {
    let mi = Mi::new();
    mi.stats().counter("core", "rcv_requests").add(7);
    mi.register("ul_show_contact", Arity::Exactly(2), |args| {
        if args == ["location", "alice@example.com"] {
            MiReply::ok().node(
                MiNode::new("AOR", "alice@example.com")
                    .child(MiNode::new("Contact", "<sip:alice@192.0.2.1:5060>;q=;expires=3600")),
            )
        } else {
            MiReply::new(404, "AOR not found")
        }
    });
    mi.register("ul_rm", Arity::Exactly(2), |args| {
        if args == ["location", "alice@example.com"] {
            MiReply::ok()
        } else {
            MiReply::new(404, "AOR not found")
        }
    });
    mi.register("ul_dump", Arity::NoInput, |_| {
        MiReply::ok().node(MiNode::named("Domain").attr("name", "location").attr("table", "512"))
    });
    mi
}

fn ctl(dir: &Path, door: &[&str], args: &[&str]) -> Run {
    let mut all = vec!["ctl", "--timeout", "2"];
    all.extend_from_slice(door);
    all.extend_from_slice(args);
    common::serc(dir, &[], &all)
}

/// The runs every door must answer the same way.
fn common_runs(dir: &Path, door: &[&str]) {
    let run = ctl(dir, door, &["uptime"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.starts_with("200 OK\n"), "{}", run.stdout);
    assert!(run.stdout.contains("Up since:: "), "{}", run.stdout);

    let run = ctl(dir, door, &["stats"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("core:rcv_requests = 7\n"), "{}", run.stdout);
    let run = ctl(dir, door, &["stats", "rcv_requests", "core:drop_requests"]);
    assert_eq!(run.stdout, "200 OK\ncore:rcv_requests = 7\ncore:drop_requests = 0\n", "{}", run.stderr);

    let run = ctl(dir, door, &["ul", "show", "alice@example.com"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "200 OK\nAOR:: alice@example.com\n\tContact:: <sip:alice@192.0.2.1:5060>;q=;expires=3600\n");
    let run = ctl(dir, door, &["ul", "rm", "bob@example.com"]);
    assert_eq!(run.code, Some(1), "not 2xx: {}", run.stderr);
    assert_eq!(run.stdout, "404 AOR not found\n");
    let run = ctl(dir, door, &["ul", "rm", "alice@example.com"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(0), "200 OK\n"));

    let run = ctl(dir, door, &["--format", "json", "ul", "dump"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let j: Json = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(
        j,
        serde_json::json!({"code": 200, "reason": "OK", "nodes": [{"name": "Domain", "attributes": [
            {"name": "name", "value": "location"}, {"name": "table", "value": "512"}]}]})
    );
    let run = ctl(dir, door, &["--format", "json", "ul", "show", "carol@example.com"]);
    assert_eq!(run.code, Some(1));
    let j: Json = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(j["code"], 404);

    // Arguments that need quoting in the text format arrive intact.
    let run = ctl(dir, door, &["ul_show_contact", "location", "alice@example.com"]);
    assert_eq!(run.code, Some(0), "{}", run.stdout);
    let run = ctl(dir, door, &["get_statistics"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(1), "400 Too few or too many arguments\n"));
}

#[test]
fn over_the_fifo() {
    let dir = TempDir::new();
    let rt = runtime();
    let mi = mi();
    let fifo_path = dir.0.join("openser_fifo");
    let reply_dir = format!("{}/", dir.0.display());
    let opts = FifoOptions {
        fifo_name: fifo_path.clone(),
        mode: 0o600,
        reply_dir: reply_dir.clone(),
        reply_indent: "\t".to_string(),
        uid: None,
        gid: None,
    };
    let t: Transport = rt.block_on(fifo::serve(opts, &mi)).expect("mi_fifo starts");
    let f = fifo_path.to_str().unwrap();
    let door = ["--fifo", f, "--reply-dir", reply_dir.as_str()];
    common_runs(&dir.0, &door);
    let run = ctl(&dir.0, &door, &["no_such_command"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(1), "500 command 'no_such_command' not available\n"));
    // The default door through the environment.
    let run = common::serc(&dir.0, &[("SERC_CTL_FIFO", &fifo_path)], &["ctl", "--reply-dir", &reply_dir, "ps"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.starts_with("200 OK\nProcess::  ID=0"), "{}", run.stdout);
    // No reply FIFO is left behind.
    let left: Vec<PathBuf> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(left, vec![fifo_path.clone()]);
    rt.block_on(t.stop());

    // Nobody reads the FIFO now (the server removed it): a clear error, status 2.
    let run = ctl(&dir.0, &door, &["ps"]);
    assert_eq!(run.code, Some(2));
    assert!(
        run.stderr.contains("cannot use the FIFO") && run.stderr.contains("is the proxy running"),
        "{}",
        run.stderr
    );
}

#[test]
fn fifo_nobody_answers() {
    let dir = TempDir::new();
    let path = dir.0.join("openser_fifo");
    let c = std::ffi::CString::new(path.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let reply_dir = dir.0.display().to_string();
    let f = path.to_str().unwrap();
    // A FIFO without a reader: the proxy is not running.
    let run = ctl(&dir.0, &["--fifo", f, "--reply-dir", &reply_dir], &["ps"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("nobody reads the FIFO"), "{}", run.stderr);
    // A reader that never answers: a timeout.
    let reader = std::fs::OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(&path).unwrap();
    let run = common::serc(&dir.0, &[], &["ctl", "--timeout", "0.3", "--fifo", f, "--reply-dir", &reply_dir, "ps"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("no reply through") && run.stderr.contains("0.3 s"), "{}", run.stderr);
    drop(reader);
    let left: Vec<PathBuf> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(left, vec![path], "the reply FIFO is removed");
}

#[test]
fn over_datagrams() {
    let dir = TempDir::new();
    let rt = runtime();
    let mi = mi();
    let sock = dir.0.join("openser.sock");
    let opts = |socket| DatagramOptions {
        socket,
        mode: 0o600,
        uid: None,
        gid: None,
        reply_indent: "\t".to_string(),
        timeout: Duration::from_secs(2),
    };
    let unix = rt.block_on(datagram::serve(opts(SocketName::Unix(sock.clone())), &mi)).expect("unix socket");
    let udp = rt
        .block_on(datagram::serve(opts(SocketName::Udp { host: "127.0.0.1".into(), port: 0 }), &mi))
        .expect("udp socket");
    let reply_dir = dir.0.display().to_string();
    let unix_door = format!("unix:{}", sock.display());
    common_runs(&dir.0, &["--datagram", &unix_door, "--reply-dir", &reply_dir]);
    let udp_door = udp.name().to_string();
    assert!(udp_door.starts_with("udp:127.0.0.1:"), "{udp_door}");
    common_runs(&dir.0, &["--datagram", &udp_door]);
    rt.block_on(unix.stop());
    rt.block_on(udp.stop());

    let run = ctl(&dir.0, &["--datagram", &unix_door, "--reply-dir", &reply_dir], &["ps"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("is the proxy running with mi_datagram there?"), "{}", run.stderr);
    let run = common::serc(&dir.0, &[], &["ctl", "--timeout", "0.5", "--datagram", &udp_door, "ps"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains(&udp_door[4..]), "{}", run.stderr);
    let left: Vec<PathBuf> = std::fs::read_dir(&dir.0).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(left.is_empty(), "client sockets removed: {left:?}");
}

#[test]
fn over_http() {
    let dir = TempDir::new();
    let rt = runtime();
    let mi = mi();
    let t = rt.block_on(http::start("127.0.0.1:0".parse().unwrap(), mi, None)).expect("http door");
    let addr = http::bound_addr(&t).unwrap();
    let url = format!("http://{addr}");
    common_runs(&dir.0, &["--http", &url]);
    let run = ctl(&dir.0, &["--http", &format!("{url}/rpc")], &["nope"]);
    assert_eq!((run.code, run.stdout.as_str()), (Some(1), "500 command 'nope' not available\n"));
    let run = common::serc(&dir.0, &[("SERC_CTL_HTTP", Path::new(&url))], &["ctl", "which"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("\nul_dump\n"), "{}", run.stdout);
    rt.block_on(t.stop());

    let run = ctl(&dir.0, &["--http", &url], &["ps"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("nobody listens at") || run.stderr.contains("no reply"), "{}", run.stderr);
    let run = ctl(&dir.0, &["--http", "https://127.0.0.1:1"], &["ps"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("http://HOST:PORT"), "{}", run.stderr);
}

#[test]
fn help_teaches() {
    let dir = TempDir::new();
    let run = common::serc(&dir.0, &[], &["ctl", "--help"]);
    assert_eq!(run.code, Some(0));
    for needle in ["serc ctl ul show AOR", "/tmp/openser_fifo", "SERC_CTL_HTTP", "--format", "Exit status"] {
        assert!(run.stdout.contains(needle), "{needle}: {}", run.stdout);
    }
    let run = common::serc(&dir.0, &[], &["ctl", "ul", "show"]);
    assert_eq!(run.code, Some(2));
    assert!(run.stderr.contains("takes one AOR"), "{}", run.stderr);
}
