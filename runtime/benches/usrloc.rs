//! Location lookup: usrloc's in-memory table (`serc_runtime::modules::usrloc`,
//! `db_mode` 0) holding 1,000 and 100,000 AORs (the register scenario of
//! `cargo xtask bench` inserts 80,000 at 8,000 reg/s), each with one contact
//! registered through registrar's `save("location")`.
//!
//! - `usrloc/contacts-hit/N`, `usrloc/contacts-miss/N`: the table alone
//!   (`Location::contacts`: shard lock, hash lookup, the live contacts cloned);
//! - `registrar/lookup/N`: what `lookup("location")` costs a route on an
//!   INVITE, context included (`Ctx::new`, the Request-URI parsed into an AOR,
//!   the table, the contact chosen and written as the new Request-URI).
//!
//! `cargo bench -p serc-runtime --bench usrloc`

use std::hint::black_box;
use std::net::SocketAddr;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serc_runtime::modules::registrar;
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::{Config, Ctx, Vars};
use serc_runtime::sip::{Framing, Message};

const PROXY: &str = "127.0.0.1:5060";
const UA: &str = "127.0.0.1:5061";

fn parse(text: String) -> Message {
    Message::parse(Bytes::from(text), Framing::Datagram).expect("a bench message parses")
}

/// The REGISTER of user `u{n}`, as SIPp's register scenario sends it.
fn register(n: usize) -> Message {
    parse(format!(
        "REGISTER sip:{PROXY} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {UA};branch=z9hG4bK-reg-{n}\r\n\
         From: <sip:u{n}@127.0.0.1>;tag=r{n}\r\n\
         To: <sip:u{n}@127.0.0.1>\r\n\
         Call-ID: reg-{n}@127.0.0.1\r\n\
         CSeq: 1 REGISTER\r\n\
         Contact: <sip:u{n}@{UA}>\r\n\
         Expires: 3600\r\n\
         Max-Forwards: 70\r\n\
         User-Agent: sipp-bench\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// An INVITE to user `u{n}`.
fn invite(n: usize) -> Message {
    parse(format!(
        "INVITE sip:u{n}@{PROXY} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {UA};branch=z9hG4bK-inv-{n}\r\n\
         From: sipp <sip:sipp@{UA}>;tag=i{n}\r\n\
         To: <sip:u{n}@{PROXY}>\r\n\
         Call-ID: inv-{n}@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: sip:sipp@{UA}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

fn source() -> Source {
    Source { transport: Transport::Udp, addr: UA.parse().unwrap(), local: PROXY.parse().unwrap() }
}

/// A config whose location table holds `n` AORs, saved by registrar.
fn config(n: usize) -> Config {
    let local: SocketAddr = PROXY.parse().unwrap();
    let config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    for i in 0..n {
        let msg = register(i);
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&msg, source(), &config, &mut vars);
        assert_eq!(registrar::save_1(&mut ctx, "location"), 1, "REGISTER of u{i} saved");
    }
    assert_eq!(config.usrloc.aors(), n);
    config
}

fn lookup(c: &mut Criterion) {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut usrloc = c.benchmark_group("usrloc");
    usrloc.throughput(Throughput::Elements(1));
    let configs: Vec<(usize, Config)> = sizes().into_iter().map(|n| (n, config(n))).collect();
    for (n, config) in &configs {
        // The table's keys are registrar's (table name, NUL, AOR): find one
        // through the table's own lookup of an AOR saved above.
        let hit = format!("location\0u{}", n / 2);
        assert_eq!(config.usrloc.contacts(&hit, now).len(), 1, "registrar's key format is `table\\0aor`");
        let miss = format!("location\0nobody{n}");
        usrloc.bench_with_input(BenchmarkId::new("contacts-hit", n), &hit, |b, aor| {
            b.iter(|| config.usrloc.contacts(black_box(aor), now))
        });
        usrloc.bench_with_input(BenchmarkId::new("contacts-miss", n), &miss, |b, aor| {
            b.iter(|| config.usrloc.contacts(black_box(aor), now))
        });
    }
    usrloc.finish();

    let mut group = c.benchmark_group("registrar");
    group.throughput(Throughput::Elements(1));
    for (n, config) in &configs {
        let msg = invite(n / 2);
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&msg, source(), config, &mut vars);
        assert_eq!(registrar::lookup(&mut ctx, "location"), 1, "u{} is registered", n / 2);
        assert_eq!(ctx.request_uri(), format!("sip:u{}@{UA}", n / 2));
        group.bench_with_input(BenchmarkId::new("lookup", n), &msg, |b, msg| {
            b.iter(|| {
                let mut vars = Vars::default();
                let mut ctx = Ctx::new(black_box(msg), source(), config, &mut vars);
                registrar::lookup(&mut ctx, "location")
            })
        });
    }
    group.finish();
}

/// 1,000 and 100,000 under `cargo bench`; only 1,000 when `cargo test
/// --all-targets` runs the bench once as a test (unoptimized: filling a large
/// table would only slow the test suite).
fn sizes() -> Vec<usize> {
    if std::env::args().any(|a| a == "--bench") {
        vec![1_000, 100_000]
    } else {
        vec![1_000]
    }
}

criterion_group!(benches, lookup);
criterion_main!(benches);
