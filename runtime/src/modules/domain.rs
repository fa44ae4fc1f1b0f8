//! domain: which domains are local, from the `domain` table (OpenSER 1.3's
//! domain module): `is_from_local`, `is_uri_host_local`, `is_domain_local`.
//!
//! `db_mode` 0 asks the database at each call; 1 loads the table at start-up
//! and answers from memory. Domain names are compared without regard to case
//! (RFC 3261 §19.1.4): the host is looked up lower-cased, as `serc db
//! add-domain` stores it; in memory the table's names are lower-cased when
//! loaded. A database that fails answers "not local" (-1) with a log line, as
//! OpenSER 1.3 did.

use std::collections::HashSet;
use std::sync::{Arc, OnceLock};

use crate::db::{self, Db, Value as DbValue};
use crate::script::args::PvRef;
use crate::script::{Ctx, RouteKind};

/// The domain module's database and, with `db_mode` 1, the table in memory.
#[derive(Clone, Default)]
pub struct DomainSlot(Arc<OnceLock<Domains>>);

impl std::fmt::Debug for DomainSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "DomainSlot(started)" } else { "DomainSlot(not started)" })
    }
}

struct Domains {
    db: Db,
    sql: String,
    cached: Option<HashSet<String>>,
}

/// Opens the database when the config loads domain, checks the `domain`
/// table's version, and with `db_mode` 1 loads it.
pub async fn start(config: &crate::script::Config) -> Result<(), String> {
    let params = &config.params;
    if !params.is_loaded("domain") {
        return Ok(());
    }
    let err = |e: db::DbError| format!("domain: {e}");
    let explicit = params.explicit("domain", "db_url").map(|v| v.as_text().into_owned());
    let database =
        db::open_for_module("domain", explicit.as_deref(), "mysql://openserro:openserro@localhost/openser").await?;
    let table = params.get("domain", "domain_table").as_text().into_owned();
    let column = params.get("domain", "domain_col").as_text().into_owned();
    if table == "domain" {
        db::schema::check(&database, &["domain"]).await.map_err(err)?;
    }
    let (table, column) = (db::ident(&table).map_err(err)?, db::ident(&column).map_err(err)?);
    let cached = if params.int("domain", "db_mode") == 1 {
        let rows = database.query(format!("SELECT {column} FROM {table}"), vec![]).await.map_err(err)?;
        Some(rows.iter().filter_map(|r| r.text(0)).map(|d| d.to_ascii_lowercase()).collect())
    } else {
        None
    };
    let sql = format!("SELECT {column} FROM {table} WHERE {column} = ?");
    let _ = config.domain.0.set(Domains { db: database, sql, cached });
    Ok(())
}

/// 1 when `host` is in the domain table, else -1.
fn is_local(ctx: &Ctx, host: &str) -> i32 {
    let Some(domains) = ctx.config.domain.0.get() else {
        tracing::error!("domain: no database (the proxy was not started with the domain module loaded)");
        return -1;
    };
    let host = host.to_ascii_lowercase();
    let found = match &domains.cached {
        Some(set) => set.contains(&host),
        None => match domains.db.query_now(domains.sql.clone(), vec![DbValue::from(host.as_str())]) {
            Ok(rows) => !rows.is_empty(),
            Err(e) => {
                tracing::error!(error = %e, "domain: the lookup failed");
                false
            }
        },
    };
    if found {
        1
    } else {
        -1
    }
}

/// `is_from_local()`: the From URI's host is local (-2: no From URI).
pub fn is_from_local(ctx: &mut Ctx) -> i32 {
    let from = ctx.msg.text(ctx.msg.from().uri);
    match crate::sip::uri::parse(from) {
        Ok(u) => is_local(ctx, u.host_text),
        Err(_) => {
            tracing::error!("is_from_local: the From URI does not parse");
            -2
        }
    }
}

/// `is_uri_host_local()`: the Request-URI's host (as the script left it) is local.
pub fn is_uri_host_local(ctx: &mut Ctx) -> i32 {
    if !matches!(ctx.route, RouteKind::Request | RouteKind::Branch | RouteKind::Failure) {
        tracing::error!("is_uri_host_local: not in a request, branch or failure route");
        return -1;
    }
    let ruri = ctx.request_uri().to_string();
    match crate::sip::uri::parse(&ruri) {
        Ok(u) => is_local(ctx, u.host_text),
        Err(_) => {
            tracing::error!("is_uri_host_local: the Request-URI does not parse");
            -1
        }
    }
}

/// `is_domain_local(pvar)`: the pseudo-variable's value is a local domain.
pub fn is_domain_local(ctx: &mut Ctx, pvar: &PvRef) -> i32 {
    let value = pvar.get(ctx);
    let text = value.as_text();
    if value.is_null() || text.is_empty() {
        return -1;
    }
    is_local(ctx, &text)
}
