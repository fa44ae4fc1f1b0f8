//! Prints what the parser makes of a message file: `cargo run -p serc-runtime --example why -- FILE`.
use bytes::Bytes;
use serc_runtime::sip::{Framing, Message};

fn main() {
    let path = std::env::args().nth(1).expect("usage: why FILE");
    let bytes = Bytes::from(std::fs::read(path).expect("a readable file"));
    match Message::parse(bytes, Framing::Datagram) {
        Ok(m) => println!("accepted: {} headers, body {} bytes", m.headers.len(), m.body.len()),
        Err(r) => println!(
            "refused: {:?} {} ({}), {} reply header lines",
            r.status,
            r.reason,
            r.detail,
            r.reply_headers.len()
        ),
    }
}
