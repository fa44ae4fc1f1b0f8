//! avpops: operations on AVPs (OpenSER 1.3's avpops module): loading,
//! storing and deleting them in the `usr_preferences` table (`avp_db_load`,
//! `avp_db_store`, `avp_db_delete`), raw queries whose rows become AVPs
//! (`avp_db_query`), and the operations in memory: `avp_delete`, `avp_copy`,
//! `avp_pushto`, `avp_check`, `avp_op`, `avp_subst`, `is_avp_set`.
//!
//! The arguments are text in 1.3's own syntax (manifest kind `Opaque`): each
//! text is parsed once, as 1.3's fixups parse it, and the parsed form is
//! cached by its text. What 1.3's fixups refuse at start-up is refused when
//! first called here: an error in the log and -1.
//!
//! # The database
//!
//! The table is `avp_table` (default `usr_preferences`, where 1.3 refused
//! to start without one), its columns the `*_column` modparams, checked to
//! be plain identifiers. The database is opened at start when the config
//! sets `db_url` (or its alias `avp_url`); without one, as in 1.3, there is
//! none, and the `avp_db_*` functions log an error and return -1 (1.3
//! refused such a config at start). A row's `type` column says whether the
//! name (bit 2) and the value (bit 1) are integers. Message data only ever
//! goes into statements as parameters — except in `avp_db_query`.
//!
//! `avp_db_query(query[, destinations])` runs the SQL text of its format
//! argument as the config's author wrote it, with the pseudo-variables of
//! the format replaced by their values as 1.3 did (so a value that holds a
//! quote changes the statement: the config must only put trusted values
//! there). It is the one place where SQL text comes from the config.
//!
//! A database that fails: -1 and a log line (1.3 sent no reply either).
//!
//! # Differences from OpenSER 1.3
//!
//! - Named DB schemes (`db_scheme`, `avp_db_load(…, "$avp(x)/$scheme")`) are
//!   not supported: the function refuses the argument.
//! - AVP script flags (`avp_delete("s1")`, `avp_db_load(…, "*3")`) are not
//!   kept by serc's AVPs: a non-zero flag number is refused.
//! - 1.3 marked loaded and stored AVPs so `avp_db_store` would not write them
//!   again; serc remembers them per message in the worker that handled it (a
//!   failure route running on another worker stores them again).
//! - `avp_pushto` to `$ru` checks the result is a URI.
//! - `avp_db_delete` returns -1 when the database fails (1.3 returned 1).
//! - What 1.3's fixups refused at start-up is refused at the first call (an
//!   error in the log, -1), not by `serc check`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use crate::db::{self, Db, DbUrl, Value as DbValue};
use crate::script::args::{AvpName, Format, PvRef, Regex, Subst};
use crate::script::pv::{self, Part, Pv};
use crate::script::{Branch, Ctx, Value};
use crate::sip::uri;

// ------------------------------------------------------------------ the database

/// avpops' database and table, opened at start (see the module's documentation).
#[derive(Clone, Default)]
pub struct AvpopsSlot(Arc<OnceLock<AvpDb>>);

impl std::fmt::Debug for AvpopsSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() { "AvpopsSlot(database)" } else { "AvpopsSlot(no database)" })
    }
}

struct AvpDb {
    db: Db,
    table: String,
    uuid: String,
    attribute: String,
    value: String,
    kind: String,
    username: String,
    domain: String,
    use_domain: bool,
}

/// Opens the database when the config loads avpops with a `db_url` (or
/// `avp_url`), and checks the `usr_preferences` table's version.
pub async fn start(config: &crate::script::Config) -> Result<(), String> {
    let params = &config.params;
    if !params.is_loaded("avpops") {
        return Ok(());
    }
    let err = |e: db::DbError| format!("avpops: {e}");
    let url = params
        .explicit("avpops", "db_url")
        .or_else(|| params.explicit("avpops", "avp_url"))
        .map(|v| v.as_text().into_owned())
        .filter(|u| !u.is_empty());
    let Some(url) = url else { return Ok(()) };
    let (url, _) = DbUrl::for_module(Some(url.as_str())).map_err(err)?;
    let database = Db::open(&url, db::DEFAULT_TIMEOUT).map_err(err)?;
    let text = |p: &str| params.get("avpops", p).as_text().into_owned();
    let table = match params.explicit("avpops", "avp_table").map(|v| v.as_text().into_owned()) {
        Some(t) if !t.is_empty() => t,
        _ => "usr_preferences".to_string(),
    };
    if table == "usr_preferences" {
        db::schema::check(&database, &["usr_preferences"]).await.map_err(err)?;
    }
    let name = |p: &str| db::ident(&text(p)).map(str::to_string).map_err(err);
    let avp_db = AvpDb {
        table: db::ident(&table).map_err(err)?.to_string(),
        uuid: name("uuid_column")?,
        attribute: name("attribute_column")?,
        value: name("value_column")?,
        kind: name("type_column")?,
        username: name("username_column")?,
        domain: name("domain_column")?,
        use_domain: params.int("avpops", "use_domain") != 0,
        db: database,
    };
    let _ = config.avpops.0.set(avp_db);
    Ok(())
}

fn database<'c>(ctx: &Ctx<'c>, what: &str) -> Option<&'c AvpDb> {
    let found = ctx.config.avpops.0.get();
    if found.is_none() {
        tracing::error!("{what}: avpops has no database (set its db_url)");
    }
    found
}

// ------------------------------------------------------------------ parsed arguments

/// Parsed arguments by their text: each text is parsed once.
struct Cache<T>(OnceLock<Mutex<Parsed<T>>>);

/// Each text with its parsed form or why 1.3 would refuse it.
type Parsed<T> = HashMap<String, Result<Arc<T>, String>>;

impl<T> Cache<T> {
    const fn new() -> Self {
        Cache(OnceLock::new())
    }

    /// The parsed form of `text`, or `None` (logged) when 1.3 would refuse it.
    fn get(&self, what: &str, text: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<Arc<T>> {
        let map = self.0.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|e| e.into_inner());
        let entry = map.entry(text.to_string()).or_insert_with(|| parse(text).map(Arc::new));
        match entry {
            Ok(t) => Some(t.clone()),
            Err(e) => {
                tracing::error!(arg = text, "{what}: {e}");
                None
            }
        }
    }
}

/// Which part of a URI keys the rows (`/username`, `/domain`, `/uri`, `/uuid`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Key {
    Uuid,
    User,
    Domain,
    Uri,
}

/// Where the key of `avp_db_*` comes from: a literal or a pseudo-variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbSource {
    Literal(String),
    Pv(PvRef),
}

/// The first argument of `avp_db_load`/`store`/`delete`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbKey {
    pub source: DbSource,
    pub key: Key,
}

/// Reads `$ru[/username|domain|uri|uuid]`, `'literal'[/…]`: a literal is a
/// uuid unless a flag says otherwise; `$ru`, `$from`, `$to`, `$ou` are URIs,
/// other variables uuids.
pub fn parse_db_key(text: &str) -> Result<DbKey, String> {
    let (spec, flag) = match text.split_once('/') {
        Some((s, f)) => (s, Some(f)),
        None => (text, None),
    };
    let flag = match flag.map(str::to_ascii_lowercase).as_deref() {
        None => None,
        Some("domain") => Some(Key::Domain),
        Some("username") => Some(Key::User),
        Some("uri") => Some(Key::Uri),
        Some("uuid") => Some(Key::Uuid),
        Some(other) => return Err(format!("unknown flag `{other}` (username, domain, uri or uuid)")),
    };
    if !spec.starts_with('$') {
        return Ok(DbKey { source: DbSource::Literal(spec.to_string()), key: flag.unwrap_or(Key::Uuid) });
    }
    let pv = PvRef::parse(spec).ok_or_else(|| format!("`{spec}` is not a pseudo-variable"))?;
    if matches!(pv.pv, Pv::Null) {
        return Err("expected a pseudo-variable or a value".into());
    }
    let uri_like = matches!(pv.pv, Pv::RUri | Pv::FromUri | Pv::ToUri | Pv::OUri);
    let key = flag.unwrap_or(if uri_like { Key::Uri } else { Key::Uuid });
    Ok(DbKey { source: DbSource::Pv(pv), key })
}

/// Which AVPs a name-less form means: `*`/`a` all, `s` string names, `i` integer names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NameType {
    Any,
    Str,
    Int,
}

/// An AVP named, or every AVP of a type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AvpSel {
    Named(AvpName),
    All(NameType),
}

/// The second argument of `avp_db_*`: the AVP and an optional table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DbName {
    pub avp: AvpSel,
    pub table: Option<String>,
}

/// `s`, `i`, `*`, `a` with an optional script-flag number (refused unless 0).
fn parse_type_sel(s: &str) -> Result<NameType, String> {
    let mut chars = s.chars();
    let kind = match chars.next() {
        Some('s' | 'S') => NameType::Str,
        Some('i' | 'I') => NameType::Int,
        Some('*' | 'a' | 'A') => NameType::Any,
        _ => return Err("expected $avp(name), *, s or i".into()),
    };
    let flags = chars.as_str();
    if !flags.is_empty() {
        let n: u32 = flags.parse().map_err(|_| format!("bad AVP flags `{flags}`"))?;
        if n != 0 {
            return Err("AVP script flags are not supported by serc".into());
        }
    }
    Ok(kind)
}

/// `$avp(name)` only.
fn parse_avp(spec: &str) -> Result<AvpName, String> {
    match PvRef::parse(spec) {
        Some(PvRef { pv: Pv::Avp(name), .. }) => Ok(name),
        Some(_) => Err(format!("`{spec}` is not an AVP ($avp(name) expected)")),
        None => Err(format!("`{spec}` is not a pseudo-variable")),
    }
}

/// Reads `$avp(name)[/table]`, `*[/table]`, `s`, `i` (`/$scheme` refused:
/// serc has no DB schemes).
pub fn parse_db_name(text: &str) -> Result<DbName, String> {
    let (spec, table) = match text.split_once('/') {
        Some((s, t)) => (s, Some(t)),
        None => (text, None),
    };
    let avp = if spec.starts_with('$') { AvpSel::Named(parse_avp(spec)?) } else { AvpSel::All(parse_type_sel(spec)?) };
    let table = match table {
        None => None,
        Some("") => return Err("empty table name".into()),
        Some(t) if t.starts_with('$') => return Err(format!("DB schemes (`{t}`) are not supported by serc")),
        Some(t) => Some(db::ident(t).map_err(|e| e.to_string())?.to_string()),
    };
    Ok(DbName { avp, table })
}

/// The destinations of `avp_db_query`: `$avp(a);$avp(b)…`.
pub fn parse_avp_list(text: &str) -> Result<Vec<AvpName>, String> {
    let list: Vec<AvpName> =
        text.split(';').map(str::trim).filter(|s| !s.is_empty()).map(parse_avp).collect::<Result<_, _>>()?;
    if list.is_empty() {
        return Err("no AVP in the list".into());
    }
    Ok(list)
}

/// `avp_delete`'s argument: `$avp(name)[/g]` or `s`, `i`, `*` (always all).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteSpec {
    pub avp: AvpSel,
    pub all: bool,
}

pub fn parse_delete(text: &str) -> Result<DeleteSpec, String> {
    let (spec, flags) = text.split_once('/').unwrap_or((text, ""));
    let avp = if spec.starts_with('$') {
        AvpSel::Named(parse_avp(spec)?)
    } else if spec.is_empty() {
        return Err("expected $avp(name), *, s or i".into());
    } else {
        AvpSel::All(parse_type_sel(spec)?)
    };
    let mut all = matches!(avp, AvpSel::All(_));
    for f in flags.chars() {
        match f {
            'g' | 'G' => all = true,
            other => return Err(format!("bad flag `{other}`")),
        }
    }
    Ok(DeleteSpec { avp, all })
}

/// Flags after a `/`: g (all), d (delete), n / s (cast), e (empty).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flags {
    pub all: bool,
    pub delete: bool,
    pub cast_int: bool,
    pub cast_str: bool,
    pub empty: bool,
    pub ci: bool,
}

fn parse_flags(flags: &str, allowed: &str) -> Result<Flags, String> {
    let mut f = Flags::default();
    for c in flags.chars() {
        let l = c.to_ascii_lowercase();
        if !allowed.contains(l) {
            return Err(format!("bad flag `{c}`"));
        }
        match l {
            'g' => f.all = true,
            'd' => f.delete = true,
            'n' => f.cast_int = true,
            's' => f.cast_str = true,
            'e' => f.empty = true,
            'i' => f.ci = true,
            _ => unreachable!("checked against `allowed`"),
        }
    }
    Ok(f)
}

/// `avp_copy`'s destination: `$avp(name)[/g|d|n|s]`.
pub fn parse_copy_dst(text: &str) -> Result<(AvpName, Flags), String> {
    let (spec, flags) = text.split_once('/').unwrap_or((text, ""));
    Ok((parse_avp(spec)?, parse_flags(flags, "gdns")?))
}

/// `is_avp_set`'s argument: `$avp(name)[/e|n|s]` (no flag: set at all).
pub fn parse_is_set(text: &str) -> Result<(PvRef, Flags), String> {
    let (spec, flags) = text.split_once('/').unwrap_or((text, ""));
    let pv = PvRef::parse(spec).ok_or_else(|| format!("`{spec}` is not a pseudo-variable"))?;
    if !matches!(pv.pv, Pv::Avp(_)) {
        return Err(format!("`{spec}` is not an AVP"));
    }
    let mut f = parse_flags(flags, "ens")?;
    if f.cast_int && f.cast_str {
        return Err("flags n and s exclude each other".into());
    }
    f.all = flags.is_empty();
    Ok((pv, f))
}

/// Where `avp_pushto` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushDst {
    Ruri,
    RuriUser,
    RuriDomain,
    DstUri,
    Branch,
}

pub fn parse_push_dst(text: &str) -> Result<PushDst, String> {
    if !text.starts_with('$') {
        return Err("expected $ru, $du or $br".into());
    }
    let (spec, flag) = match text.split_once('/') {
        Some((s, f)) => (s, Some(f.to_ascii_lowercase())),
        None => (text, None),
    };
    let pv = PvRef::parse(spec).ok_or_else(|| format!("`{spec}` is not a pseudo-variable"))?;
    match (pv.pv, flag.as_deref()) {
        (Pv::RUri, None) => Ok(PushDst::Ruri),
        (Pv::RUri, Some("username")) => Ok(PushDst::RuriUser),
        (Pv::RUri, Some("domain")) => Ok(PushDst::RuriDomain),
        (Pv::RUri, Some(f)) => Err(format!("unknown $ru flag `{f}`")),
        (Pv::DstUri | Pv::Branch, Some(f)) => Err(format!("unknown flag `{f}`")),
        (Pv::DstUri, None) => Ok(PushDst::DstUri),
        (Pv::Branch, None) => Ok(PushDst::Branch),
        (Pv::Hdr(_), _) => Err("pushing to a header is obsolete: use append_hf() or append_to_reply()".into()),
        _ => Err(format!("unsupported destination `{spec}` ($ru, $du or $br)")),
    }
}

/// `avp_pushto`'s source: `$pvar[/g]`.
pub fn parse_push_src(text: &str) -> Result<(PvRef, bool), String> {
    if !text.starts_with('$') {
        return Err("expected a pseudo-variable".into());
    }
    let (spec, flags) = text.split_once('/').unwrap_or((text, ""));
    let pv = PvRef::parse(spec).ok_or_else(|| format!("`{spec}` is not a pseudo-variable"))?;
    if matches!(pv.pv, Pv::Null) {
        return Err("expected a pseudo-variable".into());
    }
    Ok((pv, parse_flags(flags, "g")?.all))
}

/// An operand: a constant or a pseudo-variable.
#[derive(Clone, Debug)]
pub enum Operand {
    Int(i64),
    Str(String),
    Pv(PvRef),
}

/// `i:12`, `0x1f` (with `i:`), `s:text`, `text`: as 1.3's `parse_intstr_value`.
fn parse_intstr(text: &str) -> Result<Operand, String> {
    if text.is_empty() {
        return Err("an empty value".into());
    }
    let b = text.as_bytes();
    let (is_int, v) = if b.len() > 1 && b[1] == b':' {
        match b[0] {
            b'i' | b'I' => (true, &text[2..]),
            b's' | b'S' => (false, &text[2..]),
            c => return Err(format!("unknown value type `{}`", c as char)),
        }
    } else {
        (false, text)
    };
    if v.is_empty() {
        return Err(format!("no value in `{text}`"));
    }
    if !is_int {
        return Ok(Operand::Str(v.to_string()));
    }
    let n = if let Some(hex) = v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")).filter(|h| !h.is_empty()) {
        u32::from_str_radix(hex, 16).map(|u| i64::from(u as i32)).ok()
    } else {
        v.parse::<i32>().ok().map(i64::from)
    };
    n.map(Operand::Int).ok_or_else(|| format!("`{v}` is not an integer as its type says"))
}

/// `op/value[/flags]`: the operation's name (2 or 3 letters), the operand and the flags.
fn split_op(text: &str) -> Result<(&str, &str, &str), String> {
    let shape = || format!("`{text}` is not `op/value[/flags]`");
    let (op, rest) = text.split_once('/').ok_or_else(shape)?;
    if !(op.len() == 2 || op.len() == 3) || rest.is_empty() {
        return Err(shape());
    }
    // A pseudo-variable may hold `/` only inside its parentheses.
    let value_end = if rest.starts_with('$') {
        let mut depth = 0i32;
        rest.char_indices()
            .find(|&(_, c)| {
                match c {
                    '(' | '{' | '[' => depth += 1,
                    ')' | '}' | ']' => depth -= 1,
                    _ => {}
                }
                c == '/' && depth == 0
            })
            .map_or(rest.len(), |(i, _)| i)
    } else {
        rest.find('/').unwrap_or(rest.len())
    };
    let (value, flags) = rest.split_at(value_end);
    let flags = match flags.strip_prefix('/') {
        Some("") => return Err(shape()),
        Some(f) => f,
        None => "",
    };
    Ok((op, value, flags))
}

fn parse_operand(value: &str) -> Result<Operand, String> {
    if value.starts_with('$') {
        let pv = PvRef::parse(value).ok_or_else(|| format!("`{value}` is not a pseudo-variable"))?;
        if matches!(pv.pv, Pv::Null) {
            return Err("expected a pseudo-variable or a value".into());
        }
        Ok(Operand::Pv(pv))
    } else {
        parse_intstr(value)
    }
}

fn starts_ci(s: &str, prefix: &str) -> bool {
    s.get(..prefix.len()).is_some_and(|p| p.eq_ignore_ascii_case(prefix))
}

/// `avp_check`'s operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CheckOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    Re,
    Fm,
    And,
    Or,
    Xor,
}

/// `avp_check`'s second argument.
#[derive(Clone, Debug)]
pub struct Check {
    pub op: CheckOp,
    pub value: Operand,
    /// For `re`: the compiled expression (case-insensitive, as 1.3's `REG_ICASE`).
    pub re: Option<Regex>,
    pub flags: Flags,
}

pub fn parse_check(text: &str) -> Result<Check, String> {
    let (op_text, value, flags) = split_op(text)?;
    let ops = [
        ("eq", CheckOp::Eq),
        ("ne", CheckOp::Ne),
        ("lt", CheckOp::Lt),
        ("le", CheckOp::Le),
        ("gt", CheckOp::Gt),
        ("ge", CheckOp::Ge),
        ("re", CheckOp::Re),
        ("fm", CheckOp::Fm),
        ("and", CheckOp::And),
        ("or", CheckOp::Or),
        ("xor", CheckOp::Xor),
    ];
    let op = ops
        .iter()
        .find(|(name, _)| starts_ci(op_text, name))
        .map(|&(_, op)| op)
        .ok_or_else(|| format!("unknown operation `{op_text}`"))?;
    let value = parse_operand(value)?;
    let flags = parse_flags(flags, "gi")?;
    let re = if op == CheckOp::Re {
        let Operand::Str(pattern) = &value else { return Err("re requires a string value".into()) };
        Some(crate::script::args::compile_regex(pattern).map_err(|e| format!("bad regex: {e}"))?)
    } else {
        None
    };
    if op == CheckOp::Fm && matches!(value, Operand::Int(_)) {
        return Err("fm requires a string value or a pseudo-variable".into());
    }
    Ok(Check { op, value, re, flags })
}

/// `avp_op`'s operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    And,
    Or,
    Xor,
    Not,
}

/// `avp_op`'s second argument.
#[derive(Clone, Debug)]
pub struct Op {
    pub op: ArithOp,
    pub value: Operand,
    pub flags: Flags,
}

pub fn parse_op(text: &str) -> Result<Op, String> {
    let (op_text, value, flags) = split_op(text)?;
    let ops = [
        ("add", ArithOp::Add),
        ("sub", ArithOp::Sub),
        ("mul", ArithOp::Mul),
        ("div", ArithOp::Div),
        ("mod", ArithOp::Mod),
        ("and", ArithOp::And),
        ("or", ArithOp::Or),
        ("xor", ArithOp::Xor),
        ("not", ArithOp::Not),
    ];
    let op = ops
        .iter()
        .find(|(name, _)| starts_ci(op_text, name))
        .map(|&(_, op)| op)
        .ok_or_else(|| format!("unknown operation `{op_text}`"))?;
    let value = parse_operand(value)?;
    if matches!(value, Operand::Str(_)) {
        return Err("the operations require integer values".into());
    }
    Ok(Op { op, value, flags: parse_flags(flags, "gd")? })
}

/// `avp_op`'s first argument: `$avp(src)[/$avp(dst)]`.
pub fn parse_op_avps(text: &str) -> Result<(AvpName, Option<AvpName>), String> {
    match text.split_once('/') {
        None | Some((_, "")) => Ok((parse_avp(text.split('/').next().unwrap_or(""))?, None)),
        Some((src, dst)) => Ok((parse_avp(src)?, Some(parse_avp(dst)?))),
    }
}

/// `avp_subst`'s first argument: `$avp(src)[/$avp(dst)][/g|d]`.
pub fn parse_subst_avps(text: &str) -> Result<(AvpName, Option<AvpName>, Flags), String> {
    let (src, rest) = text.split_once('/').unwrap_or((text, ""));
    let src = parse_avp(src)?;
    let (dst, flags) = if rest.starts_with('$') {
        let (dst, flags) = rest.split_once('/').unwrap_or((rest, ""));
        (if dst.len() > 1 { Some(parse_avp(dst)?) } else { None }, flags)
    } else {
        (None, rest)
    };
    Ok((src, dst, parse_flags(flags, "gd")?))
}

// ------------------------------------------------------------------ AVP list helpers

/// The values of `name`, newest first.
fn values(ctx: &Ctx, name: &AvpName) -> Vec<Value> {
    ctx.avps.all(name).cloned().collect()
}

/// Replaces the values of `name` with `kept` (newest first).
fn replace(ctx: &mut Ctx, name: &AvpName, kept: Vec<Value>) {
    ctx.avps.delete(name);
    for v in kept.into_iter().rev() {
        ctx.avps.push(name.clone(), v);
    }
}

/// `name`'s values without those at `removed` (indexes, newest first).
fn remove_at(ctx: &mut Ctx, name: &AvpName, removed: &[usize]) {
    if removed.is_empty() {
        return;
    }
    let kept = values(ctx, name).into_iter().enumerate().filter(|(i, _)| !removed.contains(i)).map(|(_, v)| v);
    let kept = kept.collect();
    replace(ctx, name, kept);
}

/// 1.3's `str2int`: unsigned decimal digits only.
fn str2int(s: &str) -> Option<i64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u32>().ok().map(|u| i64::from(u as i32))
}

fn name_text(name: &AvpName) -> String {
    match name {
        AvpName::Int(n) => n.to_string(),
        AvpName::Str(s) => s.clone(),
    }
}

// ------------------------------------------------------------------ database functions

/// (message id, message address) and the AVPs of that message in the database.
type InDb = ((u32, usize), Vec<(AvpName, Value)>);

std::thread_local! {
    /// The AVPs of the message this worker handles now that came from or went
    /// to the database (1.3's `AVP_IS_IN_DB`), by (message id, message address).
    static IN_DB: std::cell::RefCell<InDb> = Default::default();
}

fn msg_key(ctx: &Ctx) -> (u32, usize) {
    (ctx.msg_id, std::ptr::from_ref(ctx.msg) as usize)
}

fn mark_in_db(ctx: &Ctx, name: &AvpName, value: &Value) {
    let key = msg_key(ctx);
    IN_DB.with(|m| {
        let mut m = m.borrow_mut();
        if m.0 != key {
            *m = (key, Vec::new());
        }
        m.1.push((name.clone(), value.clone()));
    });
}

fn is_in_db(ctx: &Ctx, name: &AvpName, value: &Value) -> bool {
    let key = msg_key(ctx);
    IN_DB.with(|m| {
        let m = m.borrow();
        m.0 == key && m.1.iter().any(|(n, v)| n == name && v == value)
    })
}

/// The key columns' values: (uuid, username, domain).
struct KeyValues {
    uuid: Option<String>,
    user: Option<String>,
    domain: Option<String>,
}

fn key_values(ctx: &Ctx, what: &str, key: &DbKey, use_domain: bool) -> Option<KeyValues> {
    let text = match &key.source {
        DbSource::Literal(s) => s.clone(),
        DbSource::Pv(pv) => {
            let v = pv.get(ctx);
            let t = v.as_text().into_owned();
            if v.is_null() || t.is_empty() {
                tracing::error!("{what}: no value for the first parameter");
                return None;
            }
            t
        }
    };
    if key.key == Key::Uuid {
        return Some(KeyValues { uuid: Some(text), user: None, domain: None });
    }
    let Ok(u) = uri::parse(&text) else {
        tracing::error!(uri = text, "{what}: the URI does not parse");
        return None;
    };
    let user = u.user.unwrap_or("");
    if user.is_empty() || u.host_text.is_empty() {
        tracing::error!(uri = text, "{what}: incomplete URI");
        return None;
    }
    let with_user = matches!(key.key, Key::Uri | Key::User);
    let with_domain = key.key == Key::Domain || (key.key == Key::Uri && use_domain);
    Some(KeyValues {
        uuid: None,
        user: with_user.then(|| user.to_string()),
        domain: with_domain.then(|| u.host_text.to_string()),
    })
}

/// `WHERE …` over the key columns (and the attribute), with its parameters.
fn selection(d: &AvpDb, keys: &KeyValues, attribute: Option<String>) -> (String, Vec<DbValue>) {
    let mut conds = Vec::new();
    let mut params = Vec::new();
    let mut add = |col: &str, v: &Option<String>| {
        if let Some(v) = v {
            conds.push(format!("{col} = ?"));
            params.push(DbValue::from(v.as_str()));
        }
    };
    add(&d.uuid, &keys.uuid);
    add(&d.username, &keys.user);
    add(&d.domain, &keys.domain);
    add(&d.attribute, &attribute);
    let clause = if conds.is_empty() { String::new() } else { format!(" WHERE {}", conds.join(" AND ")) };
    (clause, params)
}

static DB_KEYS: Cache<DbKey> = Cache::new();
static DB_NAMES: Cache<DbName> = Cache::new();

fn db_args(what: &str, source: &str, name: &str) -> Option<(Arc<DbKey>, Arc<DbName>)> {
    Some((DB_KEYS.get(what, source, parse_db_key)?, DB_NAMES.get(what, name, parse_db_name)?))
}

/// `avp_db_load(source, name)`: loads the AVPs of a user (or uuid) from the
/// table: 1 when at least one was loaded, else -1.
pub fn avp_db_load(ctx: &mut Ctx, source: &str, name: &str) -> i32 {
    const WHAT: &str = "avp_db_load";
    let Some((key, name)) = db_args(WHAT, source, name) else { return -1 };
    let Some(d) = database(ctx, WHAT) else { return -1 };
    let Some(keys) = key_values(ctx, WHAT, &key, d.use_domain) else { return -1 };
    let attribute = match &name.avp {
        AvpSel::Named(n) => Some(name_text(n)),
        AvpSel::All(_) => None,
    };
    let (clause, params) = selection(d, &keys, attribute);
    let table = name.table.as_deref().unwrap_or(&d.table);
    let sql = format!("SELECT {}, {}, {} FROM {table}{clause}", d.value, d.attribute, d.kind);
    let rows = match d.db.query_now(sql, params) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "{WHAT}: the query failed");
            return -1;
        }
    };
    let mut n = 0;
    for row in rows {
        let (Some(value), Some(attr), Some(kind)) = (row.text(0), row.text(1), row.int(2)) else {
            tracing::error!("{WHAT}: a row with NULL fields");
            continue;
        };
        let (name_int, val_int) = (kind & 2 != 0, kind & 1 != 0);
        let avp = match &name.avp {
            // The row's type must agree with the name's (1.3 skips the others).
            AvpSel::Named(n) if matches!(n, AvpName::Int(_)) != name_int => continue,
            AvpSel::Named(n) => n.clone(),
            AvpSel::All(t) => {
                if (*t == NameType::Int && !name_int) || (*t == NameType::Str && name_int) {
                    continue;
                }
                if name_int {
                    match str2int(&attr) {
                        Some(i) => AvpName::Int(i as u32),
                        None => {
                            tracing::error!(attr, "{WHAT}: the name is not a number as the type says");
                            continue;
                        }
                    }
                } else {
                    AvpName::Str(attr)
                }
            }
        };
        let value = if val_int {
            match str2int(value.trim()) {
                Some(i) => Value::Int(i),
                None => {
                    tracing::error!(value, "{WHAT}: the value is not a number as the type says");
                    continue;
                }
            }
        } else {
            Value::Str(value)
        };
        mark_in_db(ctx, &avp, &value);
        ctx.avps.push(avp, value);
        n += 1;
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

/// `avp_db_store(source, name)`: writes the AVP's values (not those loaded
/// from or stored to the database already) under the user: 1 when at least
/// one was written, else -1.
pub fn avp_db_store(ctx: &mut Ctx, source: &str, name: &str) -> i32 {
    const WHAT: &str = "avp_db_store";
    let Some((key, name)) = db_args(WHAT, source, name) else { return -1 };
    let Some(d) = database(ctx, WHAT) else { return -1 };
    let Some(keys) = key_values(ctx, WHAT, &key, d.use_domain) else { return -1 };
    // The AVPs to store: the named one's values, or every AVP of the type.
    let chosen: Vec<(AvpName, Value)> = match &name.avp {
        AvpSel::Named(avp) => values(ctx, avp).into_iter().map(|v| (avp.clone(), v)).collect(),
        AvpSel::All(t) => {
            ctx.avps.iter().filter(|(n, _)| type_matches(*t, n)).map(|(n, v)| (n.clone(), v.clone())).collect()
        }
    };
    let table = name.table.as_deref().unwrap_or(&d.table);
    let sql = format!(
        "INSERT INTO {table} ({}, {}, {}, {}, {}, {}) VALUES (?, ?, ?, ?, ?, ?)",
        d.uuid, d.attribute, d.value, d.kind, d.username, d.domain
    );
    let mut n = 0;
    for (avp, value) in chosen {
        let avp = &avp;
        if is_in_db(ctx, avp, &value) {
            continue;
        }
        let kind = 2 * i64::from(matches!(avp, AvpName::Int(_))) + i64::from(matches!(value, Value::Int(_)));
        let params = vec![
            DbValue::from(keys.uuid.clone().unwrap_or_default()),
            DbValue::from(name_text(avp)),
            DbValue::from(value.as_text().into_owned()),
            DbValue::Int(kind),
            DbValue::from(keys.user.clone().unwrap_or_default()),
            DbValue::from(keys.domain.clone().unwrap_or_default()),
        ];
        match d.db.execute_now(sql.clone(), params) {
            Ok(_) => {
                mark_in_db(ctx, avp, &value);
                n += 1;
            }
            Err(e) => tracing::error!(error = %e, "{WHAT}: the insert failed"),
        }
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

/// Whether an AVP's name is of the type (`*`: any, `s`: a string, `i`: a number).
fn type_matches(t: NameType, name: &AvpName) -> bool {
    match t {
        NameType::Any => true,
        NameType::Str => !matches!(name, AvpName::Int(_)),
        NameType::Int => matches!(name, AvpName::Int(_)),
    }
}

/// `avp_print()`: every AVP of the message in the log (info), newest first,
/// as 1.3 printed them; 1.
pub fn avp_print(ctx: &mut Ctx) -> i32 {
    for (name, value) in ctx.avps.iter() {
        let name = match name {
            AvpName::Int(i) => format!("id=<{i}>"),
            other => format!("name=<{}>", name_text(other)),
        };
        let value = match value {
            Value::Int(i) => format!("val_int=<{i}>"),
            v => {
                let text = v.as_text();
                format!("val_str=<{text} / {}>", text.len())
            }
        };
        tracing::info!("avp_print: {name} {value}");
    }
    1
}

/// `avp_db_delete(source, name)`: deletes the user's rows (of that AVP, when
/// named): 1, or -1 when the database fails.
pub fn avp_db_delete(ctx: &mut Ctx, source: &str, name: &str) -> i32 {
    const WHAT: &str = "avp_db_delete";
    let Some((key, name)) = db_args(WHAT, source, name) else { return -1 };
    let Some(d) = database(ctx, WHAT) else { return -1 };
    let Some(keys) = key_values(ctx, WHAT, &key, d.use_domain) else { return -1 };
    let attribute = match &name.avp {
        AvpSel::Named(n) => Some(name_text(n)),
        AvpSel::All(_) => None,
    };
    let (clause, params) = selection(d, &keys, attribute);
    let table = name.table.as_deref().unwrap_or(&d.table);
    match d.db.execute_now(format!("DELETE FROM {table}{clause}"), params) {
        Ok(_) => 1,
        Err(e) => {
            tracing::error!(error = %e, "{WHAT}: the delete failed");
            -1
        }
    }
}

static AVP_LISTS: Cache<Vec<AvpName>> = Cache::new();

/// `avp_db_query(query)`: runs the query; the columns of its rows go to
/// `$avp(i:1)`, `$avp(i:2)` …
pub fn avp_db_query_1(ctx: &mut Ctx, query: &Format) -> i32 {
    db_query(ctx, query, None)
}

/// `avp_db_query(query, "$avp(a);$avp(b)")`: the columns go to the AVPs listed.
pub fn avp_db_query_2(ctx: &mut Ctx, query: &Format, destinations: &str) -> i32 {
    let Some(list) = AVP_LISTS.get("avp_db_query", destinations, parse_avp_list) else { return -1 };
    db_query(ctx, query, Some(&list))
}

fn db_query(ctx: &mut Ctx, query: &Format, dest: Option<&[AvpName]>) -> i32 {
    const WHAT: &str = "avp_db_query";
    let Some(d) = database(ctx, WHAT) else { return -1 };
    // The SQL text is the config's, pseudo-variables expanded (see the module's documentation).
    let sql = query.eval(ctx);
    if sql.is_empty() {
        tracing::error!("{WHAT}: an empty query");
        return -1;
    }
    let rows = match d.db.query_now(sql, vec![]) {
        Ok(rows) => rows,
        Err(e) => {
            tracing::error!(error = %e, "{WHAT}: the query failed");
            return -1;
        }
    };
    // The last row first, so the first row's values end up newest.
    for row in rows.iter().rev() {
        let columns = match dest {
            Some(list) => row.0.len().min(list.len()),
            None => row.0.len(),
        };
        for j in 0..columns {
            let name = match dest {
                Some(list) => list[j].clone(),
                None => AvpName::Int(j as u32 + 1),
            };
            let value = match row.get(j) {
                DbValue::Text(t) if !t.is_empty() => Value::Str(t.clone()),
                DbValue::Int(i) | DbValue::Time(i) => Value::Int(*i),
                _ => continue,
            };
            ctx.avps.push(name, value);
        }
    }
    1
}

// ------------------------------------------------------------------ operations in memory

static DELETES: Cache<DeleteSpec> = Cache::new();

/// `avp_delete("$avp(x)[/g]")`: removes the newest value (all with `g`):
/// 1 when one was removed, else -1.
pub fn avp_delete(ctx: &mut Ctx, name: &str) -> i32 {
    let Some(spec) = DELETES.get("avp_delete", name, parse_delete) else { return -1 };
    let avp = match &spec.avp {
        AvpSel::Named(avp) => avp,
        AvpSel::All(t) => {
            // Every AVP of the type, newest first; one without `/g` (1.3's walk).
            let limit = if spec.all { usize::MAX } else { 1 };
            let n = ctx.avps.remove_where(limit, |name, _| type_matches(*t, name));
            return if n > 0 { 1 } else { -1 };
        }
    };
    let n = ctx.avps.all(avp).count();
    if n == 0 {
        return -1;
    }
    if spec.all {
        ctx.avps.delete(avp);
    } else {
        remove_at(ctx, avp, &[0]);
    }
    1
}

static COPIES: Cache<(AvpName, Flags)> = Cache::new();

/// `avp_copy("$avp(src)", "$avp(dst)[/g|d|n|s]")`: copies the newest value
/// (every value with `g`), cast to a number (`n`) or a string (`s`), deleting
/// the source (`d`): 1 when one was copied, else -1.
pub fn avp_copy(ctx: &mut Ctx, source: &AvpName, destination: &str) -> i32 {
    let Some(dst) = COPIES.get("avp_copy", destination, parse_copy_dst) else { return -1 };
    let (dst, flags) = (&dst.0, dst.1);
    let originals = values(ctx, source);
    let take = if flags.all { originals.len() } else { originals.len().min(1) };
    let mut n = 0;
    for v in originals.iter().take(take) {
        let copy = match v {
            Value::Str(s) if flags.cast_int => match str2int(s) {
                Some(i) => Value::Int(i),
                None => {
                    tracing::error!(value = s, "avp_copy: cannot convert the string to a number");
                    return -1;
                }
            },
            Value::Int(i) if flags.cast_str => Value::Str(i.to_string()),
            other => other.clone(),
        };
        ctx.avps.push(dst.clone(), copy);
        n += 1;
        if flags.delete {
            // The source's value, found again (the destination may be the source).
            let at: Vec<usize> = ctx.avps.all(source).position(|x| x == v).into_iter().collect();
            remove_at(ctx, source, &at);
        }
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

static PUSH_DSTS: Cache<PushDst> = Cache::new();
static PUSH_SRCS: Cache<(PvRef, bool)> = Cache::new();

/// `avp_pushto("$ru[/username|domain]"|"$du"|"$br", "$pvar[/g]")`: writes the
/// value (every value of an AVP with `g`: extra Request-URIs become branches).
pub fn avp_pushto(ctx: &mut Ctx, destination: &str, variable: &str) -> i32 {
    const WHAT: &str = "avp_pushto";
    let Some(dst) = PUSH_DSTS.get(WHAT, destination, parse_push_dst) else { return -1 };
    let Some(src) = PUSH_SRCS.get(WHAT, variable, parse_push_src) else { return -1 };
    let (pv, all) = (&src.0, src.1);
    let vals = match &pv.pv {
        Pv::Avp(name) => {
            let v = values(ctx, name);
            if v.is_empty() {
                return -1;
            }
            v
        }
        _ => match pv.get(ctx) {
            Value::Null => vec![Value::str("<null>")],
            v => vec![v],
        },
    };
    let take = if all { vals.len() } else { 1 };
    for (n, v) in vals.into_iter().take(take).enumerate() {
        let text = v.as_text().into_owned();
        let is_str = matches!(v, Value::Str(_));
        match *dst {
            PushDst::Ruri | PushDst::RuriUser | PushDst::RuriDomain => {
                if n > 0 {
                    let (current, dst_uri) = (ctx.request_uri().to_string(), ctx.dst_uri.clone());
                    if push_branch(ctx, current, dst_uri) < 0 {
                        return -1;
                    }
                }
                let new = match *dst {
                    PushDst::RuriUser => pv::rewrite(ctx.request_uri(), Part::User, &text),
                    PushDst::RuriDomain => pv::rewrite(ctx.request_uri(), Part::Host, &text),
                    _ => uri::parse(&text).map(|_| text.clone()).map_err(|_| "not a URI"),
                };
                match new {
                    Ok(u) => ctx.ruri = Some(u),
                    Err(e) => {
                        tracing::error!(value = text, "{WHAT}: cannot set the Request-URI: {e}");
                        return -1;
                    }
                }
            }
            PushDst::DstUri => {
                if !is_str {
                    return -1;
                }
                ctx.dst_uri = Some(text);
            }
            PushDst::Branch => {
                if !is_str || push_branch(ctx, text, None) < 0 {
                    return -1;
                }
            }
        }
    }
    1
}

fn push_branch(ctx: &mut Ctx, uri: String, dst_uri: Option<String>) -> i32 {
    if ctx.branches.len() >= crate::modules::core::MAX_BRANCHES - 1 {
        tracing::error!(uri, "avp_pushto: too many branches");
        return -1;
    }
    let flags = if dst_uri.is_some() { ctx.branch_flags } else { 0 };
    ctx.branches.push(Branch { uri, dst_uri, q: None, flags, send_socket: ctx.send_socket, path: None });
    1
}

static CHECKS: Cache<Check> = Cache::new();

/// The values of an operand: every value of an AVP (none: `None`), else one.
fn operand_values(ctx: &Ctx, op: &Operand) -> Option<Vec<Value>> {
    match op {
        Operand::Int(i) => Some(vec![Value::Int(*i)]),
        Operand::Str(s) => Some(vec![Value::Str(s.clone())]),
        Operand::Pv(PvRef { pv: Pv::Avp(name), .. }) => {
            let v = values(ctx, name);
            (!v.is_empty()).then_some(v)
        }
        Operand::Pv(pv) => Some(vec![match pv.get(ctx) {
            Value::Null => Value::str("<null>"),
            v => v,
        }]),
    }
}

/// Case-insensitive comparison, a prefix first (1.3's `strncasecmp` over the longer length).
fn cmp_ci(a: &str, b: &str) -> std::cmp::Ordering {
    a.bytes().map(|c| c.to_ascii_lowercase()).cmp(b.bytes().map(|c| c.to_ascii_lowercase()))
}

fn check_one(check: &Check, left: &Value, right: &Value) -> bool {
    use std::cmp::Ordering::*;
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => match check.op {
            CheckOp::Eq => a == b,
            CheckOp::Ne => a != b,
            CheckOp::Lt => a < b,
            CheckOp::Le => a <= b,
            CheckOp::Gt => a > b,
            CheckOp::Ge => a >= b,
            CheckOp::And => a & b != 0,
            CheckOp::Or => a | b != 0,
            CheckOp::Xor => a ^ b != 0,
            CheckOp::Re | CheckOp::Fm => false,
        },
        (Value::Str(a), Value::Str(b)) => match check.op {
            CheckOp::Eq if check.flags.ci => a.eq_ignore_ascii_case(b),
            CheckOp::Eq => a == b,
            CheckOp::Ne if check.flags.ci => !a.eq_ignore_ascii_case(b),
            CheckOp::Ne => a != b,
            CheckOp::Lt => cmp_ci(a, b) == Less,
            CheckOp::Le => cmp_ci(a, b) != Greater,
            CheckOp::Gt => cmp_ci(a, b) == Greater,
            CheckOp::Ge => cmp_ci(a, b) != Less,
            CheckOp::Re => check.re.as_ref().is_some_and(|re| re.is_match(a)),
            CheckOp::Fm => fnmatch(b.as_bytes(), a.as_bytes()),
            CheckOp::And | CheckOp::Or | CheckOp::Xor => false,
        },
        _ => {
            tracing::error!("avp_check: value types don't match");
            false
        }
    }
}

/// `fnmatch(3)` without flags: `*`, `?`, `[…]` (`!` or `^` negates), `\` escapes.
pub fn fnmatch(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.first() {
        None => text.is_empty(),
        Some(b'*') => (0..=text.len()).any(|i| fnmatch(&pattern[1..], &text[i..])),
        Some(b'?') => !text.is_empty() && fnmatch(&pattern[1..], &text[1..]),
        Some(b'[') => {
            let Some(&c) = text.first() else { return false };
            let mut i = 1;
            let negate = matches!(pattern.get(i), Some(b'!' | b'^'));
            if negate {
                i += 1;
            }
            let mut matched = false;
            let mut first = true;
            loop {
                let Some(&p) = pattern.get(i) else {
                    // No closing bracket: a literal `[`.
                    return c == b'[' && fnmatch(&pattern[1..], &text[1..]);
                };
                if p == b']' && !first {
                    break;
                }
                first = false;
                if pattern.get(i + 1) == Some(&b'-') && pattern.get(i + 2).is_some_and(|&e| e != b']') {
                    let e = pattern[i + 2];
                    matched |= (p..=e).contains(&c);
                    i += 3;
                } else {
                    matched |= p == c;
                    i += 1;
                }
            }
            matched != negate && fnmatch(&pattern[i + 1..], &text[1..])
        }
        Some(b'\\') if pattern.len() > 1 => text.first() == Some(&pattern[1]) && fnmatch(&pattern[2..], &text[1..]),
        Some(&p) => text.first() == Some(&p) && fnmatch(&pattern[1..], &text[1..]),
    }
}

/// `avp_check("$pvar", "op/value[/g|i]")`: 1 when the value (any value of
/// the AVP with `g`) compares as asked with the value (any value of an AVP
/// operand), else -1.
pub fn avp_check(ctx: &mut Ctx, variable: &PvRef, check: &str) -> i32 {
    let Some(check) = CHECKS.get("avp_check", check, parse_check) else { return -1 };
    let lefts = match &variable.pv {
        Pv::Avp(name) => {
            let v = values(ctx, name);
            if v.is_empty() {
                return -1;
            }
            if check.flags.all {
                v
            } else {
                v.into_iter().take(1).collect()
            }
        }
        _ => vec![match variable.get(ctx) {
            Value::Null => Value::str("<null>"),
            v => v,
        }],
    };
    let Some(rights) = operand_values(ctx, &check.value) else { return -1 };
    let found = lefts.iter().any(|l| rights.iter().any(|r| check_one(&check, l, r)));
    if found {
        1
    } else {
        -1
    }
}

static OP_AVPS: Cache<(AvpName, Option<AvpName>)> = Cache::new();
static OPS: Cache<Op> = Cache::new();

/// `avp_op("$avp(src)[/$avp(dst)]", "op/value[/g|d]")`: integer arithmetic
/// on every integer value of the source, with every integer value of an AVP
/// operand; the results go on top of the destination (default: the source);
/// `d` deletes the source values used. -1 when there is nothing to compute.
pub fn avp_op(ctx: &mut Ctx, avps: &str, operation: &str) -> i32 {
    const WHAT: &str = "avp_op";
    let Some(names) = OP_AVPS.get(WHAT, avps, parse_op_avps) else { return -1 };
    let Some(op) = OPS.get(WHAT, operation, parse_op) else { return -1 };
    let (src, dst) = (&names.0, names.1.as_ref().unwrap_or(&names.0));
    let originals = values(ctx, src);
    if originals.is_empty() {
        return -1;
    }
    let ints: Vec<(usize, i64)> = originals
        .iter()
        .enumerate()
        .filter_map(|(i, v)| if let Value::Int(n) = v { Some((i, *n)) } else { None })
        .collect();
    if ints.is_empty() && op.op != ArithOp::Not {
        return -1;
    }
    let operands: Vec<i64> = match &op.value {
        Operand::Int(i) => vec![*i],
        Operand::Str(_) => return -1,
        Operand::Pv(PvRef { pv: Pv::Avp(name), .. }) => {
            let v: Vec<i64> =
                ctx.avps.all(name).filter_map(|v| if let Value::Int(n) = v { Some(*n) } else { None }).collect();
            if v.is_empty() {
                return -1;
            }
            v
        }
        Operand::Pv(pv) => match pv.get(ctx) {
            Value::Int(i) => vec![i],
            _ => {
                tracing::error!("{WHAT}: the operand is not an integer");
                return -1;
            }
        },
    };
    let lefts: Vec<i64> = if ints.is_empty() { vec![0] } else { ints.iter().map(|&(_, n)| n).collect() };
    let mut results = Vec::new();
    for a in &lefts {
        for b in &operands {
            let (a, b) = (*a as i32, *b as i32);
            let r = match op.op {
                ArithOp::Add => a.wrapping_add(b),
                ArithOp::Sub => a.wrapping_sub(b),
                ArithOp::Mul => a.wrapping_mul(b),
                ArithOp::Div | ArithOp::Mod if b == 0 => {
                    tracing::error!("{WHAT}: division by 0");
                    0
                }
                ArithOp::Div => a.wrapping_div(b),
                ArithOp::Mod => a.wrapping_rem(b),
                ArithOp::And => a & b,
                ArithOp::Or => a | b,
                ArithOp::Xor => a ^ b,
                ArithOp::Not => !b,
            };
            results.push(i64::from(r));
        }
    }
    if op.flags.delete {
        let used: Vec<usize> = ints.iter().map(|&(i, _)| i).collect();
        remove_at(ctx, src, &used);
    }
    for r in results {
        ctx.avps.push(dst.clone(), Value::Int(r));
    }
    1
}

static SUBST_AVPS: Cache<(AvpName, Option<AvpName>, Flags)> = Cache::new();

/// A piece of a substitution's replacement (as 1.3's `parse_repl` reads it).
enum Repl {
    Text(String),
    Group(usize),
    Uri,
    Pvs(Format),
}

/// The replacement of `subst` in pieces: `\0`–`\9` groups, `\u` the
/// Request-URI, `\n \r \t`, other `\c` is `c`, `$…` pseudo-variables.
fn replacement(subst: &Subst) -> Result<Vec<Repl>, String> {
    // Undo `Subst::replacement`'s encoding: `$$` → `$`, `${N}` → `\N`.
    let mut source = String::new();
    let mut rest = subst.replacement.as_str();
    while let Some(at) = rest.find('$') {
        source.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(r) = after.strip_prefix('$') {
            source.push('$');
            rest = r;
        } else if let Some((n, r)) = after.strip_prefix('{').and_then(|r| r.split_once('}')) {
            source.push('\\');
            source.push_str(n);
            rest = r;
        } else {
            source.push('$');
            rest = after;
        }
    }
    source.push_str(rest);
    let mut pieces = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, pieces: &mut Vec<Repl>| -> Result<(), String> {
        if !run.is_empty() {
            let text = std::mem::take(run);
            pieces.push(if text.contains('$') { Repl::Pvs(Format::parse(&text)?) } else { Repl::Text(text) });
        }
        Ok(())
    };
    let mut chars = source.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            run.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        flush(&mut run, &mut pieces)?;
        pieces.push(match e {
            'n' => Repl::Text("\n".into()),
            'r' => Repl::Text("\r".into()),
            't' => Repl::Text("\t".into()),
            'u' => Repl::Uri,
            d @ '0'..='9' => Repl::Group(usize::from(d as u8 - b'0')),
            other => Repl::Text(other.to_string()),
        });
    }
    flush(&mut run, &mut pieces)?;
    Ok(pieces)
}

/// `text` with `subst` applied, or `None` when it does not match.
fn apply_subst(ctx: &Ctx, subst: &Subst, pieces: &[Repl], text: &str) -> Option<String> {
    let mut out = String::new();
    let mut pos = 0;
    let mut any = false;
    for caps in subst.re.captures_iter(text) {
        let m = caps.get(0)?;
        if m.is_empty() {
            tracing::error!("avp_subst: the regex matches an empty string");
            return None;
        }
        out.push_str(&text[pos..m.start()]);
        for p in pieces {
            match p {
                Repl::Text(t) => out.push_str(t),
                Repl::Group(n) => out.push_str(caps.get(*n).map_or("", |g| g.as_str())),
                Repl::Uri => {
                    if ctx.msg.is_request() {
                        out.push_str(ctx.request_uri());
                    }
                }
                Repl::Pvs(f) => out.push_str(&f.eval(ctx)),
            }
        }
        pos = m.end();
        any = true;
        if !subst.global {
            break;
        }
    }
    out.push_str(&text[pos..]);
    any.then_some(out)
}

/// `avp_subst("$avp(src)[/$avp(dst)][/g|d]", "/re/repl/flags")`: the newest
/// string value (every one with `g`) substituted into the destination; the
/// source value is deleted with `d` or without a destination. 1 when one
/// matched, else -1.
pub fn avp_subst(ctx: &mut Ctx, avps: &str, subst: &Subst) -> i32 {
    const WHAT: &str = "avp_subst";
    let Some(spec) = SUBST_AVPS.get(WHAT, avps, parse_subst_avps) else { return -1 };
    let (src, dst, flags) = (&spec.0, spec.1.as_ref(), spec.2);
    let pieces = match replacement(subst) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("{WHAT}: bad replacement: {e}");
            return -1;
        }
    };
    let originals = values(ctx, src);
    if originals.is_empty() {
        return -1;
    }
    let mut results = Vec::new();
    let mut removed = Vec::new();
    for (i, v) in originals.iter().enumerate() {
        let Value::Str(text) = v else { continue };
        let Some(new) = apply_subst(ctx, subst, &pieces, text) else { continue };
        results.push(new);
        if flags.delete || dst.is_none() {
            removed.push(i);
        }
        if !flags.all {
            break;
        }
    }
    remove_at(ctx, src, &removed);
    let dst = dst.unwrap_or(src);
    let n = results.len();
    for r in results {
        ctx.avps.push(dst.clone(), Value::Str(r));
    }
    if n > 0 {
        1
    } else {
        -1
    }
}

static IS_SET: Cache<(PvRef, Flags)> = Cache::new();

/// `is_avp_set("$avp(x)[/e|n|s]")`: 1 when the AVP (at its index, if given)
/// exists — and, with flags, is empty (`e`), a number (`n`) or a string (`s`).
pub fn is_avp_set(ctx: &mut Ctx, name: &str) -> i32 {
    let Some(spec) = IS_SET.get("is_avp_set", name, parse_is_set) else { return -1 };
    let (pv, flags) = (&spec.0, spec.1);
    let Pv::Avp(avp) = &pv.pv else { return -1 };
    let index = pv.index.unwrap_or(0).max(0) as usize;
    let Some(value) = ctx.avps.all(avp).nth(index) else { return -1 };
    if flags.all {
        return 1;
    }
    let is_str = matches!(value, Value::Str(_));
    if (flags.cast_str && !is_str) || (flags.cast_int && is_str) {
        return -1;
    }
    if flags.empty {
        let empty = match value {
            Value::Str(s) => s.is_empty(),
            Value::Int(i) => *i == 0,
            Value::Null => true,
        };
        return if empty { 1 } else { -1 };
    }
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(n: &str) -> AvpName {
        AvpName::Str(n.into())
    }

    #[test]
    fn db_keys_as_1_3_reads_them() {
        let k = parse_db_key("$ru").unwrap();
        assert_eq!(k.key, Key::Uri);
        assert_eq!(parse_db_key("$from/username").unwrap().key, Key::User);
        assert_eq!(parse_db_key("$to/DOMAIN").unwrap().key, Key::Domain);
        assert_eq!(parse_db_key("$avp(s:id)").unwrap().key, Key::Uuid);
        assert_eq!(parse_db_key("$avp(s:u)/uri").unwrap().key, Key::Uri);
        let lit = parse_db_key("alice-uuid").unwrap();
        assert_eq!((lit.source, lit.key), (DbSource::Literal("alice-uuid".into()), Key::Uuid));
        assert_eq!(parse_db_key("sip:a@b/uri").unwrap().key, Key::Uri);
        assert!(parse_db_key("$ru/user").is_err());
        assert!(parse_db_key("$nosuchpv").is_err());
    }

    #[test]
    fn db_names_as_1_3_reads_them() {
        assert_eq!(parse_db_name("$avp(s:x)").unwrap(), DbName { avp: AvpSel::Named(s("x")), table: None });
        assert_eq!(
            parse_db_name("$avp(i:3)/prefs").unwrap(),
            DbName { avp: AvpSel::Named(AvpName::Int(3)), table: Some("prefs".into()) }
        );
        assert_eq!(parse_db_name("*").unwrap().avp, AvpSel::All(NameType::Any));
        assert_eq!(parse_db_name("s").unwrap().avp, AvpSel::All(NameType::Str));
        assert_eq!(parse_db_name("I0").unwrap().avp, AvpSel::All(NameType::Int));
        assert!(parse_db_name("x").is_err());
        assert!(parse_db_name("s1").is_err(), "script flags");
        assert!(parse_db_name("$avp(s:x)/").is_err());
        assert!(parse_db_name("$avp(s:x)/$scheme").is_err());
        assert!(parse_db_name("$avp(s:x)/bad-table").is_err());
        assert!(parse_db_name("$ru").is_err());
        assert_eq!(parse_avp_list("$avp(s:a); $avp(i:2)").unwrap(), vec![s("a"), AvpName::Int(2)]);
        assert!(parse_avp_list("$avp(s:a);$ru").is_err());
    }

    #[test]
    fn memory_arguments_as_1_3_reads_them() {
        assert_eq!(parse_delete("$avp(s:x)").unwrap(), DeleteSpec { avp: AvpSel::Named(s("x")), all: false });
        assert!(parse_delete("$avp(s:x)/g").unwrap().all);
        assert!(parse_delete("*").unwrap().all);
        assert!(parse_delete("$avp(s:x)/q").is_err());
        assert!(parse_delete("$ru").is_err());
        assert!(parse_delete("").is_err());

        let (n, f) = parse_copy_dst("$avp(s:y)/gd").unwrap();
        assert_eq!(n, s("y"));
        assert!(f.all && f.delete && !f.cast_int);
        assert!(parse_copy_dst("$avp(s:y)/ns").unwrap().1.cast_str);
        assert!(parse_copy_dst("$avp(s:y)/e").is_err());

        assert!(parse_is_set("$avp(s:x)").unwrap().1.all);
        let (_, f) = parse_is_set("$avp(s:x)/e").unwrap();
        assert!(f.empty && !f.all);
        assert!(parse_is_set("$avp(s:x)/ns").is_err());
        assert!(parse_is_set("$ru").is_err());
        assert_eq!(parse_is_set("$(avp(s:x)[1])").unwrap().0.index, Some(1));

        assert_eq!(parse_push_dst("$ru").unwrap(), PushDst::Ruri);
        assert_eq!(parse_push_dst("$ru/username").unwrap(), PushDst::RuriUser);
        assert_eq!(parse_push_dst("$ru/Domain").unwrap(), PushDst::RuriDomain);
        assert_eq!(parse_push_dst("$du").unwrap(), PushDst::DstUri);
        assert_eq!(parse_push_dst("$br").unwrap(), PushDst::Branch);
        assert!(parse_push_dst("$hdr(X-Foo)").is_err(), "obsolete in 1.3");
        assert!(parse_push_dst("$du/x").is_err());
        assert!(parse_push_dst("$fu").is_err());
        assert!(parse_push_dst("ru").is_err());
        assert!(parse_push_src("$avp(s:x)/g").unwrap().1);
        assert!(!parse_push_src("$fu").unwrap().1);
        assert!(parse_push_src("$avp(s:x)/d").is_err());
    }

    #[test]
    fn checks_and_operations_as_1_3_reads_them() {
        let c = parse_check("eq/i:5").unwrap();
        assert!(matches!((c.op, &c.value), (CheckOp::Eq, Operand::Int(5))));
        let c = parse_check("ne/s:abc/gi").unwrap();
        assert!(matches!(&c.value, Operand::Str(v) if v == "abc") && c.flags.all && c.flags.ci);
        assert!(matches!(parse_check("lt/$avp(s:y)/g").unwrap().value, Operand::Pv(_)));
        assert!(matches!(parse_check("and/i:0x10").unwrap().value, Operand::Int(16)));
        assert!(parse_check("re/^sip:.*@example").unwrap().re.is_some());
        assert!(parse_check("re/i:4").is_err(), "re wants a string");
        assert!(parse_check("fm/i:4").is_err());
        assert!(parse_check("re/(").is_err());
        assert!(parse_check("zz/1").is_err());
        assert!(parse_check("e/1").is_err());
        assert!(parse_check("aé/1").is_err(), "not a panic");
        assert!(parse_check("eq/").is_err());
        assert!(parse_check("eq/1/").is_err());
        assert!(parse_check("eq/1/x").is_err());
        assert!(parse_check("eq/x:1").is_err());
        assert!(parse_check("eq/i:abc").is_err());

        let o = parse_op("add/i:5/d").unwrap();
        assert!(matches!((o.op, &o.value), (ArithOp::Add, Operand::Int(5))) && o.flags.delete);
        assert_eq!(parse_op("not/$avp(i:1)").unwrap().op, ArithOp::Not);
        assert_eq!(parse_op("or/i:1").unwrap().op, ArithOp::Or);
        assert!(parse_op("add/5").is_err(), "a bare value is a string");
        assert!(parse_op("add/s:5").is_err());
        assert!(parse_op("pow/i:2").is_err());
        assert!(parse_op("add/i:1/i").is_err());
        assert_eq!(parse_op_avps("$avp(s:a)").unwrap(), (s("a"), None));
        assert_eq!(parse_op_avps("$avp(s:a)/$avp(i:2)").unwrap(), (s("a"), Some(AvpName::Int(2))));
        assert!(parse_op_avps("$avp(s:a)/$ru").is_err());

        let (src, dst, f) = parse_subst_avps("$avp(s:a)/$avp(s:b)/gd").unwrap();
        assert_eq!((src, dst), (s("a"), Some(s("b"))));
        assert!(f.all && f.delete);
        let (_, dst, f) = parse_subst_avps("$avp(s:a)/g").unwrap();
        assert!(dst.is_none() && f.all);
        assert!(parse_subst_avps("$avp(s:a)/x").is_err());
        assert!(parse_subst_avps("$ru").is_err());
    }

    #[test]
    fn arguments_of_real_configs_parse() {
        // From the OpenSER 1.3 configs of the corpus.
        assert_eq!(parse_db_key("$avp(s:caller_uuid)").unwrap().key, Key::Uuid);
        assert_eq!(parse_db_name("*").unwrap().avp, AvpSel::All(NameType::Any));
        assert!(parse_copy_dst("$avp(s:caller_cli)/d").unwrap().1.delete);
        assert!(parse_delete("$avp(s:acc_state)/g").unwrap().all);
        assert_eq!(parse_push_dst("$ru/username").unwrap(), PushDst::RuriUser);
        assert!(!parse_push_src("$avp(s:cfc)").unwrap().1);
        assert!(parse_is_set("$avp(s:clir)/n").unwrap().1.cast_int);
        assert!(matches!(parse_check("eq/i:1").unwrap().value, Operand::Int(1)));
        assert_eq!(parse_subst_avps("$avp(s:tmp)").unwrap(), (s("tmp"), None, Flags::default()));
        assert_eq!(parse_avp_list("$avp(s:callee_uuid)").unwrap(), vec![s("callee_uuid")]);
    }

    #[test]
    fn values_and_patterns() {
        assert!(matches!(parse_intstr("i:-12"), Ok(Operand::Int(-12))));
        assert!(matches!(parse_intstr("hello"), Ok(Operand::Str(v)) if v == "hello"));
        assert!(parse_intstr("s:").is_err());
        assert_eq!(str2int("42"), Some(42));
        assert_eq!(str2int("-4"), None);
        assert_eq!(str2int("4x"), None);
        assert!(fnmatch(b"sip:*@example.com", b"sip:alice@example.com"));
        assert!(fnmatch(b"a?c", b"abc"));
        assert!(fnmatch(b"[a-c]x", b"bx"));
        assert!(!fnmatch(b"[!a-c]x", b"bx"));
        assert!(!fnmatch(b"a*d", b"abc"));
        assert_eq!(cmp_ci("ABC", "abd"), std::cmp::Ordering::Less);
        assert_eq!(cmp_ci("ab", "AB"), std::cmp::Ordering::Equal);
        assert_eq!(cmp_ci("abc", "ab"), std::cmp::Ordering::Greater);
    }
}
