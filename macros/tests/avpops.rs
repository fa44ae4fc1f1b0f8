//! avpops through a compiled config (tests/db/avpops.cfg) over a real SQLite
//! `usr_preferences` table: store/load/delete round trips per user, per
//! domain and per uuid, `avp_db_query` with and without destinations, a
//! failing database, and the operations in memory (op, check, copy, pushto,
//! subst, delete, is_avp_set). The user part of the Request-URI names the
//! case; the reply's reason phrase shows the AVPs.

use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::db::{self, Db, DbUrl};
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

/// An empty database and the compiled config over it.
fn setup(name: &str, use_domain: i64) -> (TempDir, Db, Proxy<impl Script>) {
    let dir = std::env::temp_dir().join(format!("serc-avpops-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("serc.sqlite");
    let db = Db::open(&DbUrl::Sqlite(path.clone()), db::DEFAULT_TIMEOUT).unwrap();
    runtime().block_on(async { db::schema::init(&db).await.unwrap() });
    let launch = serc_macros::include_cfg!("tests/db/avpops.cfg");
    let mut config = launch.settings.config.clone();
    config.locals = vec![Local::new(Transport::Udp, PROXY.parse::<SocketAddr>().unwrap())];
    assert!(config.params.is_loaded("avpops"));
    config.params.set("avpops", "db_url", Value::Str(format!("sqlite://{}", path.display())));
    config.params.set("avpops", "use_domain", Value::Int(use_domain));
    runtime().block_on(serc_runtime::modules::avpops::start(&config)).expect("avpops starts");
    (TempDir(dir), db, Proxy::new(launch.script, config))
}

/// The reply to case `case` from `from` (`user@domain`), with `X-Value: value`.
fn answer<S: Script>(proxy: &Proxy<S>, case: &str, from: &str, value: &str) -> String {
    let request = Bytes::from(format!(
        "OPTIONS sip:{case}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP 127.0.0.1:40000;branch=z9hG4bK-avpops\r\n\
         To: <sip:{case}@example.com>\r\n\
         From: <sip:{from}>;tag=1\r\n\
         Call-ID: avpops@test\r\n\
         CSeq: 1 OPTIONS\r\n\
         X-Value: {value}\r\n\
         Content-Length: 0\r\n\r\n"
    ));
    let source =
        Source { transport: Transport::Udp, addr: "127.0.0.1:40000".parse().unwrap(), local: PROXY.parse().unwrap() };
    let sent = proxy.route(request, source, Framing::Datagram);
    assert_eq!(sent.len(), 1, "{case}: one reply");
    let msg = Message::parse(sent[0].bytes.clone(), Framing::Datagram).unwrap();
    let StartLine::Response { code, reason, .. } = msg.start else { panic!("not a reply") };
    format!("{code} {}", msg.text(reason))
}

fn rows(db: &Db) -> Vec<(String, String, String, String, String, i64)> {
    let sql = "SELECT uuid, username, domain, attribute, value, type FROM usr_preferences ORDER BY id";
    let rows = runtime().block_on(db.query(sql, vec![])).unwrap();
    rows.iter()
        .map(|r| {
            let t = |i| r.text(i).unwrap_or_default();
            (t(0), t(1), t(2), t(3), t(4), r.int(5).unwrap())
        })
        .collect()
}

#[test]
fn store_load_delete_per_user() {
    let (_dir, db, p) = setup("user", 0);
    assert_eq!(answer(&p, "load", "alice@example.com", ""), "404 nothing loaded");
    assert_eq!(answer(&p, "store", "alice@example.com", "blue"), "200 stored");
    assert_eq!(answer(&p, "store", "bob@example.com", "red"), "200 stored");
    assert_eq!(
        rows(&db)[..2],
        [
            ("".into(), "alice".into(), "".into(), "color".into(), "blue".into(), 0),
            ("".into(), "alice".into(), "".into(), "5".into(), "7".into(), 3),
        ],
        "string name and value: type 0; integer name and value: type 3"
    );
    assert_eq!(answer(&p, "load", "alice@example.com", ""), "200 color=blue five=7");
    assert_eq!(answer(&p, "load", "bob@example.com", ""), "200 color=red five=7");
    // Without use_domain, the user's rows are found from any domain.
    assert_eq!(answer(&p, "load", "alice@example.net", ""), "200 color=blue five=7");
    assert_eq!(answer(&p, "load-color", "alice@example.com", ""), "200 color=blue five=<null>");
    assert_eq!(answer(&p, "load-int", "alice@example.com", ""), "200 color=<null> five=7");

    assert_eq!(answer(&p, "delete-color", "alice@example.com", ""), "200 deleted");
    assert_eq!(answer(&p, "load-color", "alice@example.com", ""), "404 no color");
    assert_eq!(answer(&p, "load", "alice@example.com", ""), "200 color=<null> five=7");
    assert_eq!(answer(&p, "load", "bob@example.com", ""), "200 color=red five=7", "bob's rows stay");
    assert_eq!(answer(&p, "delete-all", "alice@example.com", ""), "200 deleted");
    assert_eq!(answer(&p, "load", "alice@example.com", ""), "404 nothing loaded");
    assert_eq!(rows(&db).len(), 2);
    // Every AVP of a type at once: the string-named ones, not i:5.
    assert_eq!(answer(&p, "store-all", "erin@example.com", "teal"), "200 stored");
    let erin: Vec<(String, String, i64)> =
        rows(&db).into_iter().filter(|r| r.1 == "erin").map(|r| (r.3, r.4, r.5)).collect();
    assert_eq!(erin, [("size".into(), "3".into(), 1), ("color".into(), "teal".into(), 0)]);
}

#[test]
fn use_domain_and_domain_and_uuid_keys() {
    let (_dir, db, p) = setup("domain", 1);
    assert_eq!(answer(&p, "store", "alice@example.com", "green"), "200 stored");
    assert_eq!(rows(&db)[0].2, "example.com", "use_domain stores the domain");
    // `$fu/username` stored `five` without a domain (as 1.3 did): with
    // use_domain, a load by URI does not find it.
    assert_eq!(answer(&p, "load", "alice@example.com", ""), "200 color=green five=<null>");
    assert_eq!(answer(&p, "load", "alice@example.net", ""), "404 nothing loaded", "another domain");

    // Per domain: the domain's preferences, whoever asks.
    assert_eq!(answer(&p, "store-domain", "admin@example.org", "de"), "200 stored");
    assert_eq!(answer(&p, "load-domain", "carol@example.org", ""), "200 lang=de");
    assert_eq!(answer(&p, "load-domain", "carol@example.com", ""), "404 no lang");

    // By uuid (here the From user).
    assert_eq!(answer(&p, "store-uuid", "dave@example.com", "hello"), "200 stored");
    let last = rows(&db).pop().unwrap();
    assert_eq!((last.0.as_str(), last.1.as_str(), last.3.as_str()), ("dave", "", "note"));
    assert_eq!(answer(&p, "load-uuid", "dave@example.org", ""), "200 note=hello");
    assert_eq!(answer(&p, "load-uuid", "erin@example.com", ""), "404 no note");
}

#[test]
fn db_query_fills_avps() {
    let (_dir, db, p) = setup("query", 0);
    assert_eq!(answer(&p, "store", "alice@example.com", "blue"), "200 stored");
    // Rows ordered by attribute: "5" then "color"; the first row is newest.
    assert_eq!(answer(&p, "query", "alice@example.com", ""), "200 5=7 then color=blue");
    assert_eq!(answer(&p, "query-ints", "alice@example.com", ""), "200 42 x <null>");
    assert_eq!(answer(&p, "query-bad", "alice@example.com", ""), "500 query failed");

    // A database that fails: -1 and the proxy goes on.
    runtime().block_on(async { db.batch("DROP TABLE usr_preferences").await.unwrap() });
    assert_eq!(answer(&p, "load", "alice@example.com", ""), "404 nothing loaded");
    assert_eq!(answer(&p, "store", "alice@example.com", "blue"), "500 store color failed");
    assert_eq!(answer(&p, "delete-all", "alice@example.com", ""), "500 delete failed");
    assert_eq!(answer(&p, "op", "alice@example.com", ""), "200 sum=15 prod=30,45 mod=1 and=2 old=<null>");
}

#[test]
fn operations_in_memory() {
    let (_dir, _db, p) = setup("memory", 0);
    let ask = |case| answer(&p, case, "alice@example.com", "");
    // 10+5=15 on top of 10; every integer value times 3 into prod (as in 1.3,
    // the oldest source's result ends newest); 3%2 into mod; 6&3 replacing 6 (d).
    assert_eq!(ask("op"), "200 sum=15 prod=30,45 mod=1 and=2 old=<null>");
    assert_eq!(ask("check"), "200 eq_i=y eq=<null> re=y fm=y gt=y and=y mixed=<null> pvar=y all=y first=<null>");
    // b: the newest; i:9 every value as numbers (the oldest ends newest, as in 1.3).
    assert_eq!(ask("copy"), "200 b=22 i9=1,22 c=1,22");
    assert_eq!(ask("pushto"), "200 ru=sip:carol@example.com du=sip:10.0.0.1:5070 br=sip:dave@example.org");
    // With g: the first value rewrites the Request-URI, the next one pushes it to a branch first.
    assert_eq!(ask("pushto-all"), "200 ru=sip:pushto-all@b.example.com br=sip:pushto-all@a.example.com");
    assert_eq!(ask("subst"), "200 u=sip:alice@new.example.com out=bob at example.com u2=sip:bob@old.example.com");
    assert_eq!(ask("delete"), "200 after one delete: two");
    // `s` took every string AVP, `i` every number; `*/g` on nothing is -1.
    assert_eq!(ask("delete-type"), "200 a=<null> b=<null>");
    assert_eq!(ask("is-set"), "200 empty=y zero=y text_empty=<null> num=y text_num=<null> str=y missing=<null>");
    assert_eq!(ask("refused"), "200 refused");
}
