//! Pushes datagrams through a trivial echo handler in both UDP layouts (one
//! `SO_REUSEPORT` socket per worker, one shared socket) and prints datagrams per
//! second and the server's CPU time:
//!
//! `cargo run --release -p serc-runtime --example udp_echo_load -- [OPTIONS]`
//!
//! - `--datagrams N` per run (default 400000)
//! - `--workers W` server workers and runtime threads (default: the CPUs)
//! - `--clients C` client threads, each its own socket, i.e. its own flow (default 4)
//! - `--window K` datagrams in flight per client (default 32)
//! - `--rounds R` runs of each layout and batch size, alternating (default 3)
//! - `--parse` parse each message in the handler (`Message::parse`) before echoing it
//! - `--layout per-worker|shared|both` (default both)
//! - `--batch N[,N…]` `ServerConfig::udp_batch` values to compare: datagrams per
//!   `recvmmsg`/`sendmmsg` call, 1 = one `recvfrom`/`sendto` each (default 1,32)
//!
//! Every round runs each layout with each batch size, in turn; the summary gives
//! the medians of each (datagrams/s, server CPU per datagram) and the medians of
//! its per-round ratios to the first batch size of the same layout.
//!
//! The server runs on its own tokio runtime whose threads are named
//! `serc-srv`; its CPU time is summed over those threads only
//! (`/proc/self/task/*/schedstat`, Linux), so the clients do not count.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serc_runtime::sip::{Framing, Message};
use serc_runtime::transport::{Handler, Incoming, Listen, Server, ServerConfig, Transport, UdpLayout};

const SERVER_THREAD: &str = "serc-srv";

const REQUEST: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP client.atlanta.example.com:5060;branch=z9hG4bK74bf9\r\n\
Max-Forwards: 70\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
Call-ID: 3848276298220188511@atlanta.example.com\r\n\
CSeq: 1 INVITE\r\n\
Contact: <sip:alice@client.atlanta.example.com;transport=udp>\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 151\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 client.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

struct Options {
    datagrams: usize,
    workers: usize,
    clients: usize,
    window: usize,
    rounds: usize,
    parse: bool,
    layouts: Vec<UdpLayout>,
    batches: Vec<usize>,
}

fn options() -> Options {
    let mut o = Options {
        datagrams: 400_000,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        clients: 4,
        window: 32,
        rounds: 3,
        parse: false,
        layouts: vec![UdpLayout::SocketPerWorker, UdpLayout::SharedSocket],
        batches: vec![1, 32],
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut number = || -> usize { args.next().and_then(|v| v.parse().ok()).expect("a number after the option") };
        match arg.as_str() {
            "--datagrams" => o.datagrams = number(),
            "--workers" => o.workers = number(),
            "--clients" => o.clients = number(),
            "--window" => o.window = number(),
            "--rounds" => o.rounds = number(),
            "--parse" => o.parse = true,
            "--layout" => {
                o.layouts = match args.next().as_deref() {
                    Some("per-worker") => vec![UdpLayout::SocketPerWorker],
                    Some("shared") => vec![UdpLayout::SharedSocket],
                    Some("both") => vec![UdpLayout::SocketPerWorker, UdpLayout::SharedSocket],
                    other => panic!("--layout per-worker|shared|both, not {other:?}"),
                }
            }
            "--batch" => {
                let list = args.next().expect("--batch N[,N…]");
                o.batches = list.split(',').map(|n| n.trim().parse().expect("--batch N[,N…]")).collect();
            }
            other => panic!("unknown option {other}"),
        }
    }
    o
}

/// CPU time of this process's threads named `name` (nanoseconds).
fn cpu_ns(name: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return 0 };
    let mut total = 0;
    for task in tasks.flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        total += schedstat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    }
    total
}

struct Run {
    received: usize,
    lost: usize,
    wall: Duration,
    server_cpu: Duration,
}

/// One client: keeps `window` datagrams in flight until `quota` have been
/// answered or given up on (a datagram unanswered for 200 ms is counted lost
/// and replaced).
fn client(server: SocketAddr, quota: usize, window: usize) -> (usize, usize) {
    let socket = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    socket.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    socket.connect(server).unwrap();
    let mut buf = vec![0u8; 2048];
    let (mut sent, mut received, mut lost) = (0, 0, 0);
    while sent < quota.min(window) {
        socket.send(REQUEST.as_bytes()).unwrap();
        sent += 1;
    }
    while received + lost < quota {
        match socket.recv(&mut buf) {
            Ok(_) => received += 1,
            Err(_) => {
                // Everything in flight is gone.
                lost += sent - received - lost;
            }
        }
        while sent < quota && sent - received - lost < window {
            socket.send(REQUEST.as_bytes()).unwrap();
            sent += 1;
        }
    }
    (received, lost)
}

fn run(o: &Options, layout: UdpLayout, batch: usize) -> Run {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(o.workers)
        .thread_name(SERVER_THREAD)
        .enable_all()
        .build()
        .unwrap();
    let parse = o.parse;
    let handler = move |incoming: Incoming| {
        if parse && Message::parse(incoming.bytes.clone(), Framing::Datagram).is_err() {
            return Vec::new();
        }
        vec![incoming.reply(incoming.bytes.clone())]
    };
    let handler: Arc<dyn Handler> = Arc::new(handler);
    let config = ServerConfig {
        listens: vec![Listen::udp(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)))],
        workers: o.workers,
        udp_layout: layout,
        udp_recv_buffer: Some(4 << 20),
        udp_batch: batch,
        ..ServerConfig::default()
    };
    let server = runtime.block_on(Server::start(config, handler)).expect("server starts");
    let addr = server.local_addr(Transport::Udp).unwrap();
    // Warm up (threads started, sockets' first wake-ups).
    client(addr, 1000, o.window);

    let cpu_before = cpu_ns(SERVER_THREAD);
    let started = Instant::now();
    let per_client = o.datagrams / o.clients;
    let window = o.window;
    let clients: Vec<_> =
        (0..o.clients).map(|_| std::thread::spawn(move || client(addr, per_client, window))).collect();
    let (mut received, mut lost) = (0, 0);
    for c in clients {
        let (r, l) = c.join().unwrap();
        received += r;
        lost += l;
    }
    let wall = started.elapsed();
    let server_cpu = Duration::from_nanos(cpu_ns(SERVER_THREAD) - cpu_before);
    runtime.block_on(server.shutdown());
    Run { received, lost, wall, server_cpu }
}

fn main() {
    let o = options();
    println!(
        "{} datagrams of {} bytes per run, {} workers, {} clients × {} in flight, handler: {}, {} CPUs",
        o.datagrams,
        REQUEST.len(),
        o.workers,
        o.clients,
        o.window,
        if o.parse { "parse + echo" } else { "echo" },
        std::thread::available_parallelism().map_or(1, |n| n.get()),
    );
    let mut results: Vec<(UdpLayout, usize, Vec<Run>)> =
        o.layouts.iter().flat_map(|l| o.batches.iter().map(|b| (*l, *b, Vec::new()))).collect();
    for round in 0..o.rounds {
        for (layout, batch, runs) in &mut results {
            let r = run(&o, *layout, *batch);
            println!(
                "round {round} {:<16} batch {:>2} {:>9.0} datagrams/s  server CPU {:>6.2} s ({:>5.2} µs/datagram)  wall {:>5.2} s  lost {}",
                format!("{layout:?}"),
                batch,
                r.received as f64 / r.wall.as_secs_f64(),
                r.server_cpu.as_secs_f64(),
                r.server_cpu.as_secs_f64() * 1e6 / r.received.max(1) as f64,
                r.wall.as_secs_f64(),
                r.lost,
            );
            runs.push(r);
        }
    }
    // Ratios are taken round by round (the runs of a round are back to back,
    // so they share the machine's mood), then their median: steadier than the
    // ratio of medians on a noisy machine.
    println!(
        "median of {} rounds; ratios: median of the per-round ratios to batch {} of the same layout",
        o.rounds, o.batches[0]
    );
    let rate = |r: &Run| r.received as f64 / r.wall.as_secs_f64();
    let cpu = |r: &Run| r.server_cpu.as_secs_f64() * 1e6 / r.received.max(1) as f64;
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    for (layout, batch, runs) in &results {
        let base = &results.iter().find(|(l, b, _)| l == layout && *b == o.batches[0]).expect("the first batch size").2;
        let rate_ratio = median(runs.iter().zip(base).map(|(r, b)| rate(r) / rate(b)).collect());
        let cpu_ratio = median(runs.iter().zip(base).map(|(r, b)| cpu(r) / cpu(b)).collect());
        println!(
            "  {:<16} batch {:>2} {:>9.0} datagrams/s (×{:.2})  {:>5.2} µs server CPU per datagram (×{:.2})",
            format!("{layout:?}"),
            batch,
            median(runs.iter().map(rate).collect()),
            rate_ratio,
            median(runs.iter().map(cpu).collect()),
            cpu_ratio,
        );
    }
}
