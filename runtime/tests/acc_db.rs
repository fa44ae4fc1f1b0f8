//! acc's database accounting on real UDP sockets (127.0.0.1) into a real
//! SQLite file: `db_flag` writes answered transactions (and, with
//! `report_ack`, their ACKs) to `acc`, `db_missed_flag` missed calls to
//! `missed_calls`, `db_extra` adds columns, `acc_db_request` writes the
//! request now; without the flags nothing is written. The route, as the
//! code generator writes
//!
//! ```text
//! modparam("acc", "db_flag", 4)  modparam("acc", "db_missed_flag", 5)
//! modparam("acc", "report_ack", 1)  modparam("acc", "db_extra", "src_user=$fU")
//! modparam("acc", "db_url", "sqlite://…")
//! route {
//!     if (method == "MESSAGE") { acc_db_request("404 not here", "acc"); sl_send_reply("404", "not here"); exit; }
//!     (setflag of each number in X-Flags)  $du = "sip:UAS";  t_relay();
//! }
//! ```

mod common;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{answer, recv_within};
use serc_runtime::app::{Proxy, Script};
use serc_runtime::db::{self, Db, DbUrl};
use serc_runtime::modules::{acc, core, sl, tm};
use serc_runtime::proxy::{Local, Transport as ProxyTransport};
use serc_runtime::script::args::{Format, ReplyCode};
use serc_runtime::script::{Config, Ctx, Flow, Value};
use serc_runtime::sip::{Message, Method};
use serc_runtime::transport::{Listen, Server, ServerConfig};
use tokio::net::UdpSocket;

struct Route {
    uas: SocketAddr,
}

impl Script for Route {
    fn request(&self, ctx: &mut Ctx) -> Flow {
        if ctx.msg.method() == Some(Method::Message) {
            acc::acc_db_request(ctx, "404 not here", "acc");
            sl::sl_send_reply(ctx, &ReplyCode::Fixed(404), &Format::literal("not here"));
            return Flow::Exit;
        }
        let flags = ctx.msg.headers_by_text("X-Flags").next().map(|h| ctx.msg.text(h.value).to_string());
        for f in flags.iter().flat_map(|f| f.split(',')) {
            core::setflag(ctx, f.trim().parse().unwrap());
        }
        ctx.dst_uri = Some(format!("sip:{}", self.uas));
        tm::t_relay_0(ctx);
        Flow::Exit
    }
}

struct Setup {
    handle: Option<serc_runtime::transport::ServerHandle>,
    proxy: SocketAddr,
    uac: UdpSocket,
    uas: UdpSocket,
    db: Db,
    dir: PathBuf,
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn start(name: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("serc-acc-db-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("acc.sqlite");
    let db = Db::open(&DbUrl::Sqlite(file.clone()), db::DEFAULT_TIMEOUT).unwrap();
    db::schema::init(&db).await.unwrap();
    // db_extra's column, as an operator adds it.
    db.batch(
        "ALTER TABLE acc ADD COLUMN src_user VARCHAR(64); ALTER TABLE missed_calls ADD COLUMN src_user VARCHAR(64)",
    )
    .await
    .unwrap();

    let uac = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let uas = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let probe = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = probe.local_addr().unwrap();
    drop(probe);
    let mut config = Config { locals: vec![Local::new(ProxyTransport::Udp, addr)], ..Config::default() };
    config.params.load("acc");
    config.params.load("tm");
    for (p, v) in [("db_flag", 4), ("db_missed_flag", 5), ("report_ack", 1)] {
        config.params.set("acc", p, Value::Int(v));
    }
    config.params.set("acc", "db_extra", Value::str("src_user=$fU"));
    config.params.set("acc", "db_url", Value::Str(format!("sqlite://{}", file.display())));
    acc::start(&config).await.expect("acc opens its database");
    let proxy = Arc::new(Proxy::new(Route { uas: uas.local_addr().unwrap() }, config));
    let server = ServerConfig { listens: vec![Listen::udp(addr)], workers: 2, ..ServerConfig::default() };
    let handle = Server::start(server, proxy).await.expect("the proxy starts");
    Setup { handle: Some(handle), proxy: addr, uac, uas, db, dir }
}

fn request(method: &str, client: SocketAddr, call_id: &str, flags: &str, to_tag: &str) -> String {
    format!(
        "{method} sip:bob@biloxi.example.com SIP/2.0\r\n\
         Via: SIP/2.0/UDP {client};branch=z9hG4bK{call_id}{method};rport\r\n\
         Max-Forwards: 70\r\n\
         To: Bob <sip:bob@biloxi.example.com>{to_tag}\r\n\
         From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n\
         Call-ID: {call_id}\r\n\
         CSeq: 1 {method}\r\n\
         X-Flags: {flags}\r\n\
         Content-Length: 0\r\n\r\n"
    )
}

/// The next message of call `call_id` that is not a 100 (the 486 of an
/// earlier call, never ACKed here, is retransmitted meanwhile).
async fn next(sock: &UdpSocket, call_id: &str) -> Message {
    loop {
        let m = recv_within(sock, Duration::from_secs(5)).await.expect("a message within 5 s");
        if m.status() != Some(100) && m.text(m.call_id) == call_id {
            return m;
        }
    }
}

type Row = (String, String, String, String, String, String);

/// The rows of `table` for `call_id` once there are `n` (writes are
/// asynchronous): method, from_tag, to_tag, sip_code, sip_reason, src_user.
async fn rows(db: &Db, table: &str, call_id: &str, n: usize) -> Vec<Row> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let sql = format!(
            "SELECT method, from_tag, to_tag, sip_code, sip_reason, src_user, time FROM {table} \
             WHERE callid = ? ORDER BY id"
        );
        let found = db.query(sql, vec![call_id.into()]).await.unwrap();
        if found.len() >= n || Instant::now() > deadline {
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            return found
                .iter()
                .map(|r| {
                    let t = r.time(6).expect("a time");
                    assert!((t - now).abs() <= 5, "time {t} is now ({now})");
                    let s = |i| r.text(i).unwrap_or_default();
                    (s(0), s(1), s(2), s(3), s(4), s(5))
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn row(method: &str, to_tag: &str, code: &str, reason: &str) -> Row {
    (method.into(), "1928301774".into(), to_tag.into(), code.into(), reason.into(), "alice".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn db_flags_write_answered_and_missed_calls() {
    let mut s = start("flags").await;
    let uac = s.uac.local_addr().unwrap();

    // db_flag: the answered INVITE and its ACK in `acc`.
    let call = "acc-db-answered";
    s.uac.send_to(request("INVITE", uac, call, "4", "").as_bytes(), s.proxy).await.unwrap();
    let inv = next(&s.uas, call).await;
    s.uas.send_to(answer(&inv, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, call).await.status(), Some(200));
    s.uac.send_to(request("ACK", uac, call, "4", ";tag=uas1").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uas, call).await.method(), Some(Method::Ack));
    assert_eq!(
        rows(&s.db, "acc", call, 2).await,
        [row("INVITE", "uas1", "200", "OK"), row("ACK", "uas1", "200", "OK")]
    );

    // db_missed_flag: a busy callee is a missed call, not an accounted one
    // (no failed_transaction_flag).
    let call = "acc-db-missed";
    s.uac.send_to(request("INVITE", uac, call, "4,5", "").as_bytes(), s.proxy).await.unwrap();
    let inv = next(&s.uas, call).await;
    s.uas.send_to(answer(&inv, 486, "Busy Here").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, call).await.status(), Some(486));
    assert_eq!(rows(&s.db, "missed_calls", call, 1).await, [row("INVITE", "uas1", "486", "Busy Here")]);
    assert!(rows(&s.db, "acc", call, 0).await.is_empty());

    // No flag: nothing written.
    let call = "acc-db-none";
    s.uac.send_to(request("INVITE", uac, call, "1", "").as_bytes(), s.proxy).await.unwrap();
    let inv = next(&s.uas, call).await;
    s.uas.send_to(answer(&inv, 200, "OK").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, call).await.status(), Some(200));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(rows(&s.db, "acc", call, 0).await.is_empty());

    // acc_db_request: the request now, its code and reason from the comment.
    let call = "acc-db-request";
    s.uac.send_to(request("MESSAGE", uac, call, "", "").as_bytes(), s.proxy).await.unwrap();
    assert_eq!(next(&s.uac, call).await.status(), Some(404));
    assert_eq!(rows(&s.db, "acc", call, 1).await, [row("MESSAGE", "", "404", "not here")]);
    s.handle.take().unwrap().shutdown().await;
}
