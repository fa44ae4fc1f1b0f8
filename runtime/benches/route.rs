//! The compiled main route of a config on a prepared message: the code
//! `serc emit` generates for bench/configs/openser-relay-stateless.cfg (the
//! stateless relay of `cargo xtask bench`'s SIPp scenario) and for
//! examples/openser.cfg (the classic stateless proxy: maxfwd, has_totag,
//! is_method, uri==myself, record_route, append_hf, forward), on the INVITE
//! SIPp's UAC sends.
//!
//! - `route/NAME/script`: the main route alone on a parsed message
//!   (`Ctx::new` then `Script::request`: what the generated code costs);
//! - `route/NAME/pipeline`: `Proxy::route` on the received bytes (parse, the
//!   route, the forwarded message written: a worker's whole job per
//!   datagram, without the socket calls);
//! - `route/NAME/pipeline+histogram`: the same with the processing-time
//!   histogram on (a built proxy's `--http`: what `/metrics` costs per message).
//! - `route/openser-default/call`: bench/configs/openser-openser-default.cfg
//!   (OpenSER 1.3's default config, as `cargo xtask bench` runs it) through a
//!   whole call of the SIPp scenario, message by message: INVITE, the callee's
//!   200, ACK, BYE and its 200 (the callee registered first), each call a new
//!   dialog. The time is `Proxy::route_into` on the five messages (each copied
//!   first, as the UDP worker copies a datagram, their sends put in one vector
//!   reused, as the worker reuses its own) and tm's timers, fired after each
//!   call on a clock that advances a millisecond per call (as at 1,000
//!   calls/s: 32,000 answered INVITEs wait out RFC 6026's 32 s); building the
//!   messages, and parsing what the proxy sent (dropped before the next
//!   message is routed, as a worker holds no other parsed message), are not
//!   counted. It is the user-space CPU of a call in a proxy that has run for a
//!   while, less the socket calls and the log lines' writes (no log
//!   subscriber: the lines are not formatted).
//! - `route/openser-default/call-timers`: the same calls, timing only tm's
//!   timers: ending transactions and freeing what they kept. A SIPp step of
//!   `cargo xtask bench` (10 s, then 3 s of drain) ends before the INVITEs it
//!   answered reach their 32 s: it counts little of this.
//!
//! The generated code is not in the repository (it would go stale as the
//! generator and the runtime change): `cargo xtask bench` writes it to
//! target/serc-bench/route/ with `serc emit` and builds this bench with
//! `--cfg serc_route_bench` (`cargo rustc`, so only this target sees the
//! flag). Built without it (plain `cargo bench`), this bench says so and
//! measures nothing.

#![allow(unexpected_cfgs)]

#[cfg(serc_route_bench)]
mod generated {
    #[allow(dead_code, clippy::all)]
    pub mod relay_stateless {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/serc-bench/route/relay_stateless.rs"));
    }
    #[allow(dead_code, clippy::all)]
    pub mod example_openser {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/serc-bench/route/example_openser.rs"));
    }
    #[allow(dead_code, clippy::all)]
    pub mod openser_default {
        include!(concat!(env!("CARGO_MANIFEST_DIR"), "/../target/serc-bench/route/openser_default.rs"));
    }
}

/// Counts allocations and the bytes in use, for `route/openser-default/call`'s
/// figures (one relaxed atomic add per allocation and per free).
#[cfg(serc_route_bench)]
mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

    pub struct Counting;

    pub static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
    pub static IN_USE: AtomicUsize = AtomicUsize::new(0);

    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Relaxed);
            IN_USE.fetch_add(layout.size(), Relaxed);
            // SAFETY: forwarded as it came.
            unsafe { System.alloc(layout) }
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            IN_USE.fetch_sub(layout.size(), Relaxed);
            // SAFETY: forwarded as it came.
            unsafe { System.dealloc(ptr, layout) }
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Relaxed);
            IN_USE.fetch_add(new_size, Relaxed);
            IN_USE.fetch_sub(layout.size(), Relaxed);
            // SAFETY: forwarded as it came.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static GLOBAL: Counting = Counting;
}

#[cfg(serc_route_bench)]
mod bench {
    use std::hint::black_box;
    use std::net::SocketAddr;
    use std::sync::atomic::Ordering::Relaxed;

    use crate::counting;

    use bytes::Bytes;
    use criterion::{Criterion, Throughput};
    use serc_runtime::app::{Proxy, Script};
    use serc_runtime::proxy::{Local, Source, Transport};
    use serc_runtime::script::{Config, Ctx, Vars};
    use serc_runtime::sip::{Framing, Message};

    const PROXY: &str = "127.0.0.1:5060";
    const UAC: &str = "127.0.0.1:5061";

    /// SIPp's INVITE (../shared/bench/scenarios/uac.xml) to `ruri`.
    fn invite(ruri: &str) -> Bytes {
        invite_of_call(ruri, 1, "4242SIPpTag001")
    }

    /// SIPp's INVITE of call `n` (its Call-ID and branch), From tag `tag`.
    fn invite_of_call(ruri: &str, n: u64, tag: &str) -> Bytes {
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        Bytes::from(format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-{n}-0\r\n\
             From: sipp <sip:sipp@{UAC}>;tag={tag}\r\n\
             To: service <{ruri}>\r\n\
             Call-ID: {n}-4242@127.0.0.1\r\n\
             CSeq: 1 INVITE\r\n\
             Contact: sip:sipp@{UAC}\r\n\
             Max-Forwards: 70\r\n\
             Subject: Performance Test\r\n\
             Content-Type: application/sdp\r\n\
             Content-Length: {}\r\n\r\n{sdp}",
            sdp.len()
        ))
    }

    fn config() -> Config {
        let local: SocketAddr = PROXY.parse().unwrap();
        Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() }
    }

    fn source() -> Source {
        from(UAC)
    }

    fn one<S: Script>(c: &mut Criterion, name: &str, script: impl Fn() -> S, ruri: &str) {
        let bytes = invite(ruri);
        let msg = Message::parse(bytes.clone(), Framing::Datagram).expect("the INVITE parses");
        // Its own config: the registry (and so the histogram) is shared by clones.
        let timed_config = config();
        timed_config.mi.enable_histogram();
        let config = config();
        let proxy = Proxy::new(script(), config.clone());
        let timed = Proxy::new(script(), timed_config);
        let sent = proxy.route(bytes.clone(), source(), Framing::Datagram);
        assert_eq!(sent.len(), 1, "{name}: the INVITE is forwarded once");
        let mut group = c.benchmark_group(format!("route/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("script", |b| {
            b.iter(|| {
                let mut vars = Vars::default();
                let mut ctx = Ctx::new(black_box(&msg), source(), &config, &mut vars);
                let flow = proxy.script.request(&mut ctx);
                (flow, ctx.retcode)
            })
        });
        group.bench_function("pipeline", |b| {
            b.iter(|| proxy.route(black_box(bytes.clone()), source(), Framing::Datagram))
        });
        group.bench_function("pipeline+histogram", |b| {
            b.iter(|| timed.route(black_box(bytes.clone()), source(), Framing::Datagram))
        });
        group.finish();
    }

    pub fn routes(c: &mut Criterion) {
        use crate::generated::{example_openser, relay_stateless};
        let script = || relay_stateless::CfgScript::new().expect("the stateless relay's literals");
        one(c, "relay-stateless", script, "sip:service@127.0.0.1:5060");
        let script = || example_openser::CfgScript::new().expect("examples/openser.cfg's literals");
        one(c, "example-openser", script, "sip:bob@127.0.0.1:5070");
        call(c);
    }

    const UAS: &str = "127.0.0.1:5062";

    fn from(addr: &str) -> Source {
        Source { transport: Transport::Udp, addr: addr.parse().unwrap(), local: PROXY.parse().unwrap() }
    }

    /// The one message of `sent` that goes to `to`, parsed.
    fn sent_to(sent: &[serc_runtime::script::Send], to: &str) -> Message {
        let to: SocketAddr = to.parse().unwrap();
        let mut to_it = sent.iter().filter(|s| {
            matches!(s.target, serc_runtime::proxy::Target::Addr { addr, .. } if addr == to)
                && !s.bytes.starts_with(b"SIP/2.0 100 ")
        });
        let one = to_it.next().unwrap_or_else(|| panic!("nothing sent to {to}: {sent:?}"));
        assert!(to_it.next().is_none(), "one message to {to}");
        Message::parse(one.bytes.clone(), Framing::Datagram).expect("what the proxy sends parses")
    }

    /// The callee's `200 OK` to `req` as the proxy sent it: its Vias, Record-Routes,
    /// From, Call-ID and CSeq, the To with the callee's tag.
    fn ok_to(req: &Message) -> Bytes {
        let text = std::str::from_utf8(req.bytes()).unwrap();
        let mut out = String::from("SIP/2.0 200 OK\r\n");
        for line in text.split("\r\n").take_while(|l| !l.is_empty()) {
            let name = line.split(':').next().unwrap_or("");
            if ["Via", "Record-Route", "From", "Call-ID", "CSeq"].iter().any(|h| name.eq_ignore_ascii_case(h)) {
                out.push_str(line);
                out.push_str("\r\n");
            } else if name.eq_ignore_ascii_case("To") {
                out.push_str(line);
                if !line.contains(";tag=") {
                    out.push_str(";tag=4343SIPpTag012");
                }
                out.push_str("\r\n");
            }
        }
        out.push_str(&format!("Contact: <sip:service@{UAS}>\r\nContent-Length: 0\r\n\r\n"));
        Bytes::from(out)
    }

    /// An in-dialog request of call `n` from the caller (ACK or BYE), routed by
    /// the Record-Route of the callee's 200 (`route`).
    fn in_dialog(method: &str, cseq: u32, n: u64, route: &str) -> Bytes {
        Bytes::from(format!(
            "{method} sip:service@{UAS} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-{n}-{cseq}-{method}\r\n\
             From: sipp <sip:sipp@{UAC}>;tag={n}SIPpTag001\r\n\
             To: service <sip:service@{PROXY}>;tag=4343SIPpTag012\r\n\
             Call-ID: {n}-4242@127.0.0.1\r\n\
             CSeq: {cseq} {method}\r\n\
             Route: {route}\r\n\
             Contact: sip:sipp@{UAC}\r\n\
             Max-Forwards: 70\r\n\
             Subject: Performance Test\r\n\
             Content-Length: 0\r\n\r\n"
        ))
    }

    fn call(c: &mut Criterion) {
        use std::time::{Duration, Instant};

        use crate::generated::openser_default;
        let launch = openser_default::launch();
        let config = Config { locals: config().locals, ..launch.settings.config };
        let proxy = Proxy::new(launch.script, config);
        let register = Bytes::from(format!(
            "REGISTER sip:{PROXY} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {UAS};branch=z9hG4bK-reg-1\r\n\
             From: service <sip:service@{PROXY}>;tag=reg1\r\n\
             To: service <sip:service@{PROXY}>\r\n\
             Call-ID: reg-1@127.0.0.1\r\n\
             CSeq: 1 REGISTER\r\n\
             Contact: <sip:service@{UAS}>\r\n\
             Expires: 3600\r\n\
             Max-Forwards: 70\r\n\
             Content-Length: 0\r\n\r\n"
        ));
        let start = Instant::now();
        let registered = proxy.route_at(start, register, from(UAS), Framing::Datagram);
        assert!(registered.iter().any(|s| s.bytes.starts_with(b"SIP/2.0 200 ")), "the callee registers");
        let mut n = 0u64;
        // What each message sends, in one vector reused as a transport's worker reuses its own.
        let mut sends = Vec::new();
        // One call: five messages in, what each sends checked and the next built from
        // it; the time routing them and firing tm's timers, and what that allocated.
        let mut one_call = |routes: &mut Duration, timers: &mut Duration, allocations: &mut u64| {
            n += 1;
            let now = start + Duration::from_millis(n);
            let mut routed = |text: Bytes, src: &str| {
                sends.clear();
                let a = counting::ALLOCATIONS.load(Relaxed);
                let t = Instant::now();
                // Copied as the UDP worker copies each datagram (its exact size).
                let bytes = Bytes::copy_from_slice(&text);
                proxy.route_into(now, bytes, from(src), Framing::Datagram, &mut sends);
                *routes += t.elapsed();
                *allocations += counting::ALLOCATIONS.load(Relaxed) - a;
                sends.clone()
            };
            // What each message sent is parsed and dropped before the next is
            // routed: a worker holds no other parsed message while it routes one.
            let sent = routed(invite_of_call("sip:service@127.0.0.1:5060", n, &format!("{n}SIPpTag001")), UAC);
            let ok = ok_to(&sent_to(&sent, UAS));
            let route = {
                let relayed = sent_to(&routed(ok, UAS), UAC);
                assert_eq!(relayed.status(), Some(200));
                let route = relayed
                    .values(serc_runtime::sip::HeaderName::RecordRoute)
                    .next()
                    .map(|v| relayed.text(v).to_string());
                route.expect("the 200 carries our Record-Route")
            };
            let ack = sent_to(&routed(in_dialog("ACK", 1, n, &route), UAC), UAS).method();
            assert_eq!(ack, Some(serc_runtime::sip::Method::Ack));
            let bye_ok = ok_to(&sent_to(&routed(in_dialog("BYE", 2, n, &route), UAC), UAS));
            let bye_ok = sent_to(&routed(bye_ok, UAS), UAC).status();
            assert_eq!(bye_ok, Some(200));
            // tm's timers, as its timer task fires them.
            let a = counting::ALLOCATIONS.load(Relaxed);
            let t = Instant::now();
            let sent = proxy.tm_timeout(now);
            *timers += t.elapsed();
            *allocations += counting::ALLOCATIONS.load(Relaxed) - a;
            assert!(sent.is_empty(), "no timer sends anything: {sent:?}");
        };
        // Steady state first (40 s of calls: the first ones have ended), then
        // what a call allocates and what the calls in flight hold.
        let (mut routes, mut timers, mut allocations) = (Duration::ZERO, Duration::ZERO, 0);
        for _ in 0..40_000 {
            one_call(&mut routes, &mut timers, &mut allocations);
        }
        allocations = 0;
        for _ in 0..10_000 {
            one_call(&mut routes, &mut timers, &mut allocations);
        }
        eprintln!(
            "route/openser-default/call: {:.1} allocations per call; {:.2} KB in use per call of the last 32 s",
            allocations as f64 / 10_000.0,
            counting::IN_USE.load(Relaxed) as f64 / 1024.0 / 32_000.0,
        );
        let mut group = c.benchmark_group("route/openser-default");
        group.throughput(Throughput::Elements(1));
        group.bench_function("call", |b| {
            b.iter_custom(|iters| {
                let (mut routes, mut timers, mut allocations) = (Duration::ZERO, Duration::ZERO, 0);
                for _ in 0..iters {
                    one_call(&mut routes, &mut timers, &mut allocations);
                }
                routes + timers
            })
        });
        group.bench_function("call-timers", |b| {
            b.iter_custom(|iters| {
                let (mut routes, mut timers, mut allocations) = (Duration::ZERO, Duration::ZERO, 0);
                for _ in 0..iters {
                    one_call(&mut routes, &mut timers, &mut allocations);
                }
                timers
            })
        });
        group.finish();
    }
}

#[cfg(serc_route_bench)]
criterion::criterion_group!(benches, bench::routes);
#[cfg(serc_route_bench)]
criterion::criterion_main!(benches);

#[cfg(not(serc_route_bench))]
fn main() {
    eprintln!(
        "route: skipped — the generated routes are built by `cargo xtask bench` \
         (serc emit into target/serc-bench/route/, then this bench with --cfg serc_route_bench)"
    );
}
