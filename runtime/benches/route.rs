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
}

#[cfg(serc_route_bench)]
mod bench {
    use std::hint::black_box;
    use std::net::SocketAddr;

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
        let sdp = "v=0\r\no=user1 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n\
                   m=audio 6000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n";
        Bytes::from(format!(
            "INVITE {ruri} SIP/2.0\r\n\
             Via: SIP/2.0/UDP {UAC};branch=z9hG4bK-1-0\r\n\
             From: sipp <sip:sipp@{UAC}>;tag=4242SIPpTag001\r\n\
             To: service <{ruri}>\r\n\
             Call-ID: 1-4242@127.0.0.1\r\n\
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
        Source { transport: Transport::Udp, addr: UAC.parse().unwrap(), local: PROXY.parse().unwrap() }
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
