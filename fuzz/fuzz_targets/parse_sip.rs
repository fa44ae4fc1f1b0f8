//! Fuzzes the SIP parser and the message editor: any bytes parse or are
//! refused without panicking; a parsed message's text of any span is what a
//! checked UTF-8 conversion gives (`Message::text` skips the check inside an
//! all-ASCII head); a parsed message edited (a header added, one removed,
//! the Request-URI and the body replaced, as scripts do) writes a message
//! that parses again.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serc_runtime::sip::{Edits, Framing, Message, StartLine};

fuzz_target!(|data: &[u8]| {
    for framing in [Framing::Datagram, Framing::Stream] {
        let Ok(msg) = Message::parse(Bytes::copy_from_slice(data), framing) else { continue };
        let _ = msg.vias().count();
        let _ = msg.contacts().count();
        let _ = (msg.from(), msg.to());
        let spans = msg.headers.iter().flat_map(|h| [h.name_span, h.value, h.line]);
        for span in spans.chain([msg.body, msg.call_id]) {
            let checked = std::str::from_utf8(&msg.bytes()[span.range()]).unwrap_or("");
            assert_eq!(msg.text(span), checked, "{span:?}");
        }
        let mut edits = Edits::new();
        if let Some(h) = msg.headers.first() {
            edits.insert(h.line.start as usize, Bytes::from_static(b"X-Fuzz: 1\r\n"));
        }
        if let Some(h) = msg.headers.iter().find(|h| h.name == serc_runtime::sip::HeaderName::Other) {
            edits.delete(h.line.range());
        }
        if let StartLine::Request { uri, .. } = msg.start {
            edits.replace(uri.range(), Bytes::from_static(b"sip:fuzz@192.0.2.1"));
        }
        edits.replace(msg.body.range(), Bytes::from_static(b"v=0\r\n"));
        let written = msg.write(&edits).expect("these edits never overlap");
        let again = Message::parse(written.freeze(), Framing::Datagram);
        assert!(again.is_ok(), "an edited message that parsed must parse again: {:?}", again.err());
    }
});
