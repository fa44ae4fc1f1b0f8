//! Fuzzes whole proxies, compiled with `include_cfg!`, each fed the same
//! sequence of messages from a caller, a callee and a stranger, with tm's
//! timers fired as the clock moves:
//!
//! - OpenSER 1.3's default config, as `cargo xtask bench` runs it (registrar,
//!   record-route, tm with branch, reply and failure routes, acc);
//! - examples/stateful.cfg (record-route, loose_route, uri and textops tests,
//!   t_relay with a failure route);
//! - tests/cfg/accounting_fork.cfg (a branch per registered contact: parallel
//!   forking, acc);
//! - tests/cfg/registrar_nat.cfg (Path, a received AVP, branch flags);
//! - fuzz/cfg/auth.cfg (www_authorize/www_challenge with qop before save,
//!   proxy_authorize/proxy_challenge before t_relay, consume_credentials),
//!   over an SQLite file the target makes once per process in the temporary
//!   directory, with one subscriber ([`USER`], password [`PASSWORD`]).
//!
//! Whatever comes in:
//!
//! - nothing panics (neither the route nor tm's timers);
//! - everything the proxy sends parses as a SIP message, as the proxy
//!   parses what it receives (the optional headers it relays unread are not
//!   validated): what it forwards, what it answers, what it retransmits.
//!
//! The input is a list of frames, each ended by a NUL byte (a NUL inside a
//! SIP message is refused anyway). A frame's first byte, its head, says what
//! it is (its low 3 bits) and how many seconds pass before it (the high 5
//! bits, 0–31); the rest is its text. A head is never NUL (that would end
//! the frame): the kind whose head could be NUL is the one for which that
//! frame would do nothing, the clock moving by 0 s.
//!
//! - 0, 7: only the clock moves (tm's timers fire);
//! - 1, 2, 3: a datagram from the caller (127.0.0.1:5061), the callee
//!   (127.0.0.1:5070) or a stranger (192.0.2.7:5060);
//! - 4: a stream (TCP framing) from the caller;
//! - 5: the callee's response to the last request the proxy sent it: the
//!   text's first three digits are the status code (`200` when there are
//!   none), the rest extra header lines. Its Vias, Record-Routes, From, To
//!   (with a tag), Call-ID and CSeq are the request's, so it matches the
//!   proxy's client transaction, which a mutated message rarely would;
//! - 6: a datagram from the caller answering the last challenge the proxy
//!   sent (a 401 or 407, to anyone): a line of credentials computed for the
//!   text's method, Request-URI and body (as [`USER`], with the challenge's
//!   realm and nonce, and a nonce count when it asked for `qop`) is put
//!   after the text's first line. With no challenge yet, or a text that does
//!   not parse, the text goes as it is.

#![no_main]

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::db::{self, schema, users, Db, DbUrl};
use serc_runtime::launch::Launch;
use serc_runtime::modules::auth::{self, AuthSlot, Credentials};
use serc_runtime::modules::auth_db;
use serc_runtime::proxy::{Local, Source, Target, Transport};
use serc_runtime::script::{Config, Send, Value};
use serc_runtime::sip::{Framing, HeaderName, Interest, Message};

const PROXY: &str = "127.0.0.1:5060";
const CALLER: &str = "127.0.0.1:5061";
const CALLEE: &str = "127.0.0.1:5070";
const STRANGER: &str = "192.0.2.7:5060";
/// The subscriber of fuzz/cfg/auth.cfg's database, and its password.
const USER: &str = "alice";
const PASSWORD: &str = "fuzz";

fn source(transport: Transport, addr: &str) -> Source {
    Source { transport, addr: addr.parse().expect("an address"), local: PROXY.parse().expect("an address") }
}

/// `SERC_FUZZ_TRACE` set: each frame and what the proxy sent are printed
/// (to see what a seed or a crash does: `cargo fuzz run route_sip FILE`).
fn trace() -> bool {
    static TRACE: OnceLock<bool> = OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("SERC_FUZZ_TRACE").is_some())
}

/// What a run remembers of what the proxy sent, for the frames that answer it.
#[derive(Default)]
struct Seen {
    /// The last request sent to the callee (a frame of kind 5 answers it).
    to_callee: Option<Message>,
    /// The last challenge sent (a frame of kind 6 answers it).
    challenge: Option<Challenge>,
    /// The nonce count of the last credentials made with `qop`.
    nc: u32,
}

/// A 401's WWW-Authenticate or a 407's Proxy-Authenticate.
struct Challenge {
    proxy: bool,
    realm: String,
    nonce: String,
    qop: bool,
}

impl Challenge {
    /// The challenge of a response the proxy sent, if it is one.
    fn of(msg: &Message) -> Option<Challenge> {
        let (proxy, name) = match msg.status()? {
            401 => (false, "WWW-Authenticate"),
            407 => (true, "Proxy-Authenticate"),
            _ => return None,
        };
        let value = msg.headers_by_text(name).next().map(|h| msg.text(h.value))?;
        // The proxy writes `Digest realm="…", nonce="…"[, qop="auth"]…`.
        let param = |name: &str| {
            let start = value.find(&format!("{name}=\""))? + name.len() + 2;
            let end = start + value[start..].find('"')?;
            Some(value[start..end].to_string())
        };
        Some(Challenge { proxy, realm: param("realm")?, nonce: param("nonce")?, qop: value.contains("qop=") })
    }
}

/// `text` with credentials answering `seen`'s last challenge after its
/// first line (see the module documentation, frame kind 6).
fn with_credentials(text: &[u8], seen: &mut Seen) -> Bytes {
    let plain = Bytes::copy_from_slice(text);
    let Some(challenge) = &seen.challenge else { return plain };
    let Ok(req) = Message::parse_with(plain.clone(), Framing::Datagram, Interest::NONE) else { return plain };
    let (Some(uri), Some(line_end)) = (req.request_uri(), text.iter().position(|&b| b == b'\n')) else {
        return plain;
    };
    if challenge.qop {
        seen.nc = seen.nc.wrapping_add(1);
    }
    let nc = format!("{:08x}", seen.nc);
    let creds = Credentials {
        username: USER.into(),
        realm: challenge.realm.as_str().into(),
        nonce: challenge.nonce.as_str().into(),
        uri: uri.into(),
        qop: challenge.qop.then(|| "auth".into()),
        nc: challenge.qop.then(|| nc.as_str().into()),
        cnonce: challenge.qop.then(|| "fuzz".into()),
        ..Credentials::default()
    };
    let ha1 = auth::ha1(USER, &challenge.realm, PASSWORD);
    let response = creds.expected_response(&ha1, req.method_text().as_bytes(), &req.body_bytes());
    let name = if challenge.proxy { "Proxy-Authorization" } else { "Authorization" };
    let mut line = format!(
        "{name}: Digest username=\"{USER}\", realm=\"{}\", nonce=\"{}\", uri=\"{uri}\", response=\"{response}\"",
        challenge.realm, challenge.nonce
    );
    if challenge.qop {
        line.push_str(&format!(", qop=auth, nc={nc}, cnonce=\"fuzz\""));
    }
    line.push_str("\r\n");
    let (first, rest) = text.split_at(line_end + 1);
    Bytes::from([first, line.as_bytes(), rest].concat())
}

/// Asserts that each message the proxy sent parses, and remembers in `seen`
/// what later frames answer.
fn check(sent: &[Send], seen: &mut Seen) {
    let callee: SocketAddr = CALLEE.parse().expect("an address");
    for send in sent {
        if trace() {
            eprintln!("-> {:?}\n{}", send.target, String::from_utf8_lossy(&send.bytes));
        }
        let framing = match send.target {
            Target::Addr { transport: Transport::Udp, .. } => Framing::Datagram,
            _ => Framing::Stream,
        };
        // Parsed as the proxy parses what it receives, no optional header
        // validated: a header the proxy relays without reading goes as it
        // came, malformed or not (RFC 4475 §3.1.2.12's Date in EST).
        let msg = match Message::parse_with(send.bytes.clone(), framing, Interest::NONE) {
            Ok(msg) => msg,
            // The answer to a request that did not parse copies what it could
            // of it (RFC 4475 §3.3.1: a request missing From still gets a
            // 400): it need not parse, but it is a SIP response of whole lines.
            Err(_) if is_rejection_reply(&send.bytes) => continue,
            Err(e) => panic!("the proxy sent a message that does not parse ({e:?}):\n{:?}", send.bytes),
        };
        if msg.is_request() && matches!(send.target, Target::Addr { addr, .. } if addr == callee) {
            seen.to_callee = Some(msg);
        } else if let Some(challenge) = Challenge::of(&msg) {
            seen.challenge = Some(challenge);
        }
    }
}

/// The answer to a request the parser refused (`400`, `501` or `505`): its
/// status line, then header lines `Name: value` (white space allowed before
/// the colon, the value as the request had it, folded or not, its line ends
/// as they came: CRLF or LF), then the empty line and no body.
fn is_rejection_reply(bytes: &[u8]) -> bool {
    let Some(head) = bytes.strip_suffix(b"\r\n\r\n") else { return false };
    let mut lines = head.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let status = lines.next().unwrap_or_default();
    let header = |line: &[u8]| {
        let name = line.iter().take_while(|b| b.is_ascii_graphic() && **b != b':').count();
        let colon = line[name..].iter().find(|&&b| b != b' ' && b != b'\t') == Some(&b':');
        (name > 0 && colon) || line.first().is_some_and(|b| *b == b' ' || *b == b'\t')
    };
    [&b"SIP/2.0 400 "[..], b"SIP/2.0 501 ", b"SIP/2.0 505 "].iter().any(|s| status.starts_with(s)) && lines.all(header)
}

/// The callee's response to `req`: `text` starts with the status code (else
/// 200), the rest is extra header lines.
fn response_to(req: &Message, text: &[u8]) -> Bytes {
    let digits = text.iter().take(3).take_while(|b| b.is_ascii_digit()).count();
    let (code, extra) = if digits == 3 { (&text[..3], &text[3..]) } else { (&b"200"[..], text) };
    let mut out = Vec::with_capacity(req.bytes().len() + extra.len() + 64);
    out.extend_from_slice(b"SIP/2.0 ");
    out.extend_from_slice(code);
    out.extend_from_slice(b" Fuzz\r\n");
    for h in &req.headers {
        let keep = matches!(
            h.name,
            HeaderName::Via | HeaderName::RecordRoute | HeaderName::From | HeaderName::CallId | HeaderName::CSeq
        );
        let line = &req.bytes()[h.line.range()];
        if keep {
            out.extend_from_slice(line);
        } else if h.name == HeaderName::To {
            let line = line.strip_suffix(b"\r\n").unwrap_or(line);
            out.extend_from_slice(line);
            if req.to_tag.is_none() {
                out.extend_from_slice(b";tag=callee");
            }
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(extra);
    out.extend_from_slice(b"Content-Length: 0\r\n\r\n");
    Bytes::from(out)
}

/// A proxy of `launch` listening on [`PROXY`] (UDP).
fn proxy<S: Script>(launch: Launch<S>) -> Proxy<S> {
    let local: SocketAddr = PROXY.parse().expect("an address");
    Proxy::new(launch.script, Config { locals: vec![Local::new(Transport::Udp, local)], ..launch.settings.config })
}

/// fuzz/cfg/auth.cfg's config, its db_url pointing at the database made
/// once per process (an SQLite file in the temporary directory holding
/// [`USER`]), its nonces and database shared by the proxies of every run.
fn with_database(mut config: Config) -> Config {
    static SHARED: OnceLock<(String, AuthSlot)> = OnceLock::new();
    let (url, slot) = SHARED.get_or_init(|| {
        let path = std::env::temp_dir().join(format!("serc-fuzz-auth-{}.sqlite", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        let database = Db::open(&DbUrl::Sqlite(path), db::DEFAULT_TIMEOUT).expect("the SQLite file opens");
        let account = users::Account::parse(&format!("sip:{USER}@127.0.0.1")).expect("an account");
        let d = database.clone();
        database
            .wait(async move {
                schema::init(&d).await?;
                users::add_user(&d, &account, PASSWORD).await
            })
            .expect("the subscriber is added");
        let mut first = config.clone();
        first.params.set("auth_db", "db_url", Value::Str(url.clone()));
        let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
        runtime.block_on(auth_db::start(&first)).expect("auth_db starts");
        (url, first.auth)
    });
    config.params.set("auth_db", "db_url", Value::Str(url.clone()));
    config.auth = slot.clone();
    config
}

/// Feeds `data`'s frames to `proxy`.
fn run<S: Script>(proxy: &Proxy<S>, data: &[u8]) {
    let mut now = Instant::now();
    let mut seen = Seen::default();
    for frame in data.split(|&b| b == 0) {
        let Some((&head, text)) = frame.split_first() else { continue };
        now += Duration::from_secs(u64::from(head >> 3));
        check(&proxy.tm_timeout(now), &mut seen);
        let (bytes, src, framing) = match head & 7 {
            1 => (Bytes::copy_from_slice(text), source(Transport::Udp, CALLER), Framing::Datagram),
            2 => (Bytes::copy_from_slice(text), source(Transport::Udp, CALLEE), Framing::Datagram),
            3 => (Bytes::copy_from_slice(text), source(Transport::Udp, STRANGER), Framing::Datagram),
            4 => (Bytes::copy_from_slice(text), source(Transport::Tcp, CALLER), Framing::Stream),
            5 => match &seen.to_callee {
                Some(req) => (response_to(req, text), source(Transport::Udp, CALLEE), Framing::Datagram),
                None => continue,
            },
            6 => (with_credentials(text, &mut seen), source(Transport::Udp, CALLER), Framing::Datagram),
            _ => continue,
        };
        if trace() {
            eprintln!("<- {:?} {:?}\n{}", src.transport, src.addr, String::from_utf8_lossy(&bytes));
        }
        check(&proxy.route_at(now, bytes, src, framing), &mut seen);
    }
}

fuzz_target!(|data: &[u8]| {
    let trace_config = |name: &str| {
        if trace() {
            eprintln!("==== {name}");
        }
    };
    trace_config("bench/configs/openser-openser-default.cfg");
    run(&proxy(serc_macros::include_cfg!("../bench/configs/openser-openser-default.cfg")), data);
    trace_config("examples/stateful.cfg");
    run(&proxy(serc_macros::include_cfg!("../examples/stateful.cfg")), data);
    trace_config("tests/cfg/accounting_fork.cfg");
    run(&proxy(serc_macros::include_cfg!("../tests/cfg/accounting_fork.cfg")), data);
    trace_config("tests/cfg/registrar_nat.cfg");
    run(&proxy(serc_macros::include_cfg!("../tests/cfg/registrar_nat.cfg")), data);
    trace_config("fuzz/cfg/auth.cfg");
    let mut auth = serc_macros::include_cfg!("cfg/auth.cfg");
    auth.settings.config = with_database(auth.settings.config);
    run(&proxy(auth), data);
});
