//! Transaction lookup in tm's table (`serc_runtime::tm::Table`), sans-IO: what
//! a worker pays per received message of a stateful proxy before the script
//! runs (requests) or before a reply is relayed (responses), with the table
//! holding 1,000 and 100,000 transactions (a stateful proxy at 2,000 calls/s
//! keeps ~20,000 of them: server and client, lingering `wt_timer`).
//!
//! - `tm/request-match/N`: a retransmitted INVITE finds its server transaction
//!   (Proceeding, no response yet: nothing is queued);
//! - `tm/request-new/N`: a new INVITE matches nothing (the script runs next);
//! - `tm/response-match/N`: a repeated 200 OK finds its client INVITE
//!   transaction (Accepted: passed up end to end, nothing queued);
//! - `tm/response-none/N`: a response for a branch the table never sent.
//!
//! `cargo bench -p serc-runtime --bench tm`

use std::hint::black_box;
use std::time::Instant;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serc_runtime::proxy::Transport;
use serc_runtime::sip::{Framing, Message};
use serc_runtime::tm::{ClientConfig, Dest, RequestOutcome, ResponseOutcome, Table, TableConfig};

const UAC: &str = "127.0.0.1:5061";
const UAS: &str = "127.0.0.1:5070";

fn parse(text: String) -> Message {
    Message::parse(Bytes::from(text), Framing::Datagram).expect("a bench message parses")
}

/// The INVITE number `n` as the proxy receives it from the UAC.
fn invite(n: usize) -> Message {
    parse(format!(
        "INVITE sip:service@127.0.0.1:5060 SIP/2.0\r\n\
         Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-uac-{n}\r\n\
         From: sipp <sip:sipp@{UAC}>;tag=tag-{n}\r\n\
         To: service <sip:service@127.0.0.1:5060>\r\n\
         Call-ID: {n}-bench@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: sip:sipp@{UAC}\r\n\
         Max-Forwards: 70\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// The INVITE number `n` as the proxy relays it (our Via on top).
fn relayed(n: usize) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:service@{UAS} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-proxy-{n}\r\n\
         Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-uac-{n}\r\n\
         From: sipp <sip:sipp@{UAC}>;tag=tag-{n}\r\n\
         To: service <sip:service@127.0.0.1:5060>\r\n\
         Call-ID: {n}-bench@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: sip:sipp@{UAC}\r\n\
         Max-Forwards: 69\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// The UAS's 200 OK to the relayed INVITE number `n`.
fn ok(n: usize) -> Message {
    parse(format!(
        "SIP/2.0 200 OK\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-proxy-{n}\r\n\
         Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-uac-{n}\r\n\
         From: sipp <sip:sipp@{UAC}>;tag=tag-{n}\r\n\
         To: service <sip:service@127.0.0.1:5060>;tag=uas-{n}\r\n\
         Call-ID: {n}-bench@127.0.0.1\r\n\
         CSeq: 1 INVITE\r\n\
         Contact: <sip:{UAS}>\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// A table holding `n` server INVITE transactions and their `n` client
/// transactions, each client one answered 200 (Accepted).
fn table(n: usize, now: Instant) -> Table {
    let table = Table::new(TableConfig { max_transactions: 4 * n + 16, ..TableConfig::default() });
    let uac = Dest::new(Transport::Udp, UAC.parse().unwrap());
    let uas = Dest::new(Transport::Udp, UAS.parse().unwrap());
    for i in 0..n {
        table.create_server(&invite(i), uac).expect("room in the table");
        table.start_client(now, relayed(i), uas, &ClientConfig::default()).expect("room in the table");
        assert!(matches!(table.handle_response(now, &ok(i)), ResponseOutcome::Final { .. }));
    }
    while table.poll_transmit().is_some() {}
    table
}

fn lookup(c: &mut Criterion) {
    let now = Instant::now();
    let mut group = c.benchmark_group("tm");
    group.throughput(Throughput::Elements(1));
    for n in sizes() {
        let table = table(n, now);
        let again = invite(n / 2);
        let new = invite(n + 1);
        let ok_again = ok(n / 2);
        let stray = ok(n + 1);
        assert!(matches!(table.handle_request(now, &again), RequestOutcome::Retransmission { resent: false, .. }));
        assert_eq!(table.handle_request(now, &new), RequestOutcome::NoMatch);
        assert!(matches!(table.handle_response(now, &ok_again), ResponseOutcome::Extra2xx { .. }));
        assert_eq!(table.handle_response(now, &stray), ResponseOutcome::NoMatch);
        group.bench_with_input(BenchmarkId::new("request-match", n), &again, |b, msg| {
            b.iter(|| table.handle_request(now, black_box(msg)))
        });
        group.bench_with_input(BenchmarkId::new("request-new", n), &new, |b, msg| {
            b.iter(|| table.handle_request(now, black_box(msg)))
        });
        group.bench_with_input(BenchmarkId::new("response-match", n), &ok_again, |b, msg| {
            b.iter(|| table.handle_response(now, black_box(msg)))
        });
        group.bench_with_input(BenchmarkId::new("response-none", n), &stray, |b, msg| {
            b.iter(|| table.handle_response(now, black_box(msg)))
        });
        assert!(table.poll_transmit().is_none(), "lookups queue nothing");
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
