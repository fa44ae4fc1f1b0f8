//! RFC 4475's torture messages (`../shared/corpus/sip-torture`): valid
//! messages parse; invalid ones are refused by the core with the answer the
//! RFC gives (400, 505, 501 for an unknown method's CSeq mismatch; a malformed
//! response is dropped); application oddities parse (their answers — 416, 420,
//! 483 … — are the script's and the modules').

use std::path::{Path, PathBuf};

use bytes::Bytes;
use serc_runtime::sip::{Framing, HeaderName, Message};

fn corpus() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/corpus/sip-torture");
    assert!(dir.is_dir(), "the torture corpus is missing: {}", dir.display());
    dir
}

/// What the core must do with each message.
#[derive(Debug, PartialEq)]
enum Expect {
    Accept,
    Reply(u16),
    /// 501 or 400 (RFC 4475 §3.1.2.18 allows either).
    ReplyAnyOf(&'static [u16]),
    Drop,
}

fn expectation(name: &str, verdict: &str) -> Expect {
    match (name, verdict) {
        ("badvers", _) => Expect::Reply(505),
        ("mismatch02", _) => Expect::ReplyAnyOf(&[501, 400]),
        ("bigcode" | "scalarlg", _) => Expect::Drop,
        // Malformed enough that the core refuses them (RFC 4475 §3.3.1, §3.3.8, §3.3.9).
        ("insuf" | "multi01" | "mcl01", _) => Expect::Reply(400),
        (_, "invalid") => Expect::Reply(400),
        _ => Expect::Accept,
    }
}

#[test]
fn every_torture_message_is_handled_as_rfc_4475_says() {
    let manifest = std::fs::read_to_string(corpus().join("MANIFEST.tsv")).expect("MANIFEST.tsv");
    let mut failures = Vec::new();
    let mut seen = 0;
    for line in manifest.lines().skip(1) {
        let cols: Vec<&str> = line.split('\t').collect();
        let (name, verdict) = (cols[0], cols[6]);
        let bytes = std::fs::read(corpus().join(format!("{name}.dat"))).expect("a torture message");
        let expected = expectation(name, verdict);
        let got = match Message::parse(Bytes::from(bytes), Framing::Datagram) {
            Ok(_) => Expect::Accept,
            Err(r) => match r.status {
                Some(s) => Expect::Reply(s),
                None => Expect::Drop,
            },
        };
        let ok = match (&expected, &got) {
            (Expect::ReplyAnyOf(codes), Expect::Reply(s)) => codes.contains(s),
            (e, g) => e == g,
        };
        if !ok {
            let detail = match Message::parse(
                Bytes::from(std::fs::read(corpus().join(format!("{name}.dat"))).unwrap()),
                Framing::Datagram,
            ) {
                Err(r) => r.detail,
                Ok(_) => String::new(),
            };
            failures.push(format!("{name} ({verdict}): expected {expected:?}, got {got:?} {detail}"));
        }
        seen += 1;
    }
    assert_eq!(seen, 49, "the corpus has 49 messages");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn valid_messages_expose_their_parts() {
    let read = |n: &str| Bytes::from(std::fs::read(corpus().join(format!("{n}.dat"))).unwrap());
    // wsinv: folding, odd case, leading zeros.
    let m = Message::parse(read("wsinv"), Framing::Datagram).unwrap();
    assert_eq!(m.method_text(), "INVITE");
    assert_eq!(m.max_forwards, Some(68));
    assert_eq!(m.cseq, 9);
    assert_eq!(m.text(m.via.host), "192.0.2.2");
    assert_eq!(m.via.branch.map(|b| m.text(b)), Some("390skdjuw"));
    assert!(m.vias().count() >= 2);
    assert_eq!(m.body.len() as u32, m.content_length.unwrap());
    // dblreq: the trailing second message is ignored.
    let m = Message::parse(read("dblreq"), Framing::Datagram).unwrap();
    assert_eq!(m.content_length, Some(0));
    assert!(m.body.is_empty());
    // semiuri: `;` in the user part.
    let m = Message::parse(read("semiuri"), Framing::Datagram).unwrap();
    assert!(m.request_uri().unwrap().starts_with("sip:user;par=u%40example.net@example.com"));
    // lwsdisp: no space between display name and `<`.
    let m = Message::parse(read("lwsdisp"), Framing::Datagram).unwrap();
    assert!(m.from().display.is_some());
    // noreason: an empty reason phrase.
    let m = Message::parse(read("noreason"), Framing::Datagram).unwrap();
    assert_eq!(m.status(), Some(100));
    // An invalid request is answered with the headers a reply copies.
    let r = Message::parse(read("lwsstart"), Framing::Datagram).unwrap_err();
    assert_eq!(r.status, Some(400));
    assert_eq!(r.reply_headers.len(), 5, "Via, From, To, Call-ID, CSeq");
    let m = Message::parse(read("cparam01"), Framing::Datagram).unwrap();
    assert_eq!(m.contacts().count(), 1);
    assert!(m.header(HeaderName::ContentLength).is_some());
}

/// xorshift64*: deterministic mutations without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

#[test]
fn mutated_messages_never_panic_and_spans_stay_in_bounds() {
    let mut rng = Rng(0x5EED_5EED_1234_5678);
    let pieces: [&[u8]; 10] = [b"\r\n", b"\r\n ", b":", b";", b",", b"<", b">", b"\"", b"%", b"\0"];
    for entry in std::fs::read_dir(corpus()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("dat") {
            continue;
        }
        let original = std::fs::read(&path).unwrap();
        for _ in 0..300 {
            let mut m = original.clone();
            for _ in 0..1 + rng.below(4) {
                let at = rng.below(m.len() + 1);
                match rng.below(4) {
                    0 if at < m.len() => {
                        let end = (at + 1 + rng.below(16)).min(m.len());
                        m.drain(at..end);
                    }
                    1 => {
                        let p = pieces[rng.below(pieces.len())];
                        m.splice(at..at, p.iter().copied());
                    }
                    2 if at < m.len() => m[at] = rng.next() as u8,
                    _ => m.truncate(at),
                }
            }
            let len = m.len();
            if let Ok(msg) = Message::parse(Bytes::from(m), Framing::Datagram) {
                for h in &msg.headers {
                    assert!(h.line.end as usize <= len && h.value.start <= h.value.end);
                }
                assert!(msg.body.end as usize <= len);
                let _ = msg.vias().count();
                let _ = msg.contacts().count();
                let _ = (msg.from(), msg.to());
            }
        }
    }
}
