//! auth: digest authentication of requests (RFC 2617 as RFC 3261 §22 uses
//! it), OpenSER 1.3's `auth` module — challenges, nonces, the check of a
//! response against an HA1. `auth_db` ([`super::auth_db`]) finds the HA1 in
//! the `subscriber` table and calls [`authorize`].
//!
//! Nonces: `EEEEEEEE IIIIIIII HHHH…` — the expiry time (8 hex digits, seconds
//! since 1970, as OpenSER 1.3), an index (8 hex digits) and MD5 of the two and
//! the `secret` (32 hex digits); 48 characters where OpenSER 1.3's had 40
//! without the index. The index gives each challenge its own nonce, and with
//! it the nonce-count check of `qop=auth` that 1.3 lacked: each index has a
//! slot remembering the highest `nc` accepted, so a replayed (nonce, nc) pair
//! is refused while a client reusing its nonce with a rising `nc` is accepted.
//! A slot is reused by the nonce issued [`NC_SLOTS`] challenges later; a
//! client whose nonce lost its slot is answered as for an expired nonce
//! (`stale=true`: it retries at once with a fresh one). Without `qop` a nonce
//! may be reused until it expires (RFC 2617 allows it; so did OpenSER 1.3).
//! The slots live in the proxy process: proxies sharing a `secret` accept each
//! other's nonces only without `qop`.
//!
//! Return codes are OpenSER 1.3's (`auth_result_t`): 1 authorized, 0 an
//! error for which a reply was sent (the script stops), -1 user unknown,
//! -3 stale or invalid nonce, -4 no credentials for the realm, -5 a wrong
//! response (1.3 gives -5, not its unused -2 "invalid password").

use std::borrow::Cow;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use md5::{Digest, Md5};

use crate::db::Db;
use crate::proxy::hex_to;
use crate::script::args::Format;
use crate::script::Ctx;
use crate::sip::{HeaderName, Method};

#[cfg(test)]
use super::uri::digest_param;
use super::uri::digest_params;

/// Nonces whose nc is remembered at once (a slot is 8 bytes: 512 KiB).
pub const NC_SLOTS: usize = 1 << 16;

/// `auth_result_t` of OpenSER 1.3.
pub const AUTHORIZED: i32 = 1;
pub const ERROR: i32 = 0;
pub const USER_UNKNOWN: i32 = -1;
pub const STALE_NONCE: i32 = -3;
pub const NO_CREDENTIALS: i32 = -4;
pub const AUTH_ERROR: i32 = -5;

/// A proxy's [`Auth`], built on first use from the modparams (clones share it).
#[derive(Clone, Default)]
pub struct AuthSlot(Arc<OnceLock<Arc<Auth>>>);

impl std::fmt::Debug for AuthSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "AuthSlot(built)" } else { "AuthSlot(not built)" })
    }
}

impl AuthSlot {
    pub fn get_or_init(&self, config: &crate::script::Config) -> &Arc<Auth> {
        self.0.get_or_init(|| Arc::new(Auth::new(config)))
    }
}

/// The nonce secret, the nonce-count slots, and auth_db's database.
pub struct Auth {
    secret: Vec<u8>,
    nonce_expire: i64,
    realm_prefix: String,
    next_index: AtomicU32,
    slots: Box<[AtomicU64]>,
    /// auth_db's database, opened by [`super::auth_db::start`].
    pub(crate) db: OnceLock<Db>,
}

/// What a received nonce is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonceState {
    /// One of ours, not expired.
    Valid { index: u32 },
    /// One of ours, expired.
    Expired { index: u32 },
    /// Not one of ours (another secret, tampered with, or not a nonce).
    Invalid,
}

/// The nonce-count check of `qop` credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NcCheck {
    /// Higher than any accepted with this nonce: accepted (and remembered).
    Fresh,
    /// Not higher than one accepted before: a replay.
    Replayed,
    /// The nonce's slot went to a newer nonce: its counts are forgotten.
    Forgotten,
}

impl Auth {
    pub fn new(config: &crate::script::Config) -> Auth {
        let params = &config.params;
        let secret = match params.explicit("auth", "secret") {
            Some(v) if !v.as_text().is_empty() => v.as_text().into_owned().into_bytes(),
            // OpenSER 1.3 makes a random secret at start-up too.
            _ => random_secret(),
        };
        let slots = (0..NC_SLOTS).map(|_| AtomicU64::new(0)).collect::<Vec<_>>().into_boxed_slice();
        Auth {
            secret,
            nonce_expire: params.int("auth", "nonce_expire"),
            realm_prefix: params.get("auth", "realm_prefix").as_text().into_owned(),
            // Index 0 is never issued, so an unused slot matches no nonce.
            next_index: AtomicU32::new(1),
            slots,
            db: OnceLock::new(),
        }
    }

    /// A new nonce expiring `nonce_expire` seconds after `now` (Unix seconds).
    pub fn issue(&self, now: i64) -> String {
        let mut index = self.next_index.fetch_add(1, Ordering::Relaxed);
        if index == 0 {
            index = self.next_index.fetch_add(1, Ordering::Relaxed);
        }
        self.slots[index as usize % NC_SLOTS].store(u64::from(index) << 32, Ordering::Relaxed);
        let expires = (now + self.nonce_expire).clamp(0, i64::from(u32::MAX)) as u32;
        self.nonce(expires, index)
    }

    fn nonce(&self, expires: u32, index: u32) -> String {
        // 48 hexadecimal digits: ASCII.
        String::from_utf8_lossy(&self.nonce_bytes(expires, index)).into_owned()
    }

    /// The nonce's 48 hexadecimal digits: `expires` and `index` (8 each),
    /// then the MD5 of those 16 and the secret.
    fn nonce_bytes(&self, expires: u32, index: u32) -> [u8; 48] {
        let mut out = [0u8; 48];
        hex_to(&mut out[..8], &expires.to_be_bytes());
        hex_to(&mut out[8..16], &index.to_be_bytes());
        let mut h = Md5::new();
        h.update(&out[..16]);
        h.update(&self.secret);
        hex_to(&mut out[16..], &h.finalize());
        out
    }

    /// Whether `nonce` is one of ours and still valid at `now`.
    pub fn check_nonce(&self, nonce: &str, now: i64) -> NonceState {
        if nonce.len() != 48 || !nonce.bytes().all(|b| b.is_ascii_hexdigit()) {
            return NonceState::Invalid;
        }
        let (Ok(expires), Ok(index)) = (u32::from_str_radix(&nonce[..8], 16), u32::from_str_radix(&nonce[8..16], 16))
        else {
            return NonceState::Invalid;
        };
        let ours = self.nonce_bytes(expires, index);
        // Compared without an early exit (the length is public).
        let differ = ours.iter().zip(nonce.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b.to_ascii_lowercase()));
        if differ != 0 {
            return NonceState::Invalid;
        }
        if i64::from(expires) < now {
            NonceState::Expired { index }
        } else {
            NonceState::Valid { index }
        }
    }

    /// Accepts `nc` for the nonce numbered `index` if it is higher than every
    /// count accepted with it before.
    pub fn use_nc(&self, index: u32, nc: u32) -> NcCheck {
        let slot = &self.slots[index as usize % NC_SLOTS];
        let mut current = slot.load(Ordering::Acquire);
        loop {
            if (current >> 32) as u32 != index {
                return NcCheck::Forgotten;
            }
            if nc <= current as u32 {
                return NcCheck::Replayed;
            }
            let new = (u64::from(index) << 32) | u64::from(nc);
            match slot.compare_exchange_weak(current, new, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => return NcCheck::Fresh,
                Err(seen) => current = seen,
            }
        }
    }
}

fn random_secret() -> Vec<u8> {
    use std::io::Read;
    let mut bytes = [0u8; 16];
    if std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes)).is_err() {
        // No /dev/urandom: the standard library's per-process random keys.
        use std::hash::{BuildHasher, Hasher};
        for chunk in bytes.chunks_mut(8) {
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u128(SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
            chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
        }
    }
    let mut out = [0u8; 32];
    hex_to(&mut out, &bytes);
    out.to_vec()
}

/// MD5 of `parts` joined by `:`, as 32 lowercase hex digits (RFC 2617's `H`/`KD`).
pub fn md5_hex(parts: &[&[u8]]) -> String {
    // 32 hexadecimal digits: ASCII.
    String::from_utf8_lossy(&md5_digits(parts)).into_owned()
}

/// [`md5_hex`] on the stack.
fn md5_digits(parts: &[&[u8]]) -> [u8; 32] {
    let mut h = Md5::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update(b":");
        }
        h.update(p);
    }
    let mut out = [0u8; 32];
    hex_to(&mut out, &h.finalize());
    out
}

/// HA1 = MD5(username:realm:password) (RFC 2617 §3.2.2.2, algorithm MD5).
pub fn ha1(username: &str, realm: &str, password: &str) -> String {
    md5_hex(&[username.as_bytes(), realm.as_bytes(), password.as_bytes()])
}

fn now_secs() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0)
}

/// Which header carries the credentials and the challenge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Authorization / WWW-Authenticate, 401 (a registrar, a UAS).
    Www,
    /// Proxy-Authorization / Proxy-Authenticate, 407 (a proxy).
    Proxy,
}

impl Kind {
    fn credentials_header(self) -> HeaderName {
        match self {
            Kind::Www => HeaderName::Authorization,
            Kind::Proxy => HeaderName::ProxyAuthorization,
        }
    }
}

/// Digest credentials, unquoted (RFC 2617 §3.2.2).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub username: Cow<'a, str>,
    pub realm: Cow<'a, str>,
    pub nonce: Cow<'a, str>,
    pub uri: Cow<'a, str>,
    pub response: Cow<'a, str>,
    pub algorithm: Option<Cow<'a, str>>,
    pub cnonce: Option<Cow<'a, str>>,
    pub qop: Option<Cow<'a, str>>,
    pub nc: Option<Cow<'a, str>>,
}

impl<'a> Credentials<'a> {
    /// The credentials of a header value; `None` when they are not Digest
    /// credentials.
    pub fn parse(value: &'a str) -> Option<Credentials<'a>> {
        let scheme = value.trim_start().split(|c: char| c.is_ascii_whitespace()).next()?;
        if !scheme.eq_ignore_ascii_case("digest") {
            return None;
        }
        // One pass over the parameters; the first of each name counts.
        const NAMES: [&str; 9] = ["username", "realm", "nonce", "uri", "response", "algorithm", "cnonce", "qop", "nc"];
        let mut found: [Option<Cow<'a, str>>; 9] = Default::default();
        for (name, v) in digest_params(value).into_iter().flatten() {
            if let Some(i) = NAMES.iter().position(|n| n.eq_ignore_ascii_case(name)) {
                found[i].get_or_insert(v);
            }
        }
        let [username, realm, nonce, uri, response, algorithm, cnonce, qop, nc] = found;
        Some(Credentials {
            username: username.unwrap_or_default(),
            realm: realm.unwrap_or_default(),
            nonce: nonce.unwrap_or_default(),
            uri: uri.unwrap_or_default(),
            response: response.unwrap_or_default(),
            algorithm,
            cnonce,
            qop,
            nc,
        })
    }

    /// OpenSER 1.3's `check_dig_cred`: what must be there is there.
    pub fn well_formed(&self) -> bool {
        let filled = !self.username.is_empty() && !self.nonce.is_empty() && !self.uri.is_empty();
        let response = self.response.len() == 32 && self.response.bytes().all(|b| b.is_ascii_hexdigit());
        let algorithm = self.algorithm.as_deref().is_none_or(|a| a.eq_ignore_ascii_case("MD5"));
        let qop = match self.qop.as_deref() {
            None => true,
            Some(q) if q.eq_ignore_ascii_case("auth") || q.eq_ignore_ascii_case("auth-int") => {
                self.cnonce.as_deref().is_some_and(|c| !c.is_empty()) && self.nc_value().is_some()
            }
            Some(_) => false,
        };
        filled && response && algorithm && qop
    }

    /// `nc`: eight hex digits.
    pub fn nc_value(&self) -> Option<u32> {
        let nc = self.nc.as_deref()?;
        if nc.len() != 8 {
            return None;
        }
        u32::from_str_radix(nc, 16).ok()
    }

    /// The user name without a `@domain` part, and that part (OpenSER's
    /// `struct username`).
    pub fn user_and_domain(&self) -> (&str, Option<&str>) {
        match self.username.split_once('@') {
            Some((u, d)) => (u, Some(d)),
            None => (&self.username, None),
        }
    }

    /// The response the client must have computed with `ha1`
    /// (RFC 2617 §3.2.2.1), for a request of `method` with `body`.
    pub fn expected_response(&self, ha1: &str, method: &[u8], body: &[u8]) -> String {
        let qop = self.qop.as_deref();
        let ha2 = match qop {
            Some(q) if q.eq_ignore_ascii_case("auth-int") => {
                let hbody = md5_digits(&[body]);
                md5_digits(&[method, self.uri.as_bytes(), &hbody])
            }
            _ => md5_digits(&[method, self.uri.as_bytes()]),
        };
        match qop {
            Some(q) => md5_hex(&[
                ha1.as_bytes(),
                self.nonce.as_bytes(),
                self.nc.as_deref().unwrap_or("").as_bytes(),
                self.cnonce.as_deref().unwrap_or("").as_bytes(),
                q.as_bytes(),
                &ha2,
            ]),
            None => md5_hex(&[ha1.as_bytes(), self.nonce.as_bytes(), &ha2]),
        }
    }
}

/// The realm: the argument's value, or, when it is empty, the host of the
/// To URI (a REGISTER's credentials) or the From URI, without `realm_prefix`.
fn realm(ctx: &Ctx, realm: &Format, kind: Kind, auth: &Auth) -> Option<String> {
    let given = realm.eval(ctx);
    if !given.is_empty() {
        return Some(given);
    }
    let msg = ctx.msg;
    let uri = if msg.method() == Some(Method::Register) && kind == Kind::Www { msg.to().uri } else { msg.from().uri };
    let uri = crate::sip::uri::parse(msg.text(uri)).ok()?;
    let host = uri.host_text;
    Some(
        host.strip_prefix(auth.realm_prefix.as_str())
            .filter(|_| !auth.realm_prefix.is_empty())
            .unwrap_or(host)
            .to_string(),
    )
}

/// OpenSER's `pre_auth` + the response check + `post_auth`, with the HA1
/// from `ha1_of` (given the credentials and the realm): `Ok(Some(ha1))`,
/// `Ok(None)` for an unknown user, `Err(())` when it could not be looked up
/// (then a 500 is sent).
pub fn authorize(
    ctx: &mut Ctx,
    realm_arg: &Format,
    kind: Kind,
    ha1_of: impl FnOnce(&Credentials<'_>, &str) -> Result<Option<String>, ()>,
) -> i32 {
    let msg = ctx.msg;
    if matches!(msg.method(), Some(Method::Ack | Method::Cancel)) {
        return AUTHORIZED;
    }
    let auth = ctx.config.auth.get_or_init(ctx.config).clone();
    let Some(realm) = realm(ctx, realm_arg, kind, &auth) else {
        tracing::error!("auth: no realm: the URI to take it from is not a SIP URI");
        super::sl::reply_with(ctx, 400, "Bad Request", "");
        return ERROR;
    };
    // The first credentials for the realm (OpenSER's find_credentials).
    let mut found = None;
    for (i, h) in msg.headers.iter().enumerate() {
        if h.name != kind.credentials_header() {
            continue;
        }
        let Some(c) = Credentials::parse(msg.text(h.value)) else { continue };
        if c.realm.eq_ignore_ascii_case(&realm) {
            found = Some((i, c));
            break;
        }
    }
    let Some((index, creds)) = found else { return NO_CREDENTIALS };
    if !creds.well_formed() {
        tracing::info!(user = %creds.username, "auth: credentials not filled properly");
        super::sl::reply_with(ctx, 400, "Bad Request", "");
        return ERROR;
    }
    let now = now_secs();
    let state = auth.check_nonce(&creds.nonce, now);
    if state == NonceState::Invalid {
        return STALE_NONCE;
    }
    let ha1 = match ha1_of(&creds, &realm) {
        Ok(Some(h)) => h,
        Ok(None) => return USER_UNKNOWN,
        Err(()) => {
            super::sl::reply_with(ctx, 500, "Server Internal Error", "");
            return ERROR;
        }
    };
    let method = msg.method_text();
    let body = &msg.bytes()[msg.body.range()];
    let expected = creds.expected_response(&ha1, method.as_bytes(), body);
    if !expected.eq_ignore_ascii_case(&creds.response) {
        return AUTH_ERROR;
    }
    // The right response: now the nonce's freshness and its count.
    let index_of_nonce = match state {
        NonceState::Valid { index } => index,
        NonceState::Expired { .. } | NonceState::Invalid => {
            ctx.authorized.stale = true;
            return STALE_NONCE;
        }
    };
    if creds.qop.is_some() {
        let nc = creds.nc_value().unwrap_or(0);
        match auth.use_nc(index_of_nonce, nc) {
            NcCheck::Fresh => {}
            NcCheck::Replayed => {
                tracing::info!(user = %creds.username, nc, "auth: a replayed nonce count refused");
                ctx.authorized.stale = true;
                return STALE_NONCE;
            }
            NcCheck::Forgotten => {
                ctx.authorized.stale = true;
                return STALE_NONCE;
            }
        }
    }
    match kind {
        Kind::Www => ctx.authorized.www = Some(index),
        Kind::Proxy => ctx.authorized.proxy = Some(index),
    }
    AUTHORIZED
}

fn challenge(ctx: &mut Ctx, realm_arg: &Format, qop: i64, kind: Kind) -> i32 {
    let auth = ctx.config.auth.get_or_init(ctx.config).clone();
    let Some(realm) = realm(ctx, realm_arg, kind, &auth) else {
        tracing::error!("auth: no realm: the URI to take it from is not a SIP URI");
        return if super::sl::reply_with(ctx, 400, "Bad Request", "") > 0 { ERROR } else { -1 };
    };
    let nonce = auth.issue(now_secs());
    let (code, reason, name) = match kind {
        Kind::Www => (401, "Unauthorized", "WWW-Authenticate"),
        Kind::Proxy => (407, "Proxy Authentication Required", "Proxy-Authenticate"),
    };
    let mut header = format!("{name}: Digest realm=\"{}\", nonce=\"{nonce}\"", quote(&realm));
    if qop != 0 {
        header.push_str(", qop=\"auth\"");
    }
    if ctx.authorized.stale {
        header.push_str(", stale=true");
    }
    header.push_str("\r\n");
    if super::sl::reply_with(ctx, code, reason, &header) > 0 {
        // Sent: the script ends here, as in OpenSER 1.3.
        ERROR
    } else {
        -1
    }
}

/// A realm inside a quoted-string.
fn quote(s: &str) -> Cow<'_, str> {
    if s.contains(['"', '\\']) {
        Cow::Owned(s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        Cow::Borrowed(s)
    }
}

/// `www_challenge(realm, qop)`: a 401 with a WWW-Authenticate challenge
/// (`qop="auth"` when `qop` is not 0, `stale=true` after an authorize that
/// found the right response with a stale nonce). 0 once sent: the script ends.
pub fn www_challenge(ctx: &mut Ctx, realm: &Format, qop: i64) -> i32 {
    challenge(ctx, realm, qop, Kind::Www)
}

/// `proxy_challenge(realm, qop)`: the same with 407 and Proxy-Authenticate.
pub fn proxy_challenge(ctx: &mut Ctx, realm: &Format, qop: i64) -> i32 {
    challenge(ctx, realm, qop, Kind::Proxy)
}

/// `consume_credentials()`: removes the credentials that were authorized
/// (proxy credentials first, as 1.3 looks), so they do not travel on.
pub fn consume_credentials(ctx: &mut Ctx) -> i32 {
    let Some(index) = ctx.authorized.proxy.or(ctx.authorized.www) else {
        if !matches!(ctx.msg.method(), Some(Method::Ack | Method::Cancel)) {
            tracing::error!("consume_credentials: no authorized credentials (error in the script)");
        }
        return -1;
    };
    let Some(h) = ctx.msg.headers.get(index) else { return -1 };
    let mark = ctx.edits.checkpoint();
    ctx.edits.replace(h.line.range(), Bytes::new());
    if let Err(e) = ctx.msg.write(&ctx.edits) {
        ctx.edits.rollback(mark);
        tracing::error!(error = %e, "consume_credentials: the change clashes with an earlier edit; not made");
        return -1;
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth() -> Auth {
        let mut config = crate::script::Config::default();
        config.params.set("auth", "secret", crate::script::Value::str("s3cret"));
        Auth::new(&config)
    }

    #[test]
    fn nonces_verify_expire_and_refuse_tampering() {
        let a = auth();
        let n = a.issue(1_000);
        assert_eq!(n.len(), 48);
        assert!(matches!(a.check_nonce(&n, 1_000), NonceState::Valid { .. }));
        assert!(matches!(a.check_nonce(&n, 1_300), NonceState::Valid { .. }), "300 s by default");
        assert!(matches!(a.check_nonce(&n, 1_301), NonceState::Expired { .. }));
        assert!(matches!(a.check_nonce(&n.to_uppercase(), 1_000), NonceState::Valid { .. }));
        // A later expiry with the old signature, another index, other secrets.
        let later = format!("{:08x}{}", 5_000, &n[8..]);
        assert_eq!(a.check_nonce(&later, 1_000), NonceState::Invalid);
        let other_index = format!("{}{:08x}{}", &n[..8], 7, &n[16..]);
        assert_eq!(a.check_nonce(&other_index, 1_000), NonceState::Invalid);
        assert_eq!(auth_with_secret("other").check_nonce(&n, 1_000), NonceState::Invalid);
        for junk in ["", "abc", &n[..47], &format!("{}g", &n[..47])] {
            assert_eq!(a.check_nonce(junk, 1_000), NonceState::Invalid, "{junk}");
        }
        assert_ne!(a.issue(1_000), a.issue(1_000), "each challenge its own nonce");
    }

    fn auth_with_secret(secret: &str) -> Auth {
        let mut config = crate::script::Config::default();
        config.params.set("auth", "secret", crate::script::Value::str(secret));
        Auth::new(&config)
    }

    #[test]
    fn nonce_counts_rise_and_replays_are_refused() {
        let a = auth();
        let n = a.issue(0);
        let NonceState::Valid { index } = a.check_nonce(&n, 0) else { panic!() };
        assert_eq!(a.use_nc(index, 1), NcCheck::Fresh);
        assert_eq!(a.use_nc(index, 1), NcCheck::Replayed);
        assert_eq!(a.use_nc(index, 3), NcCheck::Fresh, "counts may skip");
        assert_eq!(a.use_nc(index, 2), NcCheck::Replayed);
        // NC_SLOTS challenges later the slot belongs to another nonce.
        for _ in 0..NC_SLOTS {
            a.issue(0);
        }
        assert_eq!(a.use_nc(index, 4), NcCheck::Forgotten);
    }

    #[test]
    fn responses_follow_rfc_2617() {
        // RFC 2617 §3.5's example (HTTP, qop=auth).
        let value = r#"Digest username="Mufasa", realm="testrealm@host.com", nonce="dcd98b7102dd2f0e8b11d0f600bfb0c093", uri="/dir/index.html", qop=auth, nc=00000001, cnonce="0a4f113b", response="6629fae49393a05397450978507c4ef1", opaque="5ccc069c403ebaf9f0171e9517f40e41""#;
        let c = Credentials::parse(value).unwrap();
        assert!(c.well_formed());
        assert_eq!(c.nc_value(), Some(1));
        let ha1 = ha1("Mufasa", "testrealm@host.com", "Circle Of Life");
        assert_eq!(c.expected_response(&ha1, b"GET", b""), "6629fae49393a05397450978507c4ef1");
        assert!(Credentials::parse("Basic QWxhZGRpbjpvcGVu").is_none());
        let mut bad = c.clone();
        bad.nc = None;
        assert!(!bad.well_formed(), "qop without nc");
        let mut md5sess = c;
        md5sess.algorithm = Some("MD5-sess".into());
        assert!(!md5sess.well_formed());
    }

    #[test]
    fn credentials_are_read_in_one_pass_as_digest_param_reads_each() {
        let value = r#"Digest USERNAME="a\"b", realm=r1, realm="r2", Opaque="x", nonce="n,1", uri="sip:x", response=abc, qop=auth, nc=00000002, cnonce="c\\d""#;
        let c = Credentials::parse(value).unwrap();
        let each = |name| digest_param(value, name);
        for (name, got) in [
            ("username", Some(&c.username)),
            ("realm", Some(&c.realm)),
            ("nonce", Some(&c.nonce)),
            ("uri", Some(&c.uri)),
            ("response", Some(&c.response)),
            ("qop", c.qop.as_ref()),
            ("nc", c.nc.as_ref()),
            ("cnonce", c.cnonce.as_ref()),
            ("algorithm", c.algorithm.as_ref()),
        ] {
            assert_eq!(got, each(name).as_ref(), "{name}");
        }
        assert_eq!((c.username.as_ref(), c.realm.as_ref(), c.cnonce.as_deref()), ("a\"b", "r1", Some("c\\d")));
        // A name without its `=` swallows the next name; an unclosed quote ends the list.
        let c = Credentials::parse(r#"Digest username="u", junk, nonce="n", realm="r"#).unwrap();
        assert_eq!((c.username.as_ref(), c.nonce.as_ref(), c.realm.as_ref()), ("u", "", ""));
    }
}
