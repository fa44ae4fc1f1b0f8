//! acc: accounting of transactions to the log and to a database (OpenSER
//! 1.3's `acc` module, its syslog and database parts).
//!
//! # What is accounted (1.3's `acc_logic.c`)
//!
//! - A transaction is of interest when, as it is created, its request has
//!   `log_flag` or `log_missed_flag` set (a CANCEL only with
//!   `report_cancels`); an INVITE of interest then never times out silently
//!   (as if `noisy_ctimer` were on). [`Acc::interested`] decides this, tm
//!   keeps the answer in its cell ([`TxnAcc`]) with the request's flags as
//!   the last `t_relay` (or a failure route) left them.
//! - Each reply tm sends upstream for it (relayed, or tm's own finals:
//!   `t_reply`, 408) is offered to [`Acc::on_reply_out`]: a negative final
//!   of an INVITE with `log_missed_flag` logs `ACC: call missed:` and clears
//!   that flag (so a serial fork is logged again only when the failure route
//!   sets it again); then with `log_flag` a final (2xx; 3xx–6xx only with
//!   `failed_transaction_flag`; a 183 with `early_media`) logs
//!   `ACC: transaction answered:`. A 2xx retransmission with a To-tag already
//!   reported is not logged again.
//! - When the branches of an INVITE with `log_missed_flag` all fail and a
//!   failure route is armed, the missed call is logged before the route runs
//!   (1.3's `TMCB_ON_FAILURE`) and the flag is cleared for the route.
//! - With `report_ack`, the ACK of a 2xx of a transaction with `log_flag`
//!   logs `ACC: request acknowledged:` (the ACK's own tags, the transaction's
//!   status).
//! - `acc_log_request("[CODE ]comment")` logs `ACC: request accounted:` for
//!   the current request.
//!
//! A line is `<text>timestamp=<unix seconds>;method=…;from_tag=…;to_tag=…;
//! call_id=…;code=…;reason=…` followed by `;name=value` for each `log_extra`
//! pair (pseudo-variables read on the transaction's request with its AVPs;
//! null is empty), logged at `log_level` (OpenSER's numbers: 2 `L_NOTICE`,
//! the default, is INFO) with target `acc`. With `detect_direction`, a
//! request going upstream (its From tag is not the `ftag` of our Route) has
//! its From and To tags swapped. The To tag of a reply tm made itself is the
//! request's (1.3 reads the To of the request for its own replies).
//!
//! While acc records nothing (no line its level lets through, no row:
//! [`Acc::records`]), tm gathers nothing for it: no reply is parsed for it,
//! and an INVITE answered then keeps only its key, not its request, for the
//! 32 s of its Accepted state. So where OpenSER 1.3 would log the 2xx of
//! another To tag that comes after the level was raised (MI `debug`), serc
//! does not, as it did not log the first 2xx either.
//!
//! Database accounting (1.3's `acc_db.c`): the same decisions with
//! `db_flag` and `db_missed_flag` write a row to `db_table_acc` (`acc`) or
//! `db_table_missed_calls` (`missed_calls`) — method, from_tag, to_tag,
//! callid, sip_code, sip_reason, time (the `acc_*_column` names), and a column
//! per `db_extra` pair — through the database layer, in a task of the
//! database's runtime (tm never waits; a failed write is logged).
//! `acc_db_request("[CODE ]comment", table)` writes the current request now.
//! Without a `db_url` the db flags do nothing, as in OpenSER; with one, [`start`]
//! opens it and checks the tables' versions before the proxy serves. RADIUS
//! and DIAMETER accounting are not implemented.

use crate::modules::core::{enabled_at, log_at};
use crate::proxy::Source;
use crate::script::args::Level;
use crate::script::{Avps, Config, Ctx, ModParams, Vars};
use crate::sip::{Message, Method};

pub const ANSWERED: &str = "ACC: transaction answered: ";
pub const MISSED: &str = "ACC: call missed: ";
pub const ACKED: &str = "ACC: request acknowledged: ";
pub const REQUEST: &str = "ACC: request accounted: ";

/// One `log_extra` pair.
#[derive(Clone, Debug)]
struct Extra {
    name: String,
    value: crate::script::args::PvRef,
}

/// acc's modparams as the proxy runs them.
#[derive(Clone, Debug)]
pub struct AccSettings {
    log_flag: Option<u32>,
    log_missed_flag: Option<u32>,
    failed_flag: Option<u32>,
    report_ack: bool,
    report_cancels: bool,
    early_media: bool,
    detect_direction: bool,
    level: Level,
    extras: Vec<Extra>,
    /// `db_flag`, `db_missed_flag`: database accounting, only with a `db_url`.
    db_flag: Option<u32>,
    db_missed_flag: Option<u32>,
    /// `db_extra`: more columns (`column=$pv;…`).
    db_extras: Vec<Extra>,
}

fn flag(params: &ModParams, name: &str) -> Option<u32> {
    u32::try_from(params.int("acc", name)).ok().filter(|f| *f < 32)
}

impl AccSettings {
    pub fn from_params(params: &ModParams) -> AccSettings {
        let extra = params.get("acc", "log_extra");
        AccSettings {
            log_flag: flag(params, "log_flag"),
            log_missed_flag: flag(params, "log_missed_flag"),
            failed_flag: flag(params, "failed_transaction_flag"),
            report_ack: params.int("acc", "report_ack") != 0,
            report_cancels: params.int("acc", "report_cancels") != 0,
            early_media: params.int("acc", "early_media") != 0,
            detect_direction: params.int("acc", "detect_direction") != 0,
            level: Level::from_number(params.int("acc", "log_level")),
            extras: parse_extras(&extra.as_text()),
            db_flag: flag(params, "db_flag"),
            db_missed_flag: flag(params, "db_missed_flag"),
            db_extras: parse_extras(&params.get("acc", "db_extra").as_text()),
        }
    }

    fn has(flags: u32, flag: Option<u32>) -> bool {
        flag.is_some_and(|f| flags & (1 << f) != 0)
    }

    fn acc_on(&self, flags: u32) -> bool {
        Self::has(flags, self.log_flag)
    }

    fn mc_on(&self, flags: u32) -> bool {
        Self::has(flags, self.log_missed_flag)
    }

    /// `db_flag` or `db_missed_flag` is set: rows are written where there
    /// is a database.
    fn wants_rows(&self) -> bool {
        self.db_flag.is_some() || self.db_missed_flag.is_some()
    }
}

/// `log_extra`: `name=$pv;name=$pv…` (1.3's `parse_acc_extra`). A pair that
/// does not read is left out with an error line (OpenSER refused to start).
fn parse_extras(text: &str) -> Vec<Extra> {
    let mut out = Vec::new();
    for part in split_top(text) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let parsed = part.split_once('=').and_then(|(name, pv)| {
            let name = name.trim();
            let value = crate::script::args::PvRef::parse(pv.trim())?;
            (!name.is_empty() && !name.contains(char::is_whitespace)).then(|| Extra { name: name.to_string(), value })
        });
        match parsed {
            Some(e) => out.push(e),
            None => tracing::error!(target: "acc", extra = part, "acc: a log_extra pair does not read; left out"),
        }
    }
    out
}

/// Splits at `;` outside parentheses (`$(hdr(X){s.select,1,;})` keeps its own).
fn split_top(text: &str) -> Vec<&str> {
    let (mut depth, mut start, mut out) = (0i32, 0usize, Vec::new());
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ';' if depth <= 0 => {
                out.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&text[start..]);
    out
}

/// acc in a proxy: its settings and what it evaluates `log_extra` with.
pub struct Acc {
    pub settings: AccSettings,
    /// The proxy's config (without its tm: a copy whose tm slot is empty, so
    /// tm does not hold itself).
    config: Config,
}

impl std::fmt::Debug for Acc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acc").field("settings", &self.settings).finish()
    }
}

/// What acc keeps for a transaction of interest (in tm's cell).
#[derive(Clone, Debug, Default)]
pub struct TxnAcc {
    /// The request's flags as tm last saw them (creation, `t_relay`, failure).
    pub flags: u32,
    /// `detect_direction`: the request goes upstream (From and To swapped).
    pub upstream: bool,
    /// The To tags of the 2xx already reported (a retransmission is not).
    reported_2xx: Vec<String>,
}

impl TxnAcc {
    /// A 2xx with this To tag was accounted (an ACK with it acknowledges it).
    pub fn answered(&self, to_tag: &str) -> bool {
        self.reported_2xx.iter().any(|t| t == to_tag)
    }

    /// Some 2xx was accounted: an ACK may acknowledge it.
    pub fn answered_any(&self) -> bool {
        !self.reported_2xx.is_empty()
    }
}

/// A reply as acc reads it.
#[derive(Clone, Debug)]
pub struct ReplyFields {
    pub code: u16,
    pub reason: String,
    pub to_tag: String,
}

impl ReplyFields {
    /// A reply's code, reason and To tag; `local`: tm made it, so the To tag
    /// is the request's (as 1.3 reads it).
    pub fn of(reply: &Message, request: &Message, local: bool) -> ReplyFields {
        let (code, reason) = match reply.start {
            crate::sip::StartLine::Response { code, reason } => (code, reply.text(reason).to_string()),
            crate::sip::StartLine::Request { .. } => (0, String::new()),
        };
        let tags = if local { request } else { reply };
        ReplyFields { code, reason, to_tag: tags.to_tag.map_or("", |t| tags.text(t)).to_string() }
    }
}

/// A line to log, built under tm's locks and logged after.
#[derive(Debug)]
pub struct Record {
    pub text: &'static str,
    pub msg: Message,
    pub src: Source,
    pub ruri: Option<String>,
    pub avps: Avps,
    pub flags: u32,
    pub code: String,
    pub reason: String,
    /// The other side's tag: a reply's To tag (the ACK's, the request's).
    pub to_tag: String,
    pub upstream: bool,
    /// Logged (the log flags), written to the database (the db flags).
    pub log: bool,
    pub db: bool,
}

/// acc's database (`db_url`), opened at start-up (see [`start`]).
#[derive(Clone, Default)]
pub struct AccDbSlot(std::sync::Arc<std::sync::OnceLock<AccDb>>);

impl std::fmt::Debug for AccDbSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "AccDbSlot(database)" } else { "AccDbSlot(none)" })
    }
}

/// The database and the validated table and column names.
struct AccDb {
    db: crate::db::Db,
    acc_table: String,
    missed_table: String,
    /// method, from_tag, to_tag, callid, sip_code, sip_reason, time.
    columns: [String; 7],
}

/// Opens acc's database when the config loads acc with a non-empty `db_url`
/// (without one, as in OpenSER, `db_flag` accounts nothing to a database).
pub async fn start(config: &Config) -> Result<(), String> {
    let params = &config.params;
    if !params.is_loaded("acc") {
        return Ok(());
    }
    let Some(url) = params.explicit("acc", "db_url").map(|v| v.as_text().into_owned()).filter(|u| !u.is_empty()) else {
        return Ok(());
    };
    let err = |e: crate::db::DbError| format!("acc: {e}");
    let url = crate::db::DbUrl::parse(&url).map_err(err)?;
    let db = crate::db::Db::open(&url, crate::db::DEFAULT_TIMEOUT).map_err(err)?;
    let text = |p: &str| params.get("acc", p).as_text().into_owned();
    let ident = |p: &str| crate::db::ident(&text(p)).map(str::to_string).map_err(err);
    let (acc_table, missed_table) = (ident("db_table_acc")?, ident("db_table_missed_calls")?);
    let standard: Vec<&str> = [acc_table.as_str(), missed_table.as_str()]
        .into_iter()
        .filter(|t| matches!(*t, "acc" | "missed_calls"))
        .collect();
    crate::db::schema::check(&db, &standard).await.map_err(err)?;
    let columns = [
        ident("acc_method_column")?,
        ident("acc_from_tag_column")?,
        ident("acc_to_tag_column")?,
        ident("acc_callid_column")?,
        ident("acc_sip_code_column")?,
        ident("acc_sip_reason_column")?,
        ident("acc_time_column")?,
    ];
    for e in AccSettings::from_params(params).db_extras {
        crate::db::ident(&e.name).map_err(err)?;
    }
    let _ = config.acc_db.0.set(AccDb { db, acc_table, missed_table, columns });
    Ok(())
}

impl Acc {
    /// acc for a proxy whose config is `config`; `None` when no log flag is
    /// configured (nothing can ever be accounted).
    pub fn new(config: &Config) -> Option<Acc> {
        let settings = AccSettings::from_params(&config.params);
        let db = config.acc_db.0.get().is_some() && settings.wants_rows();
        if settings.log_flag.is_none() && settings.log_missed_flag.is_none() && !db {
            return None;
        }
        let config = Config { tm: Default::default(), ..config.clone() };
        Some(Acc { settings, config })
    }

    /// 1.3's `acc_onreq`: whether the transaction `ctx`'s request creates is
    /// accounted.
    pub fn interested(&self, ctx: &mut Ctx) -> Option<TxnAcc> {
        let s = &self.settings;
        if ctx.msg.method() == Some(Method::Cancel) && !s.report_cancels {
            return None;
        }
        let flags = ctx.flags;
        if !s.acc_on(flags) && !s.mc_on(flags) && !self.db_on(flags) && !self.db_mc_on(flags) {
            return None;
        }
        let upstream = s.detect_direction && super::rr::is_direction(ctx, "upstream") == 1;
        Some(TxnAcc { flags: ctx.flags, upstream, reported_2xx: Vec::new() })
    }

    /// A reply going upstream for a transaction of interest (1.3's
    /// `acc_onreply`): the records to log. `record` makes one for a text.
    pub fn on_reply_out(
        &self,
        txn: &mut TxnAcc,
        invite: bool,
        reply: &ReplyFields,
        mut record: impl FnMut(&'static str, u32) -> Record,
    ) -> Vec<Record> {
        let s = &self.settings;
        let mut out = Vec::new();
        let code = reply.code;
        if invite && code >= 300 {
            if let Some(r) = self.missed(txn, &mut record) {
                out.push(r);
            }
        }
        let failed_ok = AccSettings::has(txn.flags, s.failed_flag);
        let code_ok = (code < 300 || failed_ok) && (code >= 200 || (s.early_media && code == 183));
        let (log, db) = (code_ok && s.acc_on(txn.flags), code_ok && self.db_on(txn.flags));
        if log || db {
            if (200..300).contains(&code) {
                if txn.reported_2xx.contains(&reply.to_tag) {
                    return out;
                }
                txn.reported_2xx.push(reply.to_tag.clone());
            }
            let mut r = record(ANSWERED, txn.flags);
            (r.log, r.db) = (log, db);
            out.push(r);
        }
        out
    }

    /// The missed-call record of a negative INVITE final (log and/or
    /// database, as their flags say), clearing those flags (1.3 resets
    /// them so a serial fork is reported once per failure route).
    fn missed(&self, txn: &mut TxnAcc, record: &mut impl FnMut(&'static str, u32) -> Record) -> Option<Record> {
        let s = &self.settings;
        let (log, db) = (s.mc_on(txn.flags), self.db_mc_on(txn.flags));
        if !log && !db {
            return None;
        }
        let mut r = record(MISSED, txn.flags);
        (r.log, r.db) = (log, db);
        txn.flags = self.clear_missed(txn.flags);
        Some(r)
    }

    /// Whether a line at acc's `log_level` would be written now (the
    /// subscriber's filter, which `--log-level` and the MI set): when not,
    /// no line is built.
    fn logs(&self) -> bool {
        enabled_at!("acc", self.settings.level)
    }

    /// Whether anything acc records would go anywhere now: a line its level
    /// lets through, or a row (a database and `db_flag` or `db_missed_flag`).
    /// tm asks before it parses a reply and gathers a record's fields.
    pub fn records(&self) -> bool {
        (self.config.acc_db.0.get().is_some() && self.settings.wants_rows()) || self.logs()
    }

    /// `db_flag` is set and there is a database.
    fn db_on(&self, flags: u32) -> bool {
        self.config.acc_db.0.get().is_some() && AccSettings::has(flags, self.settings.db_flag)
    }

    fn db_mc_on(&self, flags: u32) -> bool {
        self.config.acc_db.0.get().is_some() && AccSettings::has(flags, self.settings.db_missed_flag)
    }

    /// Every branch of an INVITE failed and a failure route will run (1.3's
    /// `TMCB_ON_FAILURE`): the missed call, once; the flag is cleared.
    pub fn on_failure(
        &self,
        txn: &mut TxnAcc,
        invite: bool,
        record: impl FnOnce(&'static str, u32) -> Record,
    ) -> Option<Record> {
        if !invite {
            return None;
        }
        let mut record = Some(record);
        self.missed(txn, &mut |text, flags| (record.take().expect("called once"))(text, flags))
    }

    /// The flags a failure route starts with after [`Acc::on_failure`].
    pub fn clear_missed(&self, flags: u32) -> u32 {
        let mut flags = flags;
        for f in [self.settings.log_missed_flag, self.settings.db_missed_flag].into_iter().flatten() {
            flags &= !(1 << f);
        }
        flags
    }

    /// `report_ack` is on (tm then finds the transaction of an ACK).
    pub fn reports_acks(&self) -> bool {
        let s = &self.settings;
        s.report_ack && (s.log_flag.is_some() || (s.db_flag.is_some() && self.config.acc_db.0.get().is_some()))
    }

    /// The ACK of a 2xx (1.3's `acc_onack`, with `report_ack`): whether it is
    /// logged and whether it is written to the database.
    pub fn on_ack(&self, txn: &TxnAcc) -> (bool, bool) {
        if !self.settings.report_ack {
            return (false, false);
        }
        (self.settings.acc_on(txn.flags), self.db_on(txn.flags))
    }

    /// Logs a record and/or writes it to the database (a task on the
    /// database's runtime: tm never waits for it; a failed write is logged).
    pub fn emit(&self, r: Record) {
        let mut vars = Vars::default();
        let mut ctx = Ctx::new(&r.msg, r.src, &self.config, &mut vars);
        ctx.ruri = r.ruri;
        ctx.avps = r.avps;
        ctx.flags = r.flags;
        if r.log && self.logs() {
            let line = line(&ctx, r.text, &r.code, &r.reason, &r.to_tag, r.upstream, &self.settings.extras);
            log(self.settings.level, &line);
        }
        if r.db {
            let table = if r.text == MISSED { Table::Missed } else { Table::Acc };
            db_write(&ctx, table, &r.code, &r.reason, &r.to_tag, r.upstream, &self.settings.db_extras);
        }
    }
}

#[derive(Clone, Copy)]
enum Table<'a> {
    Acc,
    Missed,
    /// `acc_db_request`'s table (an identifier, checked).
    Named(&'a str),
}

/// One row of the acc (or missed_calls) table: 1.3's `acc_db_request`.
/// Returns whether the write was started.
fn db_write(
    ctx: &Ctx,
    table: Table<'_>,
    code: &str,
    reason: &str,
    to_tag: &str,
    upstream: bool,
    extras: &[Extra],
) -> bool {
    use crate::db::Value as DbValue;
    let Some(acc_db) = ctx.config.acc_db.0.get() else {
        tracing::error!("acc: no database (db_url)");
        return false;
    };
    let msg = ctx.msg;
    let from_tag = msg.from_tag.map_or("", |t| msg.text(t));
    let (from_tag, to_tag) = if upstream { (to_tag, from_tag) } else { (from_tag, to_tag) };
    let mut columns: Vec<&str> = acc_db.columns.iter().map(String::as_str).collect();
    let mut values = vec![
        DbValue::from(msg.method_text()),
        DbValue::from(from_tag),
        DbValue::from(to_tag),
        DbValue::from(msg.text(msg.call_id).trim()),
        DbValue::from(code),
        DbValue::from(reason),
        DbValue::Time(now_secs() as i64),
    ];
    for e in extras {
        columns.push(&e.name);
        values.push(DbValue::from(e.value.get(ctx).as_text().into_owned()));
    }
    let name = match table {
        Table::Acc => acc_db.acc_table.as_str(),
        Table::Missed => acc_db.missed_table.as_str(),
        Table::Named(t) => t,
    };
    let marks = vec!["?"; columns.len()].join(", ");
    let sql = format!("INSERT INTO {name} ({}) VALUES ({marks})", columns.join(", "));
    let write = acc_db.db.execute(sql, values);
    acc_db.db.spawn(async move {
        if let Err(e) = write.await {
            tracing::error!(target: "acc", error = %e, "acc: the record was not written to the database");
        }
    });
    true
}

fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// One accounting line (1.3's `acc_log_request`).
fn line(ctx: &Ctx, text: &str, code: &str, reason: &str, to_tag: &str, upstream: bool, extras: &[Extra]) -> String {
    let msg = ctx.msg;
    let from_tag = msg.from_tag.map_or("", |t| msg.text(t));
    let (from_tag, to_tag) = if upstream { (to_tag, from_tag) } else { (from_tag, to_tag) };
    let mut out = format!(
        "{text}timestamp={};method={};from_tag={from_tag};to_tag={to_tag};call_id={};code={code};reason={reason}",
        now_secs(),
        msg.method_text(),
        msg.text(msg.call_id).trim(),
    );
    for e in extras {
        out.push(';');
        out.push_str(&e.name);
        out.push('=');
        out.push_str(&e.value.get(ctx).as_text());
    }
    out
}

fn log(level: Level, text: &str) {
    log_at!("acc", level, text);
}

/// `[CODE ]comment` as 1.3's `acc_fixup` reads it: a code when the comment
/// starts with three digits, the rest as the reason.
fn code_and_reason(comment: &str) -> (&str, &str) {
    let b = comment.as_bytes();
    if b.len() >= 3 && b[..3].iter().all(u8::is_ascii_digit) {
        (&comment[..3], comment[3..].trim_start())
    } else {
        ("", comment)
    }
}

/// `acc_log_request("[CODE ]comment")`: logs the current request now
/// (`ACC: request accounted:`), with the code when the comment starts with
/// three digits (1.3's `acc_fixup`), the request's own To tag. 1.
pub fn acc_log_request(ctx: &mut Ctx, comment: &str) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("acc_log_request: not a request");
        return -1;
    }
    let settings = AccSettings::from_params(&ctx.config.params);
    let (code, reason) = code_and_reason(comment);
    let to_tag = ctx.msg.to_tag.map_or("", |t| ctx.msg.text(t));
    let line = line(ctx, REQUEST, code, reason, to_tag, false, &settings.extras);
    log(settings.level, &line);
    1
}

/// `acc_db_request("[CODE ]comment", table)`: writes the current request to
/// `table` now, as `acc_log_request` logs it; 1, or -1 without a database
/// (or a table name that is not an identifier).
pub fn acc_db_request(ctx: &mut Ctx, comment: &str, table: &str) -> i32 {
    if !ctx.msg.is_request() {
        tracing::error!("acc_db_request: not a request");
        return -1;
    }
    let Ok(table) = crate::db::ident(table) else {
        tracing::error!(table, "acc_db_request: not a table name");
        return -1;
    };
    let settings = AccSettings::from_params(&ctx.config.params);
    let (code, reason) = code_and_reason(comment);
    let to_tag = ctx.msg.to_tag.map_or("", |t| ctx.msg.text(t)).to_string();
    if db_write(ctx, Table::Named(table), code, reason, &to_tag, false, &settings.db_extras) {
        1
    } else {
        -1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::script::Value;

    #[test]
    fn extras_read_as_openser_reads_them() {
        let e = parse_extras("src_user=$fU; ru = $ru;h=$(hdr(X){s.select,1,;})");
        let names: Vec<_> = e.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["src_user", "ru", "h"]);
        assert!(parse_extras("x=notapv").is_empty());
    }

    #[test]
    fn records_only_what_the_log_level_lets_through_without_a_database() {
        use tracing_subscriber::layer::SubscriberExt as _;
        let mut config = Config::default();
        config.params.set("acc", "log_flag", Value::Int(1));
        let acc = Acc::new(&config).expect("log accounting");
        let at =
            |level| tracing_subscriber::registry().with(tracing_subscriber::filter::LevelFilter::from_level(level));
        // log_level's default, L_NOTICE, is written at info.
        tracing::subscriber::with_default(at(tracing::Level::INFO), || assert!(acc.records()));
        tracing::subscriber::with_default(at(tracing::Level::ERROR), || assert!(!acc.records()));
        // L_ERR lines pass an error filter.
        config.params.set("acc", "log_level", Value::Int(-1));
        let acc = Acc::new(&config).expect("log accounting");
        tracing::subscriber::with_default(at(tracing::Level::ERROR), || assert!(acc.records()));
    }

    #[test]
    fn flags_from_modparams() {
        let mut p = ModParams::default();
        let s = AccSettings::from_params(&p);
        assert_eq!((s.log_flag, s.log_missed_flag, s.level), (None, None, Level::Notice));
        p.set("acc", "log_flag", Value::Int(1));
        p.set("acc", "log_missed_flag", Value::Int(40));
        let s = AccSettings::from_params(&p);
        assert_eq!((s.log_flag, s.log_missed_flag), (Some(1), None));
        assert!(s.acc_on(0b10) && !s.acc_on(0b01));
    }
}
