//! Subscribers and domains, managed the way OpenSER 1.3's `openserctl` did
//! (`serc db add-user`, `remove-user`, `add-domain`): a subscriber row holds
//! the password in clear and its two digest hashes, `ha1` =
//! MD5(user:domain:password) and `ha1b` = MD5(user@domain:domain:password),
//! which auth_db reads when `calculate_ha1` is off.

use super::{Db, DbError, Stmt, Value};

/// An account: `sip:user@domain` (or `user@domain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub user: String,
    pub domain: String,
}

impl Account {
    /// Parses `sip:alice@example.com`, `sips:…` or `alice@example.com`
    /// (parameters and a port are left out of the domain).
    pub fn parse(text: &str) -> Result<Account, DbError> {
        let bad = |why: &str| DbError::Query(format!("`{text}`: {why} (expected sip:USER@DOMAIN)"));
        let t = text.trim();
        let rest =
            t.strip_prefix("sip:").or_else(|| t.strip_prefix("sips:")).or_else(|| t.strip_prefix("SIP:")).unwrap_or(t);
        let rest = rest.split([';', '?', '>']).next().unwrap_or("");
        let (user, hostport) = rest.rsplit_once('@').ok_or_else(|| bad("no user"))?;
        let domain = match hostport.strip_prefix('[') {
            Some(v6) => format!("[{}]", v6.split(']').next().unwrap_or("")),
            None => hostport.split(':').next().unwrap_or("").to_string(),
        };
        if user.is_empty() {
            return Err(bad("no user"));
        }
        if domain.is_empty() || domain == "[]" {
            return Err(bad("no domain"));
        }
        let ok = |s: &str| !s.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok(user) || !ok(&domain) {
            return Err(bad("spaces or control characters"));
        }
        if user.len() > 64 || domain.len() > 64 {
            return Err(bad("user and domain are at most 64 characters each"));
        }
        Ok(Account { user: user.to_string(), domain: domain.to_ascii_lowercase() })
    }
}

/// `ha1` = MD5(user:domain:password).
pub fn ha1(user: &str, domain: &str, password: &str) -> String {
    crate::modules::auth::ha1(user, domain, password)
}

/// `ha1b` = MD5(user@domain:domain:password), for clients that send the
/// domain in the username.
pub fn ha1b(user: &str, domain: &str, password: &str) -> String {
    crate::modules::auth::ha1(&format!("{user}@{domain}"), domain, password)
}

fn now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64)
}

/// Adds a subscriber. Refused when it exists already, or when the password
/// does not fit 1.3's `password` column (25 characters).
pub async fn add_user(db: &Db, account: &Account, password: &str) -> Result<(), DbError> {
    if password.chars().count() > 25 {
        return Err(DbError::Query("the password is longer than 25 characters (the subscriber table's limit)".into()));
    }
    let Account { user, domain } = account;
    let found = db
        .query(
            "SELECT id FROM subscriber WHERE username = ? AND domain = ?",
            vec![user.as_str().into(), domain.as_str().into()],
        )
        .await?;
    if !found.is_empty() {
        return Err(DbError::Query(format!("the subscriber {user}@{domain} exists already")));
    }
    db.execute(
        "INSERT INTO subscriber (username, domain, password, ha1, ha1b, datetime_created) VALUES (?, ?, ?, ?, ?, ?)",
        vec![
            user.as_str().into(),
            domain.as_str().into(),
            password.into(),
            ha1(user, domain, password).into(),
            ha1b(user, domain, password).into(),
            Value::Time(now()),
        ],
    )
    .await?;
    Ok(())
}

/// Removes a subscriber (and its registered contacts, as openserctl's `rm`
/// did); false when there was none.
pub async fn remove_user(db: &Db, account: &Account) -> Result<bool, DbError> {
    let Account { user, domain } = account;
    let key = vec![Value::from(user.as_str()), Value::from(domain.as_str())];
    let mut stmts = vec![Stmt::new("DELETE FROM subscriber WHERE username = ? AND domain = ?", key.clone())];
    if super::schema::exists(db, "location").await? {
        stmts.push(Stmt::new("DELETE FROM location WHERE username = ? AND (domain = ? OR domain IS NULL)", key));
    }
    let gone = db
        .query(
            "SELECT id FROM subscriber WHERE username = ? AND domain = ?",
            vec![user.as_str().into(), domain.as_str().into()],
        )
        .await?;
    db.transaction(stmts).await?;
    Ok(!gone.is_empty())
}

/// Adds a domain to the `domain` table; false when it was there already.
pub async fn add_domain(db: &Db, domain: &str) -> Result<bool, DbError> {
    let domain = domain.trim().to_ascii_lowercase();
    if domain.is_empty() || domain.len() > 64 || domain.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DbError::Query(format!("`{domain}` is not a domain")));
    }
    if !db.query("SELECT id FROM domain WHERE domain = ?", vec![domain.as_str().into()]).await?.is_empty() {
        return Ok(false);
    }
    db.execute("INSERT INTO domain (domain, last_modified) VALUES (?, ?)", vec![domain.into(), Value::Time(now())])
        .await?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_and_hashes() {
        let a = Account::parse("sip:alice@Example.COM").unwrap();
        assert_eq!((a.user.as_str(), a.domain.as_str()), ("alice", "example.com"));
        assert_eq!(Account::parse("bob@example.com:5060;transport=udp").unwrap().domain, "example.com");
        for bad in ["", "sip:", "sip:@example.com", "sip:alice@", "alice", "sip:a b@x"] {
            assert!(Account::parse(bad).is_err(), "{bad:?}");
        }
        // RFC 2617's HA1 over "user:realm:password".
        assert_eq!(ha1("Mufasa", "testrealm@host.com", "Circle Of Life"), "939e7578ed9e3c518a452acee763bce9");
        assert_eq!(
            ha1b("alice", "example.com", "pw"),
            crate::modules::auth::md5_hex(&[b"alice@example.com:example.com:pw"])
        );
    }
}
