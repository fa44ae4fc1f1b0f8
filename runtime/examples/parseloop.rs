//! A loop over the SIP parser for profilers:
//! `cargo run --release -p serc-runtime --example parseloop -- MESSAGE_FILE [N]`
//! (line ends in the file are sent as CRLF).

use bytes::Bytes;
use serc_runtime::sip::{Framing, Message};

fn main() {
    let path = std::env::args().nth(1).expect("usage: parseloop MESSAGE_FILE [N]");
    let text = std::fs::read_to_string(path).expect("a readable file").replace('\n', "\r\n");
    let bytes = Bytes::from(text);
    let n: u32 = std::env::args().nth(2).map_or(200_000, |s| s.parse().expect("a number"));
    let mut total = 0u64;
    let t = std::time::Instant::now();
    for _ in 0..n {
        total += Message::parse(bytes.clone(), Framing::Datagram).map(|m| u64::from(m.cseq)).unwrap_or(0);
    }
    println!("{:?} per parse (checksum {total})", t.elapsed() / n);
}
