//! Built registrars persisting usrloc's table (tests/cfg/registrar_db.cfg,
//! registrar_shared.cfg): with `db_mode` 1 and no `db_url` the bindings go to
//! the embedded SQLite file in the working directory and survive a restart
//! of the proxy (a call reaches the user without a new REGISTER, the expiry
//! kept); with `db_mode` 3 two proxy processes share one table, in an SQLite
//! file and on a PostgreSQL server the test starts (runtime/tests/db_support).

#[path = "../../runtime/tests/db_support/mod.rs"]
mod db_support;

use std::fs::File;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::time::Duration;

use serc_e2e::{build_proxy, cfg, serc_binary, target_dir, Proxy, TempDir, Ua, Uas};
use serc_runtime::db::{schema, Db, DbUrl};

fn register(ua: &mut Ua, proxy: &Proxy, user: &str, contact: &str, cseq: u32, expires: Option<u32>) -> serc_e2e::Sip {
    let mut req = ua.request("REGISTER", &proxy.uri());
    req.headers.set("To", format!("<sip:{user}@example.com>"));
    req.headers.set("From", format!("<sip:{user}@example.com>;tag=reg-{user}"));
    req.headers.set("Call-ID", format!("reg-{user}@test"));
    req.headers.set("CSeq", format!("{cseq} REGISTER"));
    match expires {
        Some(e) => req.headers.set("Contact", format!("<{contact}>;expires={e}")),
        None => req.headers.remove("Contact"),
    }
    ua.transaction(&req)
}

/// An INVITE to `user` through `proxy` reaches `uas`, and its 200 comes back.
fn call_reaches(proxy: &Proxy, uas: &Uas, user: &str) {
    let mut uac = Ua::udp(proxy.udp());
    let invite = uac.invite(&format!("sip:{user}@{}", proxy.udp()));
    uac.send(&invite);
    let at_uas = uas.expect_request("INVITE");
    assert_eq!(at_uas.request_uri(), Some(uas.uri(user).as_str()), "{at_uas}");
    let (_, answer) = uac.expect_final(&invite);
    assert_eq!(answer.status(), Some(200), "{answer}");
}

#[test]
fn write_through_bindings_survive_a_restart() {
    let bin = build_proxy(&cfg("registrar_db.cfg"));
    let dir = TempDir::new("usrloc1");
    let uas = Uas::start();

    let first = Proxy::start_in(&bin, &[], Some(dir.path()));
    let mut uac = Ua::udp(first.udp());
    let ok = register(&mut uac, &first, "bob", &uas.uri("bob"), 1, Some(600));
    assert_eq!(ok.status(), Some(200), "{ok}");
    call_reaches(&first, &uas, "bob");
    let log = first.stderr();
    assert!(first.stop().success());
    assert!(
        log.contains("without db_url") && log.contains("sqlite://openser.sqlite"),
        "the embedded database is said at start:\n{log}"
    );
    assert!(dir.path().join("openser.sqlite").is_file(), "the embedded database is in the working directory");

    std::thread::sleep(Duration::from_millis(1100));
    let second = Proxy::start_in(&bin, &[], Some(dir.path()));
    // No new REGISTER: the call goes through lookup on the loaded table.
    call_reaches(&second, &uas, "bob");
    // A query (no Contact) lists the binding with what is left of its expiry.
    let mut uac = Ua::udp(second.udp());
    let listed = register(&mut uac, &second, "bob", "", 2, None);
    assert_eq!(listed.status(), Some(200), "{listed}");
    let contact = listed.header("Contact").unwrap_or_default().to_string();
    let left: u32 = contact.rsplit("expires=").next().and_then(|e| e.trim().parse().ok()).unwrap_or(0);
    assert!((590..600).contains(&left), "the expiry is kept, not restarted: {contact}");
    assert!(second.stop().success());
}

#[test]
fn db_only_proxies_share_one_table() {
    let bin = build_proxy(&cfg("registrar_shared.cfg"));
    let dir = TempDir::new("usrloc3");
    let url = format!("sqlite://{}", dir.path().join("shared.sqlite").display());
    let db = Db::open(&DbUrl::parse(&url).unwrap(), Duration::from_secs(5)).unwrap();
    let d = db.clone();
    db.wait(async move { schema::init(&d).await }).unwrap();

    let a = Proxy::start_in(&bin, &[], Some(dir.path()));
    let b = Proxy::start_in(&bin, &[], Some(dir.path()));
    let alice = Uas::start();
    let bob = Uas::start();
    let mut ua = Ua::udp(a.udp());
    assert_eq!(register(&mut ua, &a, "alice", &alice.uri("alice"), 1, Some(600)).status(), Some(200));
    let mut ub = Ua::udp(b.udp());
    assert_eq!(register(&mut ub, &b, "bob", &bob.uri("bob"), 1, Some(600)).status(), Some(200));
    // Each proxy reaches the user registered through the other.
    call_reaches(&b, &alice, "alice");
    call_reaches(&a, &bob, "bob");
    // Unregistered through b: a no longer finds bob.
    assert_eq!(register(&mut ub, &b, "bob", &bob.uri("bob"), 2, Some(0)).status(), Some(200));
    let mut uac = Ua::udp(a.udp());
    let invite = uac.invite(&format!("sip:bob@{}", a.udp()));
    assert_eq!(uac.transaction(&invite).status(), Some(404));
    assert!(a.stop().success());
    assert!(b.stop().success());
}

/// An exclusive flock on a file, released on drop: the PostgreSQL config is
/// written at one path (so its build stays warm and leaves no binary per run),
/// which test processes running at once must take in turns.
struct Flock(File);

impl Flock {
    fn acquire(path: &std::path::Path) -> Flock {
        let file = File::options().create(true).truncate(false).write(true).open(path).unwrap();
        // SAFETY: flock(2) on a descriptor we own; no memory is touched.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(rc, 0, "flock {}: {}", path.display(), std::io::Error::last_os_error());
        Flock(file)
    }
}

impl Drop for Flock {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe {
            libc::flock(self.0.as_raw_fd(), libc::LOCK_UN);
        }
    }
}

/// The `location` rows of `user` on `db`.
fn bindings(db: &Db, user: &str) -> usize {
    let rows =
        db.wait(db.query("SELECT contact FROM location WHERE username = ?", vec![user.to_string().into()])).unwrap();
    rows.len()
}

#[test]
fn db_only_proxies_share_one_postgres_table() {
    let Some(pg) = db_support::Postgres::start() else { return };
    let url = pg.create_db("openser");
    let init = Command::new(serc_binary()).args(["db", "init", "--db-url", &url]).output().unwrap();
    assert!(init.status.success(), "serc db init: {}", String::from_utf8_lossy(&init.stderr));

    // registrar_shared.cfg on this server: the URL is built in, and the port
    // is this run's.
    let dir = target_dir().join("serc-e2e").join("cfg");
    std::fs::create_dir_all(&dir).unwrap();
    let _turn = Flock::acquire(&dir.join("registrar_shared_pg.lock"));
    let text = std::fs::read_to_string(cfg("registrar_shared.cfg")).unwrap();
    assert!(text.contains("\"sqlite://shared.sqlite\"") && text.contains("loadmodule \"usrloc.so\""));
    let text = text
        .replace("\"sqlite://shared.sqlite\"", &format!("\"{url}\""))
        .replace("loadmodule \"usrloc.so\"", "loadmodule \"postgres.so\"\nloadmodule \"usrloc.so\"");
    let path = dir.join("registrar_shared_pg.cfg");
    std::fs::write(&path, text).unwrap();
    let bin = build_proxy(&path);

    let db = Db::open(&DbUrl::parse(&url).unwrap(), Duration::from_secs(5)).unwrap();
    let a = Proxy::start(&bin, &[]);
    let b = Proxy::start(&bin, &[]);
    let alice = Uas::start();
    let mut ua = Ua::udp(a.udp());
    assert_eq!(register(&mut ua, &a, "alice", &alice.uri("alice"), 1, Some(600)).status(), Some(200));
    assert_eq!(bindings(&db, "alice"), 1, "the binding is a row on the server");
    // Registered through a, reached through b (and a).
    call_reaches(&b, &alice, "alice");
    call_reaches(&a, &alice, "alice");

    // Unregistered through b with an Expires header: a no longer finds alice.
    let mut ub = Ua::udp(b.udp());
    let mut req = ub.request("REGISTER", &b.uri());
    req.headers.set("To", "<sip:alice@example.com>");
    req.headers.set("From", "<sip:alice@example.com>;tag=reg-alice");
    req.headers.set("Call-ID", "reg-alice@test");
    req.headers.set("CSeq", "2 REGISTER");
    req.headers.set("Contact", format!("<{}>", alice.uri("alice")));
    req.headers.set("Expires", "0");
    let gone = ub.transaction(&req);
    assert_eq!(gone.status(), Some(200), "{gone}");
    assert_eq!(bindings(&db, "alice"), 0, "the row is deleted");
    for proxy in [&a, &b] {
        let mut uac = Ua::udp(proxy.udp());
        let invite = uac.invite(&format!("sip:alice@{}", proxy.udp()));
        assert_eq!(uac.transaction(&invite).status(), Some(404), "through {}", proxy.udp());
    }
    assert!(a.stop().success());
    assert!(b.stop().success());
}

#[test]
fn a_database_with_the_wrong_tables_stops_the_start() {
    let bin = build_proxy(&cfg("registrar_shared.cfg"));
    let dir = TempDir::new("usrloc-empty");
    // shared.sqlite does not exist: created empty, without tables; refused.
    let out = std::process::Command::new(&bin)
        .args(["--listen", "udp:127.0.0.1:0"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("`version` table is missing") && stderr.contains("serc db init"), "{stderr}");
}
