//! usrloc's database modes through registrar and the proxy pipeline, on real
//! databases: `db_mode` 1 (write-through) keeps bindings and their expiries
//! across a restart and answers 500 when its write fails, then recovers by
//! itself; `db_mode` 2 (write-back) writes on its timer; `db_mode` 3 is one
//! table shared by two proxies (PostgreSQL). Tables with a wrong layout are
//! refused at start. MariaDB: write-through across a restart.

mod db_support;

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use serc_runtime::app::{Proxy, Script};
use serc_runtime::db::{schema, Db, DbUrl, Value as DbValue};
use serc_runtime::modules::{core, registrar, sl, usrloc};
use serc_runtime::proxy::{Local, Source, Transport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, Value};
use serc_runtime::sip::{Framing, HeaderName, Message, Method, StartLine};

/// `route { if (is_method("REGISTER")) { save("location"); exit; }
///          if (lookup("location")) { sl_send_reply("299", "<the R-URI>"); exit; }
///          sl_send_reply("404", "Not Found"); }`
struct Registrar;

impl Script for Registrar {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Register) {
            registrar::save_1(ctx, "location");
            return Flow::Exit;
        }
        match registrar::lookup(ctx, "location") {
            1 => {
                let text = ctx.request_uri().to_string();
                sl::sl_send_reply(ctx, &ReplyCode::Fixed(299), &Format::literal(&text));
            }
            -1 => {
                sl::sl_send_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("Not Found"));
            }
            _ => {
                sl::sl_send_reply(ctx, &ReplyCode::Fixed(500), &Format::literal("Lookup Failed"));
            }
        }
        let _ = core::forward_0;
        Flow::Exit
    }
}

const PROXY: &str = "127.0.0.1:5060";
const CLIENT: &str = "127.0.0.1:40000";

fn config(params: &[(&str, Value)]) -> Config {
    let local: SocketAddr = PROXY.parse().unwrap();
    let mut config = Config { locals: vec![Local::new(Transport::Udp, local)], ..Config::default() };
    for (p, v) in params {
        config.params.set("usrloc", p, v.clone());
    }
    config
}

/// A proxy persisting its location table as `params` say (started as a proxy starts).
async fn proxy(params: &[(&str, Value)]) -> Result<Proxy<Registrar>, String> {
    let config = config(params);
    usrloc::start(&config).await?;
    Ok(Proxy::new(Registrar, config))
}

fn register(user: &str, callid: &str, cseq: u32, contact: Option<&str>, expires: Option<u32>) -> Bytes {
    let contact = contact.map(|c| format!("Contact: {c}\r\n")).unwrap_or_default();
    let expires = expires.map(|e| format!("Expires: {e}\r\n")).unwrap_or_default();
    Bytes::from(format!(
        "REGISTER sip:{PROXY} SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-{callid}-{cseq}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:{user}@example.com>;tag=reg\r\n\
         Call-ID: {callid}\r\n\
         CSeq: {cseq} REGISTER\r\n\
         User-Agent: usrloc-db-test\r\n\
         {contact}{expires}Content-Length: 0\r\n\r\n"
    ))
}

fn invite(user: &str) -> Bytes {
    Bytes::from(format!(
        "INVITE sip:{user}@example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {CLIENT};branch=z9hG4bK-inv-{user}\r\n\
         Max-Forwards: 70\r\n\
         To: <sip:{user}@example.com>\r\n\
         From: <sip:caller@example.com>;tag=1\r\n\
         Call-ID: inv-{user}\r\n\
         CSeq: 1 INVITE\r\n\
         Content-Length: 0\r\n\r\n"
    ))
}

/// The one reply: code, reason, Contact header text, P-Registrar-Error text.
fn send(proxy: &Proxy<Registrar>, bytes: Bytes) -> (u16, String, String, String) {
    let source = Source { transport: Transport::Udp, addr: CLIENT.parse().unwrap(), local: PROXY.parse().unwrap() };
    let out = proxy.route(bytes, source, Framing::Datagram);
    assert_eq!(out.len(), 1, "one reply");
    let msg = Message::parse(out[0].bytes.clone(), Framing::Datagram).unwrap();
    let StartLine::Response { code, reason, .. } = msg.start else { panic!("a reply") };
    let contacts = msg.headers_named(HeaderName::Contact).map(|h| msg.text(h.value).to_string()).collect::<Vec<_>>();
    let error = msg.headers_by_text("P-Registrar-Error").map(|h| msg.text(h.value).to_string()).collect::<String>();
    (code, msg.text(reason).to_string(), contacts.join(", "), error)
}

fn url(u: &str) -> (&'static str, Value) {
    ("db_url", Value::Str(u.to_string()))
}

fn mode(m: i64) -> (&'static str, Value) {
    ("db_mode", Value::Int(m))
}

/// The expires a 200 lists for its first contact.
fn listed_expires(contacts: &str) -> i64 {
    let at = contacts.find("expires=").expect("an expires") + "expires=".len();
    contacts[at..].split([',', ';']).next().unwrap().trim().parse().unwrap()
}

async fn init(u: &str) -> Db {
    let db = Db::open(&DbUrl::parse(u).unwrap(), Duration::from_secs(5)).unwrap();
    schema::init(&db).await.unwrap();
    db
}

async fn rows(db: &Db) -> Vec<(String, String)> {
    let r = db.query("SELECT username, contact FROM location ORDER BY username, contact", vec![]).await.unwrap();
    r.iter().map(|r| (r.text(0).unwrap(), r.text(1).unwrap())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_through_bindings_survive_a_restart() {
    let dir = db_support::TempDir::new("usrloc1");
    let u = dir.sqlite_url("loc.sqlite");
    let db = init(&u).await;
    let params = [mode(1), url(&u)];
    {
        let a = proxy(&params).await.unwrap();
        let (code, _, contacts, _) =
            send(&a, register("alice", "c1", 1, Some("<sip:alice@192.0.2.1:5070>;q=0.7"), Some(3600)));
        assert_eq!(code, 200);
        assert!(contacts.contains("expires=3600"), "{contacts}");
        let (code, ..) = send(&a, register("bob", "c2", 5, Some("<sip:bob@192.0.2.2>"), Some(600)));
        assert_eq!(code, 200);
        let (code, ..) = send(&a, register("carol", "c3", 1, Some("<sip:carol@192.0.2.3>"), Some(600)));
        assert_eq!(code, 200);
        let (code, ..) = send(&a, register("carol", "c3", 2, Some("<sip:carol@192.0.2.3>"), Some(0)));
        assert_eq!(code, 200, "carol unregistered");
        // Written before the 200: the rows are there now.
        assert_eq!(
            rows(&db).await,
            [("alice".into(), "sip:alice@192.0.2.1:5070".into()), ("bob".into(), "sip:bob@192.0.2.2".into())]
        );
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // A new proxy on the same table: lookups work without a new REGISTER.
    let b = proxy(&params).await.unwrap();
    let (code, reason, ..) = send(&b, invite("alice"));
    assert_eq!((code, reason.as_str()), (299, "sip:alice@192.0.2.1:5070"));
    assert_eq!(send(&b, invite("carol")).0, 404);
    // Expiries are kept, not restarted: a query lists what is left of them.
    let (code, _, contacts, _) = send(&b, register("alice", "q1", 1, None, None));
    assert_eq!(code, 200);
    let left = listed_expires(&contacts);
    assert!((3590..3600).contains(&left), "{contacts}");
    assert!(contacts.contains("q=0.7"), "{contacts}");
    // A binding refreshed through the new proxy: the CSeq order per Call-ID kept across the restart.
    let (code, _, _, error) = send(&b, register("bob", "c2", 3, Some("<sip:bob@192.0.2.2>"), Some(600)));
    assert_eq!((code, error.as_str()), (400, "Invalid CSeq number"), "an old CSeq after the restart");
}

/// The location table file of a dbtext directory, its rows sorted.
fn location_file(dir: &std::path::Path) -> (String, Vec<String>) {
    let text = std::fs::read_to_string(dir.join("location")).expect("the location file");
    let mut lines = text.lines().map(str::to_string);
    let header = lines.next().expect("a header");
    let mut rows: Vec<String> = lines.collect();
    rows.sort();
    (header, rows)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dbtext_write_through_keeps_bindings_in_the_table_file() {
    let dir = db_support::TempDir::new("usrloc-dbtext");
    let tables = dir.path().join("openserdb");
    let u = format!("dbtext://{}", tables.display());
    init(&u).await;
    let (header, rows) = location_file(&tables);
    assert!(header.starts_with("id(int,auto) username(string) "), "{header}");
    assert!(header.contains(" expires(int) ") && header.contains(" q(double) "), "{header}");
    assert!(rows.is_empty(), "{rows:?}");
    let params = [mode(1), url(&u)];
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    {
        let a = proxy(&params).await.unwrap();
        let (code, ..) = send(&a, register("alice", "c1", 1, Some("<sip:alice@192.0.2.1:5070>;q=0.5"), Some(3600)));
        assert_eq!(code, 200);
        assert_eq!(send(&a, register("bob", "c2", 1, Some("<sip:bob@192.0.2.2>"), Some(600))).0, 200);
        // Written when the 200 went out: in the file, escaped as 1.3 wrote it.
        let (_, rows) = location_file(&tables);
        assert_eq!(rows.len(), 2, "{rows:?}");
        let alice = &rows[0];
        assert!(alice.contains(":alice:") && alice.contains(":sip\\:alice@192.0.2.1\\:5070:"), "{alice}");
        assert!(alice.contains(":0.50:"), "q with two decimals: {alice}");
        // expires: Unix seconds, as 1.3's `int` column.
        let secs: Vec<u64> = alice.split(':').filter_map(|f| f.parse().ok()).filter(|&n| n > 1_000_000_000).collect();
        assert!(secs.iter().any(|&t| (before + 3599..=before + 3602).contains(&t)), "{alice}");
    }
    // A row added by hand while no proxy runs, then a new proxy: both kinds load.
    let mut file = std::fs::read_to_string(tables.join("location")).unwrap();
    let handmade: Vec<&str> = header
        .split(' ')
        .map(|column| match column.split('(').next().unwrap() {
            "id" => "99",
            "username" => "erin",
            "contact" => "sip\\:erin@192.0.2.5",
            "expires" => "4102444800",
            "q" => "1.00",
            "callid" => "hand",
            "cseq" | "flags" | "cflags" | "last_modified" => "1",
            "user_agent" => "vi",
            _ => "",
        })
        .collect();
    file.push_str(&handmade.join(":"));
    file.push('\n');
    std::fs::write(tables.join("location"), file).unwrap();
    let b = proxy(&params).await.unwrap();
    let (code, reason, ..) = send(&b, invite("alice"));
    assert_eq!((code, reason.as_str()), (299, "sip:alice@192.0.2.1:5070"));
    let (code, reason, ..) = send(&b, invite("erin"));
    assert_eq!((code, reason.as_str()), (299, "sip:erin@192.0.2.5"));
    // Bob unregisters: his row goes, the others stay.
    assert_eq!(send(&b, register("bob", "c2", 2, Some("<sip:bob@192.0.2.2>"), Some(0))).0, 200);
    let (_, rows) = location_file(&tables);
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert!(rows.iter().any(|r| r.contains(":alice:")) && rows.iter().any(|r| r.contains(":erin:")), "{rows:?}");
    // A file the proxy cannot read: the next write says so (500), nothing is lost.
    std::fs::write(tables.join("location"), "id(int,auto) username(string) expires(float)\n").unwrap();
    assert_eq!(send(&b, register("frank", "c9", 1, Some("<sip:frank@192.0.2.9>"), Some(60))).0, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn write_back_writes_on_the_timer() {
    let dir = db_support::TempDir::new("usrloc2");
    let u = dir.sqlite_url("loc.sqlite");
    let db = init(&u).await;
    let params = [mode(2), url(&u), ("timer_interval", Value::Int(1))];
    let a = proxy(&params).await.unwrap();
    assert_eq!(send(&a, register("dave", "c1", 1, Some("<sip:dave@192.0.2.4>"), Some(3600))).0, 200);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while rows(&db).await.is_empty() {
        assert!(std::time::Instant::now() < deadline, "the timer wrote nothing");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rows(&db).await, [("dave".into(), "sip:dave@192.0.2.4".into())]);
    assert_eq!(send(&a, register("dave", "c1", 2, Some("<sip:dave@192.0.2.4>"), Some(0))).0, 200);
    a.config.usrloc.flush().await.unwrap();
    assert!(rows(&db).await.is_empty(), "the unregistration flushed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_serc_cannot_use_are_refused_at_start() {
    let dir = db_support::TempDir::new("usrloc3");
    let u = dir.sqlite_url("empty.sqlite");
    let e = proxy(&[mode(1), url(&u)]).await.err().expect("refused");
    assert!(e.contains("`version` table is missing") && e.contains("serc db init"), "{e}");
    let db = init(&u).await;
    db.execute(
        "UPDATE version SET table_version = ? WHERE table_name = ?",
        vec![DbValue::Int(1003), "location".into()],
    )
    .await
    .unwrap();
    let e = proxy(&[mode(3), url(&u)]).await.err().expect("refused");
    assert!(e.contains("`location`") && e.contains("1003") && e.contains("1004"), "{e}");
    let text = format!("dbtext://{}", dir.path().join("empty-dbtext").display());
    let e = proxy(&[mode(1), url(&text)]).await.err().expect("refused");
    assert!(e.contains("`version` table is missing") && e.contains("serc db init"), "{e}");
    let e = proxy(&[mode(1), url(&u), ("contact_column", Value::Str("contact; DROP".into()))])
        .await
        .err()
        .expect("refused");
    assert!(e.contains("contact; DROP"), "{e}");
    let e = proxy(&[mode(7)]).await.err().expect("refused");
    assert!(e.contains("db_mode 7"), "{e}");
    // Without a db_url: the embedded SQLite file, said.
    let (s, url, embedded) = usrloc::db_settings(&config(&[mode(1)]).params).unwrap().unwrap();
    assert_eq!(
        (s.mode, url.to_string().as_str(), embedded),
        (usrloc::DbMode::WriteThrough, "sqlite://openser.sqlite", true)
    );
    assert!(usrloc::db_settings(&config(&[]).params).unwrap().is_none(), "db_mode 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_write_through_fails_with_500_and_recovers() {
    let Some(pg) = db_support::Postgres::start() else { return };
    let u = pg.create_db("openser");
    let db = init(&u).await;
    let a = proxy(&[mode(1), url(&u)]).await.unwrap();
    assert_eq!(send(&a, register("alice", "c1", 1, Some("<sip:alice@192.0.2.1>"), Some(3600))).0, 200);
    pg.stop();
    let (code, reason, _, error) = send(&a, register("bob", "c2", 1, Some("<sip:bob@192.0.2.2>"), Some(3600)));
    assert_eq!((code, reason.as_str()), (500, "Server Internal Error"));
    assert_eq!(error, "Error while accessing the location database");
    // Not acknowledged, not kept: bob has no binding.
    assert_eq!(send(&a, invite("bob")).0, 404);
    // What needs no database still works: alice's lookup is served from memory.
    assert_eq!(send(&a, invite("alice")).0, 299);
    pg.start_again();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut cseq = 2;
    loop {
        let (code, ..) = send(&a, register("bob", "c2", cseq, Some("<sip:bob@192.0.2.2>"), Some(3600)));
        if code == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no recovery");
        cseq += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(rows(&db).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_db_only_is_shared_by_two_proxies() {
    let Some(pg) = db_support::Postgres::start() else { return };
    let u = pg.create_db("openser");
    let db = init(&u).await;
    let params = [mode(3), url(&u), ("use_domain", Value::Int(1))];
    let a = proxy(&params).await.unwrap();
    let b = proxy(&params).await.unwrap();
    assert_eq!(send(&a, register("alice", "c1", 1, Some("<sip:alice@192.0.2.1>"), Some(3600))).0, 200);
    assert_eq!(send(&b, register("bob", "c2", 1, Some("<sip:bob@192.0.2.2>"), Some(3600))).0, 200);
    assert_eq!(a.config.usrloc.aors(), 0, "nothing kept in memory");
    // Each sees the other's registrations.
    assert_eq!(send(&b, invite("alice")), (299, "sip:alice@192.0.2.1".into(), String::new(), String::new()));
    assert_eq!(send(&a, invite("bob")).1, "sip:bob@192.0.2.2");
    // A second device of alice through b: a's 200 lists both.
    let (code, _, contacts, _) = send(&b, register("alice", "c3", 1, Some("<sip:alice@192.0.2.9>"), Some(60)));
    assert_eq!(code, 200);
    assert!(contacts.contains("192.0.2.1") && contacts.contains("192.0.2.9"), "{contacts}");
    let r = db.query("SELECT domain FROM location WHERE username = ?", vec!["alice".into()]).await.unwrap();
    assert!(r.iter().all(|r| r.text(0).as_deref() == Some("example.com")), "use_domain writes the domain");
    // Unregistered through b: gone for a.
    let (code, ..) = send(&b, register("bob", "c2", 2, Some("<sip:bob@192.0.2.2>"), Some(0)));
    assert_eq!(code, 200);
    assert_eq!(send(&a, invite("bob")).0, 404);
    // The database down: lookups are internal errors (-3), REGISTERs 500.
    pg.stop();
    assert_eq!(send(&a, invite("alice")).0, 500);
    assert_eq!(send(&a, register("carol", "c4", 1, Some("<sip:carol@192.0.2.5>"), Some(60))).0, 500);
}

/// MySQL/MariaDB, what most OpenSER deployments ran: write-through with
/// `use_domain`, and the bindings back after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_write_through_survives_a_restart() {
    let Some(maria) = db_support::Mariadb::start() else { return };
    let u = maria.create_db("openser");
    let db = init(&u).await;
    let params = [mode(1), url(&u), ("use_domain", Value::Int(1))];
    {
        let a = proxy(&params).await.unwrap();
        let (code, ..) = send(&a, register("alice", "c1", 1, Some("<sip:alice@192.0.2.1>;q=0.5"), Some(3600)));
        assert_eq!(code, 200);
        assert_eq!(rows(&db).await, [("alice".into(), "sip:alice@192.0.2.1".into())]);
    }
    let b = proxy(&params).await.unwrap();
    assert_eq!(send(&b, invite("alice")).1, "sip:alice@192.0.2.1");
    let (code, _, contacts, _) = send(&b, register("alice", "q1", 1, None, None));
    assert_eq!(code, 200);
    assert!(contacts.contains("q=0.5") && (3590..=3600).contains(&listed_expires(&contacts)), "{contacts}");
    let r = db.query("SELECT domain, socket FROM location", vec![]).await.unwrap();
    assert_eq!(r[0].text(0).as_deref(), Some("example.com"));
    assert_eq!(r[0].text(1).as_deref(), Some("udp:127.0.0.1:5060"), "the socket as OpenSER wrote it");
}
