//! `serc db`: `init`, `add-user`, `remove-user`, `add-domain` on an SQLite
//! file (the embedded default and a named one), a dbtext directory, and on PostgreSQL and
//! MariaDB servers the tests start (runtime/tests/db_support); what they
//! wrote read back through serc's database layer.

mod common;
#[path = "../../runtime/tests/db_support/mod.rs"]
mod db_support;

use std::time::Duration;

use common::Run;
use serc_runtime::db::{users, Db, DbUrl};

fn serc(dir: &std::path::Path, args: &[&str]) -> Run {
    common::serc(dir, &[], args)
}

/// `(password, ha1, ha1b)` of a subscriber, read with serc's database layer.
fn subscriber(url: &str, user: &str, domain: &str) -> Option<(String, String, String)> {
    let db = Db::open(&DbUrl::parse(url).unwrap(), Duration::from_secs(5)).unwrap();
    let (u, d) = (user.to_string(), domain.to_string());
    let rows = db
        .wait(db.query(
            "SELECT password, ha1, ha1b FROM subscriber WHERE username = ? AND domain = ?",
            vec![u.into(), d.into()],
        ))
        .unwrap();
    rows.first().map(|r| (r.text(0).unwrap(), r.text(1).unwrap(), r.text(2).unwrap()))
}

/// The commands in order on `url` (`None`: the default, in `dir`).
fn manage(dir: &std::path::Path, url: Option<&str>, read_url: &str) {
    let with = |args: &[&str]| -> Run {
        let mut all: Vec<&str> = args.to_vec();
        if let Some(u) = url {
            all.extend(["--db-url", u]);
        }
        serc(dir, &all)
    };
    // Before init: the missing table is named.
    let run = with(&["db", "add-user", "sip:alice@example.com", "secret"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("`version` table is missing"), "{}", run.stderr);

    let run = with(&["db", "init"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stdout.contains("created version, location, subscriber, domain, uri, usr_preferences, acc, missed_calls"),
        "{}",
        run.stdout
    );
    let run = with(&["db", "init"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("every table is there"), "{}", run.stdout);

    let run = with(&["db", "add-user", "sip:alice@Example.com", "secret"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("added the subscriber alice@example.com"), "{}", run.stdout);
    assert_eq!(
        subscriber(read_url, "alice", "example.com"),
        Some((
            "secret".into(),
            users::ha1("alice", "example.com", "secret"),
            users::ha1b("alice", "example.com", "secret")
        ))
    );
    // ha1 = MD5("alice:example.com:secret"), as openserctl computed it.
    assert_eq!(users::ha1("alice", "example.com", "secret"), "b1726872c344b6dc8365b774f8fd6412");
    assert_eq!(users::ha1b("alice", "example.com", "secret"), "c79656e4f06dbae9fdf6727654273c65");
    let run = with(&["db", "add-user", "sip:alice@example.com", "other"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("exists already"), "{}", run.stderr);
    let run = with(&["db", "add-user", "sip:bob@example.com", "a-password-longer-than-twenty-five"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("25 characters"), "{}", run.stderr);
    let run = with(&["db", "add-user", "not-a-uri", "x"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);

    let run = with(&["db", "add-domain", "Example.com"]);
    assert_eq!((run.code, run.stdout.trim()), (Some(0), "added the domain example.com"), "{}", run.stderr);
    let run = with(&["db", "add-domain", "example.com"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stdout.contains("there already"), "{}", run.stdout);

    let run = with(&["db", "remove-user", "sip:alice@example.com"]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(subscriber(read_url, "alice", "example.com"), None);
    let run = with(&["db", "remove-user", "sip:alice@example.com"]);
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stderr.contains("no subscriber alice@example.com"), "{}", run.stderr);
}

#[test]
fn dbtext_directory() {
    let dir = db_support::TempDir::new("cli-db-text");
    let tables = dir.path().join("openserdb");
    let url = format!("dbtext://{}", tables.display());
    manage(dir.path(), Some(&url), &url);
    // The tables are OpenSER 1.3's text files: `version` lists each table's version.
    let version = std::fs::read_to_string(tables.join("version")).unwrap();
    assert!(version.starts_with("table_name(string) table_version(int)\n"), "{version}");
    assert!(version.lines().any(|l| l == "subscriber:6"), "{version}");
    let run = serc(dir.path(), &["db", "add-user", "sip:carol@example.com", "pass:word", "--db-url", &url]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    let subscriber = std::fs::read_to_string(tables.join("subscriber")).unwrap();
    let row = subscriber.lines().find(|l| l.contains(":carol:")).expect("carol's row");
    assert!(row.contains(":example.com:pass\\:word:"), "the `:` escaped: {row}");
}

#[test]
fn sqlite_default_and_named_files() {
    let dir = db_support::TempDir::new("cli-db");
    // No --db-url: openser.sqlite in the current directory, said on stderr.
    let default_url = format!("sqlite://{}", dir.path().join("openser.sqlite").display());
    manage(dir.path(), None, &default_url);
    let run = serc(dir.path(), &["db", "init"]);
    assert!(run.stderr.contains("no --db-url: using the embedded database sqlite://openser.sqlite"), "{}", run.stderr);
    let named = dir.sqlite_url("named.sqlite");
    manage(dir.path(), Some(&named), &named);
}

#[test]
fn bad_urls_exit_2() {
    let dir = db_support::TempDir::new("cli-db-bad");
    for (url, says) in [
        ("dbtext://", "no directory after dbtext://"),
        ("oracle://x/y", "unknown database `oracle`"),
        ("mysql://openser:secretpw@127.0.0.1", "no /DATABASE"),
    ] {
        let run = serc(dir.path(), &["db", "init", "--db-url", url]);
        assert_eq!(run.code, Some(2), "{url}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{url}: {}", run.stderr);
        assert!(!run.stderr.contains("secretpw"), "the password is not shown: {}", run.stderr);
    }
    // Nobody listening: a connection error, exit 2.
    let port = db_support::free_port();
    let run = serc(dir.path(), &["db", "init", "--db-url", &format!("postgres://u:p@127.0.0.1:{port}/openser")]);
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
}

#[test]
fn postgres_server() {
    let Some(pg) = db_support::Postgres::start() else { return };
    let url = pg.create_db("openser");
    let dir = db_support::TempDir::new("cli-pg");
    manage(dir.path(), Some(&url), &url);
}

#[test]
fn mariadb_server() {
    let Some(maria) = db_support::Mariadb::start() else { return };
    let url = maria.create_db("openser");
    let dir = db_support::TempDir::new("cli-maria");
    manage(dir.path(), Some(&url), &url);
}

#[test]
fn configs_with_database_modes_generate() {
    let cfg = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/cfg/registrar_db.cfg");
    let dir = db_support::TempDir::new("cli-emit");
    // No db_url: generated, with a warning naming the embedded file.
    let run = serc(dir.path(), &["emit", cfg.to_str().unwrap()]);
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(run.stderr.contains("usrloc's `db_mode` 1 without a `db_url`"), "{}", run.stderr);
    assert!(run.stderr.contains("openser.sqlite"), "{}", run.stderr);
    assert!(
        run.stdout.contains(r#".set("usrloc", "db_mode", ::serc_runtime::script::Value::Int(1i64))"#),
        "{}",
        run.stdout
    );
    // mysql.so and postgres.so load; a server URL and every mode are accepted.
    for (module, url, mode) in [
        ("mysql", "mysql://openser:openserrw@127.0.0.1/openser", 3),
        ("postgres", "postgres://openser:pw@127.0.0.1:5432/openser", 2),
    ] {
        let text = std::fs::read_to_string(&cfg).unwrap().replace(
            "loadmodule \"usrloc.so\"",
            &format!(
                "loadmodule \"{module}.so\"\nloadmodule \"usrloc.so\"\nmodparam(\"usrloc\", \"db_url\", \"{url}\")"
            ),
        );
        let text =
            text.replace("modparam(\"usrloc\", \"db_mode\", 1)", &format!("modparam(\"usrloc\", \"db_mode\", {mode})"));
        let path = dir.path().join(format!("{module}.cfg"));
        std::fs::write(&path, text).unwrap();
        let run = serc(dir.path(), &["emit", path.to_str().unwrap()]);
        assert_eq!(run.code, Some(0), "{module}: {}", run.stderr);
        assert!(!run.stderr.contains("warning"), "{module}: {}", run.stderr);
    }
}
