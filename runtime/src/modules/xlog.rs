//! xlog: logging with pseudo-variables (OpenSER 1.3's `xlog` module).
//!
//! A line is the format with its pseudo-variables expanded ([`Format::eval`]:
//! a null value prints `<null>`, as in 1.3), written through `tracing` with
//! target `script` at the level OpenSER's maps to ([`super::core::emit`]: `L_ALERT`,
//! `L_CRIT`, `L_ERR` → ERROR, `L_WARN` → WARN, `L_NOTICE`, `L_INFO` → INFO,
//! `L_DBG` → DEBUG; a trailing newline is dropped, since each event is a
//! line). When that level is not enabled the format is not evaluated, as 1.3
//! skips a level that is not printable.
//!
//! Parameters:
//! - `buf_size` (4096): 1.3 prints a line into a buffer of this size and
//!   needs a byte of it for the terminating NUL, so a line holds at most
//!   `buf_size - 1` bytes. For a longer line 1.3 logs nothing but
//!   "buffer overflow" and returns -1; serc logs the line cut to
//!   `buf_size - 1` bytes (at a character boundary), reports the overflow at
//!   ERROR, and returns -1 as 1.3 does. A `buf_size` of 0 or less logs nothing
//!   and returns -1 (1.3's `pv_printf` refuses an empty buffer).
//! - `force_color`: ignored. serc never writes terminal escape sequences in
//!   log lines (the subscriber decides how to present them); 1.3's `$C(xy)`
//!   colour pseudo-variable prints nothing, as it does in 1.3 when logging to
//!   syslog without `force_color`.
//!
//! Each function returns 1, or -1 when the line was too long; never 0.

use crate::modules::core::{emit, enabled_at};
use crate::script::args::{Format, Level};
use crate::script::Ctx;

/// `xlog(format)`: logs at `L_ERR`, as 1.3 does for the one-argument form.
pub fn xlog_1(ctx: &mut Ctx, format: &Format) -> i32 {
    log(ctx, Level::Err, format)
}

/// `xlog(level, format)`: logs at `level` (`L_ALERT` … `L_DBG`).
pub fn xlog_2(ctx: &mut Ctx, level: Level, format: &Format) -> i32 {
    log(ctx, level, format)
}

/// `xdbg(format)`: logs at `L_DBG`.
pub fn xdbg(ctx: &mut Ctx, format: &Format) -> i32 {
    log(ctx, Level::Dbg, format)
}

fn log(ctx: &Ctx, level: Level, format: &Format) -> i32 {
    if !enabled_at!("script", level) {
        return 1;
    }
    let buf_size = *ctx.config.xlog_buf_size.get_or_read(&ctx.config.params, |p| p.int("xlog", "buf_size"));
    if buf_size <= 0 {
        tracing::error!(target: "script", buf_size, "xlog: the buffer is empty; increase buf_size");
        return -1;
    }
    let line = format.eval(ctx);
    let room = usize::try_from(buf_size - 1).unwrap_or(usize::MAX);
    if line.len() <= room {
        emit(level, &line);
        return 1;
    }
    emit(level, &line[..floor_char_boundary(&line, room)]);
    tracing::error!(
        target: "script",
        len = line.len(),
        buf_size,
        "xlog: the line was longer than the buffer and was cut; increase buf_size"
    );
    -1
}

/// The largest index `<= at` that is a character boundary of `s`.
fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut i = at.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::subscriber::Interest;
    use tracing::{Event, Metadata, Subscriber};

    use super::*;
    use crate::proxy::{Source, Transport};
    use crate::script::{Config, Value, Vars};
    use crate::sip::{Framing, Message};

    /// One captured event: level, target, the message.
    type Line = (tracing::Level, String, String);

    /// A subscriber that keeps every event at `max` or more severe.
    struct Capture {
        max: tracing::Level,
        lines: Arc<Mutex<Vec<Line>>>,
    }

    struct MessageField(String);

    impl Visit for MessageField {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            if field.name() == "message" {
                self.0 = value.to_string();
            }
        }
    }

    impl Subscriber for Capture {
        fn register_callsite(&self, _: &'static Metadata<'static>) -> Interest {
            Interest::sometimes()
        }
        fn enabled(&self, metadata: &Metadata<'_>) -> bool {
            *metadata.level() <= self.max
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &Event<'_>) {
            let mut m = MessageField(String::new());
            event.record(&mut m);
            let meta = event.metadata();
            self.lines.lock().unwrap().push((*meta.level(), meta.target().to_string(), m.0));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    /// Runs `f` under a capturing subscriber (events at `max` or above).
    fn captured(max: tracing::Level, f: impl FnOnce()) -> Vec<Line> {
        let lines = Arc::new(Mutex::new(Vec::new()));
        tracing::subscriber::with_default(Capture { max, lines: lines.clone() }, f);
        let out = lines.lock().unwrap().clone();
        out
    }

    fn message() -> Message {
        let text = "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n\
                    Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK776asdhds\r\n\
                    Max-Forwards: 70\r\n\
                    From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
                    To: <sip:bob@biloxi.example.com>\r\n\
                    Call-ID: a84b4c76e66710@pc33.example.com\r\n\
                    CSeq: 314159 INVITE\r\n\
                    Content-Length: 0\r\n\r\n";
        Message::parse(Bytes::from(text), Framing::Datagram).unwrap()
    }

    fn src() -> Source {
        let addr: SocketAddr = "192.0.2.1:5061".parse().unwrap();
        Source { transport: Transport::Udp, addr, local: "192.0.2.9:5060".parse().unwrap() }
    }

    /// Calls `f` on a context for the test message under `config`; gives its
    /// code and what was logged.
    fn run(config: &Config, max: tracing::Level, f: impl FnOnce(&mut Ctx) -> i32) -> (i32, Vec<Line>) {
        let msg = message();
        let mut vars = Vars::default();
        vars.set("n", Value::Int(7));
        let mut ctx = Ctx::new(&msg, src(), config, &mut vars);
        let mut code = 0;
        let lines = captured(max, || code = f(&mut ctx));
        // Logging never changes the message.
        assert!(ctx.edits.is_empty() && ctx.ruri.is_none());
        (code, lines)
    }

    fn line(level: tracing::Level, text: &str) -> Line {
        (level, "script".to_string(), text.to_string())
    }

    fn fmt(text: &str) -> Format {
        Format::parse(text).unwrap()
    }

    #[test]
    fn xlog_1_logs_at_error() {
        let f = fmt("$rm from $fu ($fn) via $si:$sp n=$var(n)\n");
        let (code, lines) = run(&Config::default(), tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!(code, 1);
        assert_eq!(
            lines,
            vec![line(
                tracing::Level::ERROR,
                "INVITE from sip:alice@atlanta.example.com (Alice) via 192.0.2.1:5061 n=7"
            )]
        );
    }

    #[test]
    fn null_values_print_as_null() {
        let f = fmt("to-tag=$tt avp=$avp(s:none) du=$du\n");
        let (code, lines) = run(&Config::default(), tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!((code, lines), (1, vec![line(tracing::Level::ERROR, "to-tag=<null> avp=<null> du=<null>")]));
    }

    #[test]
    fn xlog_2_maps_every_level() {
        let cases = [
            ("L_ALERT", tracing::Level::ERROR),
            ("L_CRIT", tracing::Level::ERROR),
            ("L_ERR", tracing::Level::ERROR),
            ("L_WARN", tracing::Level::WARN),
            ("L_NOTICE", tracing::Level::INFO),
            ("L_INFO", tracing::Level::INFO),
            ("L_DBG", tracing::Level::DEBUG),
        ];
        for (name, expected) in cases {
            let level = Level::parse(name).unwrap();
            let f = fmt(&format!("{name}: $ci\n"));
            let (code, lines) = run(&Config::default(), tracing::Level::TRACE, |c| xlog_2(c, level, &f));
            assert_eq!(code, 1, "{name}");
            assert_eq!(lines, vec![line(expected, &format!("{name}: a84b4c76e66710@pc33.example.com"))], "{name}");
        }
    }

    #[test]
    fn xdbg_logs_at_debug() {
        let f = fmt("cseq $cs\n");
        let (code, lines) = run(&Config::default(), tracing::Level::TRACE, |c| xdbg(c, &f));
        assert_eq!((code, lines), (1, vec![line(tracing::Level::DEBUG, "cseq 314159")]));
    }

    #[test]
    fn a_level_not_enabled_logs_nothing() {
        let f = fmt("hidden $ru\n");
        let (code, lines) = run(&Config::default(), tracing::Level::INFO, |c| xdbg(c, &f));
        assert_eq!((code, lines.len()), (1, 0));
        let (code, lines) = run(&Config::default(), tracing::Level::WARN, |c| xlog_2(c, Level::Info, &f));
        assert_eq!((code, lines.len()), (1, 0));
        let (code, lines) = run(&Config::default(), tracing::Level::WARN, |c| xlog_2(c, Level::Warn, &f));
        assert_eq!((code, lines), (1, vec![line(tracing::Level::WARN, "hidden sip:bob@biloxi.example.com")]));
    }

    #[test]
    fn buf_size_bounds_a_line() {
        let mut config = Config::default();
        config.params.set("xlog", "buf_size", Value::Int(11));
        // 10 bytes (with the newline) fit in a buffer of 11.
        let f = fmt("$rm 12\n");
        let (code, lines) = run(&config, tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!((code, lines), (1, vec![line(tracing::Level::ERROR, "INVITE 12")]));
        // 11 do not: the line is cut to 10 bytes, the overflow reported, -1.
        let f = fmt("$rm 1234\n");
        let (code, lines) = run(&config, tracing::Level::TRACE, |c| xlog_2(c, Level::Info, &f));
        assert_eq!(code, -1);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], line(tracing::Level::INFO, "INVITE 123"));
        assert_eq!(lines[1].0, tracing::Level::ERROR);
        assert!(lines[1].2.contains("increase buf_size"));
        // The cut falls on a character boundary.
        let f = fmt("$rm 12é\n");
        let (code, lines) = run(&config, tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!((code, lines[0].2.as_str()), (-1, "INVITE 12"));
        // An empty buffer logs nothing but the error (modparams are read
        // once, as the config was loaded: a config of its own).
        let mut config = Config::default();
        config.params.set("xlog", "buf_size", Value::Int(0));
        let (code, lines) = run(&config, tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!((code, lines.len()), (-1, 1));
    }

    #[test]
    fn the_default_buffer_is_4096() {
        let f = fmt(&format!("{}\n", "x".repeat(4094)));
        let (code, lines) = run(&Config::default(), tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!((code, lines[0].2.len()), (1, 4094));
        let f = fmt(&"x".repeat(4096));
        let (code, lines) = run(&Config::default(), tracing::Level::TRACE, |c| xlog_1(c, &f));
        assert_eq!((code, lines[0].2.len()), (-1, 4095));
    }
}
