//! Messages parsed per second: a typical INVITE and its 200 OK, through serc's
//! parser (what a relay needs: start line, header index, the transaction
//! headers validated) and through `rsip` (a full parse into owned types) in the
//! same run. `serc` validates the optional headers too (Contact, Expires, Date:
//! `Interest::ALL`, what `Message::parse` does); `serc-relay` only what a
//! built proxy whose script reads none of them validates (`Interest::NONE`).
//!
//! `cargo bench -p serc-runtime --bench parse`

use std::hint::black_box;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serc_runtime::sip::{Framing, Interest, Message};

const INVITE: &str = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;rport\r\n\
Max-Forwards: 70\r\n\
To: Bob <sip:bob@biloxi.example.com>\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:alice@pc33.atlanta.example.com>\r\n\
User-Agent: SIPp/3.6.1\r\n\
Allow: INVITE, ACK, CANCEL, OPTIONS, BYE\r\n\
Content-Type: application/sdp\r\n\
Content-Length: 142\r\n\
\r\n\
v=0\r\n\
o=alice 2890844526 2890844526 IN IP4 pc33.atlanta.example.com\r\n\
s=-\r\n\
c=IN IP4 192.0.2.101\r\n\
t=0 0\r\n\
m=audio 49172 RTP/AVP 0\r\n\
a=rtpmap:0 PCMU/8000\r\n";

const OK: &str = "SIP/2.0 200 OK\r\n\
Via: SIP/2.0/UDP server10.biloxi.example.com;branch=z9hG4bK4b43c2ff8.1;received=192.0.2.3\r\n\
Via: SIP/2.0/UDP pc33.atlanta.example.com:5060;branch=z9hG4bK776asdhds;received=192.0.2.1\r\n\
Record-Route: <sip:server10.biloxi.example.com;lr>\r\n\
To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n\
From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n\
CSeq: 314159 INVITE\r\n\
Contact: <sip:bob@192.0.2.4>\r\n\
Content-Length: 0\r\n\
\r\n";

fn parse(c: &mut Criterion) {
    for (name, text) in [("invite", INVITE), ("200-ok", OK)] {
        assert!(Message::parse(Bytes::from_static(text.as_bytes()), Framing::Datagram).is_ok(), "{name} must parse");
        assert!(rsip::SipMessage::try_from(text.as_bytes()).is_ok(), "rsip must parse {name}");
        let mut group = c.benchmark_group(format!("parse/{name}"));
        group.throughput(Throughput::Elements(1));
        group.bench_function("serc", |b| {
            b.iter(|| Message::parse(Bytes::from_static(black_box(text.as_bytes())), Framing::Datagram).map(|m| m.cseq))
        });
        group.bench_function("serc-relay", |b| {
            b.iter(|| {
                Message::parse_with(Bytes::from_static(black_box(text.as_bytes())), Framing::Datagram, Interest::NONE)
                    .map(|m| m.cseq)
            })
        });
        group.bench_function("rsip", |b| {
            b.iter(|| rsip::SipMessage::try_from(black_box(text.as_bytes())).map(|m| m.is_request()))
        });
        group.finish();
    }
}

criterion_group!(benches, parse);
criterion_main!(benches);
