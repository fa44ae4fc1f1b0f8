//! The database layer against real databases: an SQLite file, and
//! PostgreSQL and MariaDB servers started by the tests (db_support/). For
//! each backend: OpenSER 1.3's tables created by `init`, the schema check
//! (missing `version`, missing table, wrong version), rows written and read
//! back with every column type, parameters that stay data, transactions all
//! or nothing, subscribers and domains as openserctl made them; then a slow
//! statement (a timeout error), a server that goes away (an error, not a
//! hang) and comes back (served again without help).

mod db_support;

use std::time::{Duration, Instant};

use serc_runtime::db::{schema, users, Db, DbError, DbUrl, Stmt, Value};

fn open(url: &str, timeout: Duration) -> Db {
    Db::open(&DbUrl::parse(url).unwrap(), timeout).unwrap()
}

async fn tables_and_rows(db: &Db) {
    // Nothing yet: the check names the `version` table.
    let e = schema::check(db, &["location"]).await.unwrap_err();
    assert!(matches!(&e, DbError::Schema(m) if m.contains("`version` table is missing")), "{e}");

    let created = schema::init(db).await.unwrap();
    assert_eq!(
        created,
        ["version", "location", "subscriber", "domain", "uri", "usr_preferences", "acc", "missed_calls"]
    );
    assert!(schema::init(db).await.unwrap().is_empty(), "init again creates nothing");
    let all: Vec<&str> = schema::TABLES.iter().map(|t| t.name).collect();
    schema::check(db, &all).await.unwrap();
    let versions = db.query("SELECT table_name, table_version FROM version ORDER BY table_name", vec![]).await.unwrap();
    let versions: Vec<(String, i64)> = versions.iter().map(|r| (r.text(0).unwrap(), r.int(1).unwrap())).collect();
    assert!(versions.contains(&("location".into(), 1004)) && versions.contains(&("subscriber".into(), 6)));

    // Every type of the location table, written and read back.
    let expires = 1_900_000_000;
    let evil = "x'); DROP TABLE location; --";
    let insert = "INSERT INTO location (username, domain, contact, expires, q, callid, cseq, last_modified, \
                  user_agent, socket) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
    for (user, q) in [("alice", 0.5), (evil, -1.0)] {
        let n = db
            .execute(
                insert,
                vec![
                    user.into(),
                    Value::Null,
                    "sip:alice@192.0.2.1:5060".into(),
                    Value::Time(expires),
                    Value::Float(q),
                    "call-1@host".into(),
                    Value::Int(42),
                    Value::Time(1_700_000_000),
                    "ua/1.0 ünïcode".into(),
                    "udp:127.0.0.1:5060".into(),
                ],
            )
            .await
            .unwrap();
        assert_eq!(n, 1);
    }
    let rows = db
        .query(
            "SELECT username, domain, contact, expires, q, cseq, last_modified, user_agent FROM location \
             WHERE username = ? AND expires > ?",
            vec!["alice".into(), Value::Time(expires - 1)],
        )
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let r = &rows[0];
    assert_eq!(r.text(0).as_deref(), Some("alice"));
    assert_eq!(r.text(1), None);
    assert_eq!(r.text(2).as_deref(), Some("sip:alice@192.0.2.1:5060"));
    assert_eq!(r.time(3), Some(expires));
    assert_eq!(r.float(4), Some(0.5));
    assert_eq!(r.int(5), Some(42));
    assert_eq!(r.time(6), Some(1_700_000_000));
    assert_eq!(r.text(7).as_deref(), Some("ua/1.0 ünïcode"));
    let r = db.query("SELECT username FROM location WHERE username = ?", vec![evil.into()]).await.unwrap();
    assert_eq!(r[0].text(0).as_deref(), Some(evil), "a parameter stays data");

    // Update, delete, and a transaction that fails half-way changes nothing.
    let n = db.execute("UPDATE location SET cseq = ? WHERE username = ?", vec![Value::Int(43), "alice".into()]);
    assert_eq!(n.await.unwrap(), 1);
    let failed = db
        .transaction(vec![
            Stmt::new("DELETE FROM location WHERE username = ?", vec!["alice".into()]),
            Stmt::new("INSERT INTO no_such_table (x) VALUES (?)", vec![Value::Int(1)]),
        ])
        .await;
    assert!(matches!(failed, Err(DbError::Query(_))), "{failed:?}");
    let r = db.query("SELECT cseq FROM location WHERE username = ?", vec!["alice".into()]).await.unwrap();
    assert_eq!(r[0].int(0), Some(43), "the failed transaction deleted nothing");
    assert_eq!(db.execute("DELETE FROM location WHERE cseq = ?", vec![Value::Int(42)]).await.unwrap(), 1);

    // Subscribers and domains, as openserctl made them.
    let alice = users::Account::parse("sip:alice@example.com").unwrap();
    users::add_user(db, &alice, "secret").await.unwrap();
    let again = users::add_user(db, &alice, "other").await.unwrap_err();
    assert!(again.to_string().contains("exists already"), "{again}");
    let r = db
        .query(
            "SELECT password, ha1, ha1b FROM subscriber WHERE username = ? AND domain = ?",
            vec!["alice".into(), "example.com".into()],
        )
        .await
        .unwrap();
    assert_eq!(r[0].text(0).as_deref(), Some("secret"));
    assert_eq!(r[0].text(1), Some(users::ha1("alice", "example.com", "secret")));
    assert_eq!(r[0].text(2), Some(users::ha1b("alice", "example.com", "secret")));
    assert!(users::remove_user(db, &alice).await.unwrap());
    assert!(!users::remove_user(db, &alice).await.unwrap());
    assert!(users::add_domain(db, "Example.com").await.unwrap());
    assert!(!users::add_domain(db, "example.com").await.unwrap());

    // A wrong version and a missing table are refused, naming them.
    db.execute("UPDATE version SET table_version = ? WHERE table_name = ?", vec![Value::Int(1003), "location".into()])
        .await
        .unwrap();
    let e = schema::check(db, &["location"]).await.unwrap_err().to_string();
    assert!(e.contains("`location`") && e.contains("version 1003") && e.contains("expects 1004"), "{e}");
    db.execute("DELETE FROM version WHERE table_name = ?", vec!["location".into()]).await.unwrap();
    let e = schema::check(db, &["location"]).await.unwrap_err().to_string();
    assert!(e.contains("`location`") && e.contains("no row") && e.contains("1004"), "{e}");
    db.batch("DROP TABLE uri").await.unwrap();
    let e = schema::check(db, &["uri"]).await.unwrap_err().to_string();
    assert!(e.contains("`uri`") && e.contains("missing") && e.contains("serc db init"), "{e}");
}

/// Retries `op` until it works or `within` passes: a database that came back.
async fn recovers(db: &Db, within: Duration) {
    let deadline = Instant::now() + within;
    loop {
        match db.query("SELECT table_version FROM version WHERE table_name = ?", vec!["subscriber".into()]).await {
            Ok(rows) => {
                assert_eq!(rows[0].int(0), Some(6));
                return;
            }
            Err(e) if Instant::now() < deadline => {
                eprintln!("not yet: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(e) => panic!("the database came back but serc did not recover: {e}"),
        }
    }
}

#[tokio::test]
async fn sqlite_file() {
    let dir = db_support::TempDir::new("sqlite");
    let url = dir.sqlite_url("openser.sqlite");
    let db = open(&url, Duration::from_secs(5));
    tables_and_rows(&db).await;
    drop(db);
    // The file keeps what was written.
    let db = open(&url, Duration::from_secs(5));
    schema::check(&db, &["subscriber", "domain"]).await.unwrap();
    let r = db.query("SELECT domain FROM domain", vec![]).await.unwrap();
    assert_eq!(r[0].text(0).as_deref(), Some("example.com"));

    // A statement slower than the timeout is an error, in time.
    let slow = open(&url, Duration::from_millis(300));
    let t = Instant::now();
    let e = slow
        .query(
            "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300000000) SELECT count(*) FROM c",
            vec![],
        )
        .await
        .unwrap_err();
    assert_eq!(e, DbError::Timeout(Duration::from_millis(300)));
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());

    // A file that cannot be opened is an error at open.
    let bad = Db::open(&DbUrl::parse("sqlite:///nonexistent-dir/x/y.sqlite").unwrap(), Duration::from_secs(1));
    assert!(matches!(bad, Err(DbError::Connect(_))), "{bad:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_server() {
    let Some(pg) = db_support::Postgres::start() else { return };
    let url = pg.create_db("openser");
    let db = open(&url, Duration::from_secs(5));
    tables_and_rows(&db).await;

    let slow = open(&url, Duration::from_millis(300));
    let e = slow.query("SELECT pg_sleep(3)", vec![]).await.unwrap_err();
    assert_eq!(e, DbError::Timeout(Duration::from_millis(300)));

    // Down: an error at once or within the timeout, never a hang; then back.
    pg.stop();
    let t = Instant::now();
    let e = db.query("SELECT 1", vec![]).await.unwrap_err();
    assert!(matches!(e, DbError::Connect(_) | DbError::Timeout(_) | DbError::Query(_)), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    pg.start_again();
    recovers(&db, Duration::from_secs(10)).await;

    // Nobody on the port: a connection error.
    let nobody = open(&format!("postgres://postgres@127.0.0.1:{}/x", db_support::free_port()), Duration::from_secs(2));
    let e = nobody.query("SELECT 1", vec![]).await.unwrap_err();
    assert!(matches!(e, DbError::Connect(_)), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mariadb_server() {
    let Some(mut maria) = db_support::Mariadb::start() else { return };
    let url = maria.create_db("openser");
    let db = open(&url, Duration::from_secs(5));
    tables_and_rows(&db).await;

    let slow = open(&url, Duration::from_millis(300));
    let e = slow.query("SELECT SLEEP(3)", vec![]).await.unwrap_err();
    assert_eq!(e, DbError::Timeout(Duration::from_millis(300)));

    maria.stop();
    let t = Instant::now();
    let e = db.query("SELECT 1", vec![]).await.unwrap_err();
    assert!(matches!(e, DbError::Connect(_) | DbError::Timeout(_) | DbError::Query(_)), "{e:?}");
    assert!(t.elapsed() < Duration::from_secs(6), "{:?}", t.elapsed());
    maria.start_again();
    recovers(&db, Duration::from_secs(15)).await;
}
