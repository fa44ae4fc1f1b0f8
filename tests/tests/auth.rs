//! A registrar with digest authentication built by `serc build`
//! (tests/cfg/auth_registrar.cfg) over the embedded SQLite database in its
//! working directory, made by `serc db init` and `serc db add-user`: SIPp
//! registers users answering the challenges with its own digest code, calls
//! reach them through `lookup`; a REGISTER without credentials or with a
//! wrong password is challenged again. The same over OpenSER's text-file
//! tables (tests/cfg/auth_registrar_dbtext.cfg): a user added while the proxy
//! runs is authorized, and the binding is in the location file.

use std::path::Path;
use std::process::Command;

use serc_e2e::{build_proxy, cfg, serc_binary, Proxy, TempDir, Ua};
use serc_runtime::db::{self, users, Db, DbUrl, Value};

const USERS: u32 = 200;
const PASSWORD: &str = "pw-e2e";

fn serc_db(args: &[&str]) -> String {
    let out = Command::new(serc_binary()).arg("db").args(args).output().expect("serc runs");
    assert!(out.status.success(), "serc db {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A working directory with openser.sqlite holding `user1…userN` (the first by
/// `serc db add-user`, the others inserted the same way in one go).
fn database(name: &str) -> TempDir {
    let dir = TempDir::new(&format!("auth-{name}"));
    let file = dir.path().join("openser.sqlite");
    let url = format!("sqlite://{}", file.display());
    serc_db(&["init", "--db-url", &url]);
    serc_db(&["add-user", "sip:user1@example.com", PASSWORD, "--db-url", &url]);
    let db = Db::open(&DbUrl::Sqlite(file), db::DEFAULT_TIMEOUT).unwrap();
    let mut stmts = Vec::new();
    for i in 2..=USERS {
        let user = format!("user{i}");
        stmts.push(db::Stmt::new(
            "INSERT INTO subscriber (username, domain, password, ha1, ha1b) VALUES (?, ?, ?, ?, ?)",
            vec![
                Value::from(user.as_str()),
                "example.com".into(),
                PASSWORD.into(),
                users::ha1(&user, "example.com", PASSWORD).into(),
                users::ha1b(&user, "example.com", PASSWORD).into(),
            ],
        ));
    }
    db.wait(db.transaction(stmts)).unwrap();
    dir
}

fn start(dir: &Path) -> Proxy {
    Proxy::start_in(&build_proxy(&cfg("auth_registrar.cfg")), &["--workers", "2"], Some(dir))
}

#[test]
fn sipp_registers_with_digest_auth_and_calls_reach_the_users() {
    use serc_e2e::scenario;
    use serc_e2e::sipp::{Options, Sipp};

    let Some(sipp) = Sipp::find() else { return };
    let dir = database("sipp");
    let proxy = start(dir.path());
    let users = dir.path().join("users.csv");
    let lines: String =
        (1..=USERS).map(|i| format!("user{i};[authentication username=user{i} password={PASSWORD}]\n")).collect();
    std::fs::write(&users, format!("SEQUENTIAL\n{lines}")).unwrap();

    let calls = Options::default().calls(50, 25);
    let uas = sipp.uas(&scenario("uas_call.xml"), &calls);
    let mut register = Options::default().calls(USERS, 100).key("uas", uas.addr());
    register.extra.extend(["-inf".to_string(), users.display().to_string()]);
    let registered = sipp.uac(&scenario("uac_register_auth.xml"), proxy.udp(), &register);
    registered.assert_all_successful(u64::from(USERS));
    let called = sipp.uac(&scenario("uac_call_aor.xml"), proxy.udp(), &calls);
    let uas = uas.finish();
    called.assert_all_successful(50);
    uas.assert_all_successful(50);
}

#[test]
fn registers_without_the_right_password_are_challenged() {
    let dir = database("refusals");
    let proxy = start(dir.path());
    let mut ua = Ua::udp(proxy.udp());
    let mut req = ua.request("REGISTER", &proxy.uri());
    req.headers.set("To", "<sip:user1@example.com>");
    req.headers.set("From", "<sip:user1@example.com>;tag=r1");
    req.headers.set("Contact", "<sip:user1@127.0.0.1:5999>");
    let challenge = ua.transaction(&req);
    assert_eq!(challenge.status(), Some(401), "{challenge}");
    let www = challenge.header("WWW-Authenticate").unwrap_or_default().to_string();
    assert!(www.starts_with("Digest realm=\"example.com\", nonce=\"") && www.ends_with("qop=\"auth\""), "{www}");
    let nonce = www.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();

    // A wrong password: challenged again (not stale), nothing saved.
    let ha1 = users::ha1("user1", "example.com", "not-the-password");
    let uri = proxy.uri();
    let md5 = |s: String| serc_runtime::modules::auth::md5_hex(&[s.as_bytes()]);
    let ha2 = md5(format!("REGISTER:{uri}"));
    let response = md5(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    let mut wrong = ua.request("REGISTER", &uri);
    wrong.headers.set("To", "<sip:user1@example.com>");
    wrong.headers.set("From", "<sip:user1@example.com>;tag=r2");
    wrong.headers.set("Contact", "<sip:user1@127.0.0.1:5999>");
    wrong.headers.set(
        "Authorization",
        format!(
            "Digest username=\"user1\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", qop=auth, nc=00000001, cnonce=\"abc\""
        ),
    );
    let again = ua.transaction(&wrong);
    assert_eq!(again.status(), Some(401), "{again}");
    assert!(!again.header("WWW-Authenticate").unwrap_or_default().contains("stale"), "{again}");
    let invite = ua.invite(&format!("sip:user1@{}", proxy.udp()));
    assert_eq!(ua.transaction(&invite).status(), Some(404), "user1 is not registered");
}

/// A REGISTER of `user` answering the proxy's challenge with `password`: the final status.
fn register_with_password(ua: &mut Ua, proxy: &Proxy, user: &str, password: &str) -> u16 {
    let uri = proxy.uri();
    let mut req = ua.request("REGISTER", &uri);
    req.headers.set("To", format!("<sip:{user}@example.com>"));
    req.headers.set("From", format!("<sip:{user}@example.com>;tag=r1"));
    req.headers.set("Contact", format!("<sip:{user}@127.0.0.1:5999>"));
    let challenge = ua.transaction(&req);
    assert_eq!(challenge.status(), Some(401), "{challenge}");
    let www = challenge.header("WWW-Authenticate").unwrap_or_default().to_string();
    let nonce = www.split("nonce=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let md5 = |s: String| serc_runtime::modules::auth::md5_hex(&[s.as_bytes()]);
    let ha1 = users::ha1(user, "example.com", password);
    let ha2 = md5(format!("REGISTER:{uri}"));
    let response = md5(format!("{ha1}:{nonce}:00000001:abc:auth:{ha2}"));
    let mut answer = ua.request("REGISTER", &uri);
    answer.headers.set("To", format!("<sip:{user}@example.com>"));
    answer.headers.set("From", format!("<sip:{user}@example.com>;tag=r2"));
    answer.headers.set("Contact", format!("<sip:{user}@127.0.0.1:5999>"));
    answer.headers.set(
        "Authorization",
        format!(
            "Digest username=\"{user}\", realm=\"example.com\", nonce=\"{nonce}\", uri=\"{uri}\", \
             response=\"{response}\", qop=auth, nc=00000001, cnonce=\"abc\""
        ),
    );
    ua.transaction(&answer).status().expect("a reply")
}

#[test]
fn dbtext_subscribers_added_while_running_are_authorized() {
    let dir = TempDir::new("auth-dbtext");
    let tables = dir.path().join("openserdb");
    let url = format!("dbtext://{}", tables.display());
    serc_db(&["init", "--db-url", &url]);
    serc_db(&["add-user", "sip:user1@example.com", PASSWORD, "--db-url", &url]);
    let proxy = Proxy::start_in(&build_proxy(&cfg("auth_registrar_dbtext.cfg")), &["--workers", "2"], Some(dir.path()));
    let mut ua = Ua::udp(proxy.udp());
    assert_eq!(register_with_password(&mut ua, &proxy, "user1", "wrong"), 401);
    assert_eq!(register_with_password(&mut ua, &proxy, "user1", PASSWORD), 200);
    // Added by the operator while the proxy runs: the file is read again.
    assert_eq!(register_with_password(&mut ua, &proxy, "late", "pw:late"), 401, "not a subscriber yet");
    serc_db(&["add-user", "sip:late@example.com", "pw:late", "--db-url", &url]);
    assert_eq!(register_with_password(&mut ua, &proxy, "late", "pw:late"), 200);
    // usrloc wrote both bindings through to the location file, before each 200.
    let location = std::fs::read_to_string(tables.join("location")).unwrap();
    for user in ["user1", "late"] {
        let contact = format!(":sip\\:{user}@127.0.0.1\\:5999:");
        assert!(location.lines().any(|l| l.contains(&format!(":{user}:")) && l.contains(&contact)), "{location}");
    }
}
