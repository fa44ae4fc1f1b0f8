//! The domain module through a compiled config (tests/db/domain.cfg) over a
//! real SQLite `domain` table, in both `db_mode`s: 0 asks the database at
//! each call (so a domain added later counts at once), 1 answers from the
//! table loaded at start. Names compare without regard to case.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::db::{self, users, Db, DbUrl};
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::Value;
use serc_runtime::sip::{Framing, Message, StartLine};

const PROXY: &str = "127.0.0.1:5060";

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

/// A database with example.com local, and the compiled config over it.
fn setup(name: &str, db_mode: i64) -> (TempDir, Db, Proxy<impl Script>) {
    let dir = std::env::temp_dir().join(format!("serc-domain-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("serc.sqlite");
    let db = Db::open(&DbUrl::Sqlite(path.clone()), db::DEFAULT_TIMEOUT).unwrap();
    runtime().block_on(async {
        db::schema::init(&db).await.unwrap();
        assert!(users::add_domain(&db, "Example.COM").await.unwrap());
    });
    let launch = serc_macros::include_cfg!("tests/db/domain.cfg");
    let mut config = launch.settings.config.clone();
    config.locals = vec![Local::new(Transport::Udp, PROXY.parse::<SocketAddr>().unwrap())];
    config.params.set("domain", "db_url", Value::Str(format!("sqlite://{}", path.display())));
    config.params.set("domain", "db_mode", Value::Int(db_mode));
    runtime().block_on(serc_runtime::modules::domain::start(&config)).expect("domain starts");
    (TempDir(dir), db, Proxy::new(launch.script, config))
}

fn answer<S: Script>(proxy: &Proxy<S>, from: &str, to: &str) -> String {
    let request = Bytes::from(format!(
        "OPTIONS sip:bob@{to} SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-domain\r\n\
         To: <sip:bob@{to}>\r\n\
         From: <sip:alice@{from}>;tag=1\r\n\
         Call-ID: domain@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         Content-Length: 0\r\n\r\n"
    ));
    let source =
        Source { transport: Transport::Udp, addr: "127.0.0.1:40000".parse().unwrap(), local: PROXY.parse().unwrap() };
    let sent = proxy.route(request, source, Framing::Datagram);
    assert_eq!(sent.len(), 1);
    let msg = Message::parse(sent[0].bytes.clone(), Framing::Datagram).unwrap();
    let StartLine::Response { code, reason, .. } = msg.start else { panic!("not a reply") };
    format!("{code} {}", msg.text(reason))
}

#[test]
fn db_mode_0_asks_the_table_at_each_call() {
    let (_dir, db, p) = setup("mode0", 0);
    assert_eq!(answer(&p, "example.com", "EXAMPLE.com"), "200 from local to local");
    assert_eq!(answer(&p, "example.com", "example.net"), "200 from local to elsewhere");
    assert_eq!(answer(&p, "example.net", "example.com"), "403 from elsewhere to local");
    assert_eq!(answer(&p, "example.net", "example.org"), "403 relaying denied");
    runtime().block_on(async { users::add_domain(&db, "example.net").await.unwrap() });
    assert_eq!(answer(&p, "example.net", "example.org"), "200 from local to elsewhere", "seen at once");
    // A database that fails: not local, and the proxy goes on.
    runtime().block_on(async { db.batch("DROP TABLE domain").await.unwrap() });
    assert_eq!(answer(&p, "example.com", "example.com"), "403 relaying denied");
}

#[test]
fn db_mode_1_answers_from_the_table_loaded_at_start() {
    let (_dir, db, p) = setup("mode1", 1);
    assert_eq!(answer(&p, "EXAMPLE.COM", "example.com"), "200 from local to local");
    runtime().block_on(async { users::add_domain(&db, "example.net").await.unwrap() });
    assert_eq!(answer(&p, "example.net", "example.org"), "403 relaying denied", "loaded at start only");
    runtime().block_on(async { db.batch("DROP TABLE domain").await.unwrap() });
    assert_eq!(answer(&p, "example.com", "example.com"), "200 from local to local", "from memory");
}
