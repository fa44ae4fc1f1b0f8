//! Digest authentication through a compiled config (tests/db/auth.cfg)
//! against a real SQLite `subscriber` table: the right password is accepted,
//! wrong ones and unknown users are refused, an expired nonce with the right
//! response is answered `stale=true`, a replayed (nonce, nc) pair is refused
//! while a rising nc is accepted, a failing database gets a 500, and
//! `consume_credentials` keeps the credentials from travelling on.
//!
//! The responses are computed here, independently of serc (RFC 2617 §3.2.2).

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use md5::{Digest, Md5};
use serc_runtime::app::{Proxy, Script};
use serc_runtime::db::{self, users, Db, DbUrl};
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::Value;
use serc_runtime::sip::{Framing, Message, StartLine};

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";

struct TempDb {
    dir: PathBuf,
    db: Db,
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_db(name: &str) -> TempDb {
    let dir = std::env::temp_dir().join(format!("serc-auth-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let url = DbUrl::Sqlite(dir.join("serc.sqlite"));
    let db = Db::open(&url, db::DEFAULT_TIMEOUT).unwrap();
    let alice = users::Account::parse("sip:alice@example.com").unwrap();
    runtime().block_on(async {
        db::schema::init(&db).await.unwrap();
        users::add_user(&db, &alice, "wonderland").await.unwrap();
        db.execute("UPDATE subscriber SET rpid = ? WHERE username = ?", vec!["+4930123".into(), "alice".into()])
            .await
            .unwrap();
    });
    TempDb { dir, db }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// The compiled registrar.cfg, its database at `db` and `nonce_expire` seconds.
fn proxy(db: &TempDb, nonce_expire: i64) -> Proxy<impl Script> {
    let launch = serc_macros::include_cfg!("tests/db/auth.cfg");
    let mut config = launch.settings.config.clone();
    let local: SocketAddr = PROXY.parse().unwrap();
    config.locals = vec![Local::new(Transport::Udp, local)];
    let url = format!("sqlite://{}", db.dir.join("serc.sqlite").display());
    config.params.set("auth_db", "db_url", Value::Str(url));
    config.params.set("auth", "nonce_expire", Value::Int(nonce_expire));
    assert!(config.params.is_loaded("auth_db"), "the generated settings name the modules loaded");
    runtime().block_on(serc_runtime::modules::auth_db::start(&config)).expect("auth_db starts");
    Proxy::new(launch.script, config)
}

fn source() -> Source {
    Source { transport: Transport::Udp, addr: CLIENT.parse().unwrap(), local: PROXY.parse().unwrap() }
}

fn md5_hex(s: &str) -> String {
    Md5::digest(s.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Credentials for `user` with `password` answering `nonce` (with `qop=auth`
/// and `nc` when given).
fn credentials(
    user: &str,
    realm: &str,
    password: &str,
    method: &str,
    uri: &str,
    nonce: &str,
    nc: Option<u32>,
) -> String {
    let ha1 = md5_hex(&format!("{user}:{realm}:{password}"));
    let ha2 = md5_hex(&format!("{method}:{uri}"));
    match nc {
        Some(nc) => {
            let nc = format!("{nc:08x}");
            let response = md5_hex(&format!("{ha1}:{nonce}:{nc}:c0ffee:auth:{ha2}"));
            format!(
                "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
                 response=\"{response}\", algorithm=MD5, qop=auth, nc={nc}, cnonce=\"c0ffee\""
            )
        }
        None => {
            let response = md5_hex(&format!("{ha1}:{nonce}:{ha2}"));
            format!(
                "Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{uri}\", \
                 response=\"{response}\""
            )
        }
    }
}

fn request(method: &str, user: &str, auth_header: Option<(&str, String)>) -> Bytes {
    let auth = auth_header.map(|(name, value)| format!("{name}: {value}\r\n")).unwrap_or_default();
    Bytes::from(format!(
        "{method} sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{method}-{user}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:{user}@example.com>;tag=1\r\n\
         Call-ID: auth-{user}@test\r\n\
         CSeq: 1 {method}\r\n\
         {auth}\
         Content-Length: 0\r\n\r\n"
    ))
}

/// What the proxy sent: the reply's status line and its challenge header (if
/// any), or the request it forwarded.
enum Sent {
    Reply { status: String, challenge: Option<String> },
    Forwarded(String),
}

fn send<S: Script>(proxy: &Proxy<S>, bytes: Bytes) -> Sent {
    let sent = proxy.route(bytes, source(), Framing::Datagram);
    assert_eq!(sent.len(), 1, "one message out");
    let msg = Message::parse(sent[0].bytes.clone(), Framing::Datagram).expect("what serc sent parses");
    match msg.start {
        StartLine::Response { code, reason, .. } => {
            let challenge = msg
                .headers
                .iter()
                .find(|h| matches!(msg.text(h.name_span), "WWW-Authenticate" | "Proxy-Authenticate"))
                .map(|h| msg.text(h.value).to_string());
            Sent::Reply { status: format!("{code} {}", msg.text(reason)), challenge }
        }
        StartLine::Request { .. } => Sent::Forwarded(String::from_utf8_lossy(&sent[0].bytes).into_owned()),
    }
}

fn reply<S: Script>(proxy: &Proxy<S>, bytes: Bytes) -> (String, Option<String>) {
    match send(proxy, bytes) {
        Sent::Reply { status, challenge } => (status, challenge),
        Sent::Forwarded(text) => panic!("forwarded instead of answered:\n{text}"),
    }
}

fn nonce_of(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").expect("a nonce") + 7;
    challenge[start..].split('"').next().unwrap().to_string()
}

#[test]
fn a_register_is_challenged_then_accepted_with_the_right_password_only() {
    let db = temp_db("register");
    let p = proxy(&db, 300);
    let (status, challenge) = reply(&p, request("REGISTER", "alice", None));
    assert_eq!(status, "401 Unauthorized");
    let challenge = challenge.expect("a WWW-Authenticate challenge");
    assert!(challenge.starts_with("Digest realm=\"example.com\", nonce=\""), "{challenge}");
    assert!(challenge.ends_with(", qop=\"auth\""), "{challenge}");
    let nonce = nonce_of(&challenge);

    let uri = "sip:example.com";
    let good = credentials("alice", "example.com", "wonderland", "REGISTER", uri, &nonce, Some(1));
    let (status, _) = reply(&p, request("REGISTER", "alice", Some(("Authorization", good.clone()))));
    assert_eq!(status, "200 welcome alice rpid=+4930123", "the rpid column loaded as an AVP");

    // The same (nonce, nc) again: a replay, refused; answered stale=true
    // because the response itself was right.
    let (status, challenge) = reply(&p, request("REGISTER", "alice", Some(("Authorization", good))));
    assert_eq!(status, "401 Unauthorized");
    assert!(challenge.unwrap().ends_with("stale=true"), "a replayed nc");

    // The client's next request with the same nonce and a higher nc: accepted.
    let next = credentials("alice", "example.com", "wonderland", "REGISTER", uri, &nonce, Some(2));
    let (status, _) = reply(&p, request("REGISTER", "alice", Some(("Authorization", next))));
    assert_eq!(status, "200 welcome alice rpid=+4930123");

    // A wrong password: a fresh challenge, not stale.
    let wrong = credentials("alice", "example.com", "rabbit", "REGISTER", uri, &nonce, Some(3));
    let (status, challenge) = reply(&p, request("REGISTER", "alice", Some(("Authorization", wrong))));
    assert_eq!(status, "401 Unauthorized");
    assert!(!challenge.unwrap().contains("stale"));

    // A nonce of another secret (or forged): challenged again, not stale.
    let forged = format!("{}{}", &nonce[..16], "0".repeat(32));
    let forged = credentials("alice", "example.com", "wonderland", "REGISTER", uri, &forged, Some(1));
    let (status, challenge) = reply(&p, request("REGISTER", "alice", Some(("Authorization", forged))));
    assert_eq!(status, "401 Unauthorized");
    assert!(!challenge.unwrap().contains("stale"));

    // Credentials for another realm do not count.
    let elsewhere = credentials("alice", "example.net", "wonderland", "REGISTER", uri, &nonce, Some(4));
    let (status, _) = reply(&p, request("REGISTER", "alice", Some(("Authorization", elsewhere))));
    assert_eq!(status, "401 Unauthorized");
}

#[test]
fn an_expired_nonce_with_the_right_response_is_stale() {
    let db = temp_db("stale");
    let p = proxy(&db, 0);
    let (_, challenge) = reply(&p, request("REGISTER", "alice", None));
    let nonce = nonce_of(&challenge.unwrap());
    // The nonce expires at the second it was made.
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let good = credentials("alice", "example.com", "wonderland", "REGISTER", "sip:example.com", &nonce, Some(1));
    let (status, challenge) = reply(&p, request("REGISTER", "alice", Some(("Authorization", good))));
    assert_eq!(status, "401 Unauthorized");
    let challenge = challenge.unwrap();
    assert!(challenge.ends_with(", qop=\"auth\", stale=true"), "{challenge}");
    assert_ne!(nonce_of(&challenge), nonce, "a new nonce");
    // With a wrong password an expired nonce is not `stale`: the user must be asked.
    let wrong = credentials("alice", "example.com", "rabbit", "REGISTER", "sip:example.com", &nonce, Some(2));
    let (_, challenge) = reply(&p, request("REGISTER", "alice", Some(("Authorization", wrong))));
    assert!(!challenge.unwrap().contains("stale"));
}

#[test]
fn a_proxy_challenges_unknown_users_and_consumes_the_credentials() {
    let db = temp_db("proxy");
    let p = proxy(&db, 300);
    let (status, challenge) = reply(&p, request("INVITE", "alice", None));
    assert_eq!(status, "407 Proxy Authentication Required");
    let challenge = challenge.unwrap();
    // The realm is the From host; qop 0: no qop.
    assert!(challenge.starts_with("Digest realm=\"example.com\""), "{challenge}");
    assert!(!challenge.contains("qop"));
    let nonce = nonce_of(&challenge);

    let uri = "sip:alice@example.com";
    let good = credentials("alice", "example.com", "wonderland", "INVITE", uri, &nonce, None);
    match send(&p, request("INVITE", "alice", Some(("Proxy-Authorization", good.clone())))) {
        Sent::Forwarded(text) => {
            assert!(text.starts_with("INVITE sip:alice@example.com SIP/2.0\r\n"));
            assert!(!text.contains("Proxy-Authorization"), "consumed:\n{text}");
        }
        Sent::Reply { status, .. } => panic!("answered {status}"),
    }
    // Without qop a nonce may be used again until it expires (RFC 2617, 1.3).
    assert!(matches!(send(&p, request("INVITE", "alice", Some(("Proxy-Authorization", good)))), Sent::Forwarded(_)));

    let bob = credentials("bob", "example.com", "x", "INVITE", "sip:bob@example.com", &nonce, None);
    let (status, _) = reply(&p, request("INVITE", "bob", Some(("Proxy-Authorization", bob))));
    assert_eq!(status, "403 unknown user");

    // ACK and CANCEL are never challenged (OpenSER's pre_auth).
    assert!(matches!(send(&p, request("CANCEL", "alice", None)), Sent::Forwarded(_)));

    // Malformed credentials: 400.
    let (status, _) =
        reply(&p, request("INVITE", "alice", Some(("Proxy-Authorization", "Digest realm=\"example.com\"".into()))));
    assert_eq!(status, "400 Bad Request");
}

#[test]
fn a_failing_database_gets_a_500_and_a_later_lookup_works_again() {
    let db = temp_db("failing");
    let p = proxy(&db, 300);
    let (_, challenge) = reply(&p, request("REGISTER", "alice", None));
    let nonce = nonce_of(&challenge.unwrap());
    db.db.wait(db.db.batch("ALTER TABLE subscriber RENAME TO subscriber_away")).unwrap();
    let good = credentials("alice", "example.com", "wonderland", "REGISTER", "sip:example.com", &nonce, Some(1));
    let (status, _) = reply(&p, request("REGISTER", "alice", Some(("Authorization", good))));
    assert_eq!(status, "500 Server Internal Error");
    db.db.wait(db.db.batch("ALTER TABLE subscriber_away RENAME TO subscriber")).unwrap();
    let good = credentials("alice", "example.com", "wonderland", "REGISTER", "sip:example.com", &nonce, Some(2));
    let (status, _) = reply(&p, request("REGISTER", "alice", Some(("Authorization", good))));
    assert_eq!(status, "200 welcome alice rpid=+4930123");
}

fn request_from_to(method: &str, from: &str, to: &str, ruri_user: &str, auth: Option<String>) -> Bytes {
    let auth = auth.map(|v| format!("Proxy-Authorization: {v}\r\n")).unwrap_or_default();
    Bytes::from(format!(
        "{method} sip:{ruri_user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-uridb\r\n\
         To: <sip:{to}@example.com>\r\n\
         From: <sip:{from}@example.com>;tag=1\r\n\
         Call-ID: uridb@test\r\n\
         CSeq: 1 {method}\r\n\
         {auth}\
         Content-Length: 0\r\n\r\n"
    ))
}

/// uri_db over the same database: the authenticated user may use only its
/// own name in To (REGISTER) and From; the Request-URI must name a subscriber.
#[test]
fn uri_db_checks_the_names_against_the_credentials_and_the_table() {
    let db = temp_db("uri_db");
    let launch = serc_macros::include_cfg!("tests/db/uri_db.cfg");
    let mut config = launch.settings.config.clone();
    config.locals = vec![Local::new(Transport::Udp, PROXY.parse::<SocketAddr>().unwrap())];
    let url = format!("sqlite://{}", db.dir.join("serc.sqlite").display());
    for module in ["auth_db", "uri_db"] {
        config.params.set(module, "db_url", Value::Str(url.clone()));
    }
    runtime().block_on(async {
        serc_runtime::modules::auth_db::start(&config).await.unwrap();
        serc_runtime::modules::uri_db::start(&config).await.unwrap();
    });
    let p = Proxy::new(launch.script, config);
    let (_, challenge) = reply(&p, request_from_to("MESSAGE", "alice", "alice", "alice", None));
    let nonce = nonce_of(&challenge.unwrap());
    let creds =
        |method: &str, uri: &str| Some(credentials("alice", "example.com", "wonderland", method, uri, &nonce, None));
    let to_alice = "sip:alice@example.com";
    assert_eq!(reply(&p, request_from_to("REGISTER", "x", "ALICE", "alice", creds("REGISTER", to_alice))).0, "200 ok");
    let to_bob = request_from_to("REGISTER", "alice", "bob", "alice", creds("REGISTER", to_alice));
    assert_eq!(reply(&p, to_bob).0, "403 to -10");
    let from_bob = request_from_to("MESSAGE", "bob", "alice", "alice", creds("MESSAGE", to_alice));
    assert_eq!(reply(&p, from_bob).0, "403 from -10");
    let to_nobody = request_from_to("MESSAGE", "alice", "nobody", "nobody", creds("MESSAGE", "sip:nobody@example.com"));
    assert_eq!(reply(&p, to_nobody).0, "404 exist -5");
}
