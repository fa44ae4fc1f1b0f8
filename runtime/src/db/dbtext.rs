//! dbtext: OpenSER's tables in text files (`dbtext:///dir`), one file per
//! table in the directory, kept in memory.
//!
//! The file format is OpenSER 1.3's (its `modules/dbtext`): the first line
//! declares the columns, `name(type[,flag])` separated by spaces, the type
//! named by its first letter (`int`, `double`, `str`/`string`, `blob`,
//! `time`), the flag `null` (the column may be empty) or `auto` (an `int`
//! column numbered by the database); every other line is a row, its fields
//! separated by `:`, an empty field being NULL, with `\:`, `\\`, `\n`, `\r`,
//! `\t` and `\0` escaped in strings. Times are Unix seconds in `int` columns,
//! as 1.3's own table files have them.
//!
//! serc loads the directory into an in-memory SQLite database, so the
//! modules' statements run on it unchanged (a statement's time parameter is
//! bound as Unix seconds). It differs from OpenSER 1.3 where 1.3 could lose
//! data:
//! - 1.3 wrote its tables back only when it stopped; serc writes each table a
//!   transaction changed before the transaction commits (into a temporary
//!   file renamed over the table's, so a reader never sees half a table), and
//!   a write that cannot be written is rolled back and is an error. A crash
//!   loses nothing that was acknowledged.
//! - 1.3's `db_mode` 0 (the default) never read a file again, and its write
//!   at exit overwrote whatever had been changed by hand meanwhile; serc reads
//!   a changed file again before it writes to the database (its table is then
//!   the file's plus the new change). `db_mode` 1 also reads changed files
//!   before every query, as 1.3 did.
//!
//! The price of writing whole files: a table rewritten per change is for the
//! small deployments dbtext is meant for, as 1.3's documentation says.
//!
//! As for a file, a plain `SELECT` asked again is answered from memory
//! (`db/reads.rs`) until the tables may have changed; here a table file read
//! again is such a change (`TextDb::loads`).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::DbError;

/// `modparam("dbtext", "db_mode", 1)`: read a changed table file again
/// before every query, not only before a write. Set by the proxy's launch
/// before it opens its databases (a process has one dbtext module).
static RELOAD_ON_READ: AtomicBool = AtomicBool::new(false);

/// Sets dbtext's `db_mode` for the databases opened from now on.
pub fn set_db_mode(mode: i64) {
    RELOAD_ON_READ.store(mode == 1, Ordering::Relaxed);
}

/// A column's type in a table file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Type {
    Int,
    Double,
    Str,
    Blob,
    Time,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    name: String,
    ty: Type,
    null: bool,
    auto: bool,
}

/// What a table file was when it was last read or written: a change by
/// anyone else shows as another file (a write by rename, as serc's own), or
/// another modification time or length (the kernel's clock for file times
/// is coarse: a same-length change within its tick goes unseen).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stamp {
    inode: u64,
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::metadata(path).ok()?;
    meta.is_file().then(|| Stamp { inode: meta.ino(), modified: meta.modified().ok(), len: meta.len() })
}

/// The text tables of one directory, mirrored in an SQLite connection.
pub(super) struct TextDb {
    dir: PathBuf,
    reload_on_read: bool,
    /// Each table's file as last read or written.
    files: BTreeMap<String, Stamp>,
    /// Tables changed since they were last written (SQLite's update hook).
    dirty: Arc<Mutex<BTreeSet<String>>>,
    /// Tables loaded from their files so far, counted before each load: a
    /// count that moved means the tables may have changed (the backend's
    /// answers to reads are then forgotten).
    loads: u64,
}

fn err(path: &Path, why: impl std::fmt::Display) -> DbError {
    DbError::Query(format!("dbtext {}: {why}", path.display()))
}

fn sql_err(e: rusqlite::Error) -> DbError {
    DbError::Query(e.to_string())
}

/// Whether a file of the directory is a table: a plain identifier (`version`,
/// `subscriber` …), which also leaves out serc's temporary files. Names from
/// files are quoted in the statements serc makes of them (a table or column
/// may be named like an SQL keyword).
fn table_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    super::ident(name).ok().map(str::to_string)
}

impl TextDb {
    /// Opens `dir` (created when missing) and loads every table file of it
    /// into `conn`, an empty in-memory database.
    pub(super) fn open(dir: &Path, conn: &Connection) -> Result<TextDb, DbError> {
        fs::create_dir_all(dir)
            .map_err(|e| DbError::Connect(format!("cannot open the dbtext directory {}: {e}", dir.display())))?;
        let dirty = Arc::new(Mutex::new(BTreeSet::new()));
        let hook = dirty.clone();
        conn.update_hook(Some(move |_: rusqlite::hooks::Action, _: &str, table: &str, _: i64| {
            hook.lock().unwrap_or_else(PoisonError::into_inner).insert(table.to_string());
        }))
        .map_err(sql_err)?;
        let mut db = TextDb {
            dir: dir.to_path_buf(),
            reload_on_read: RELOAD_ON_READ.load(Ordering::Relaxed),
            files: BTreeMap::new(),
            dirty,
            loads: 0,
        };
        db.refresh(conn)?;
        Ok(db)
    }

    /// Before an operation: reads again the table files that changed on disk
    /// (before a write always; before a query with `db_mode` 1).
    pub(super) fn before(&mut self, conn: &Connection, write: bool) -> Result<(), DbError> {
        if write || self.reload_on_read {
            self.refresh(conn)?;
        }
        Ok(())
    }

    /// Inside a write's transaction, before it commits: writes the tables
    /// it changed (`all`: every table, after serc created some) to their
    /// files. An error rolls the transaction back, so the database never
    /// holds a change its files do not.
    pub(super) fn write_changed(&mut self, conn: &Connection, all: bool) -> Result<(), DbError> {
        let mut tables = std::mem::take(&mut *self.dirty.lock().unwrap_or_else(PoisonError::into_inner));
        if all {
            tables.extend(sqlite_tables(conn)?);
        }
        // Every table into its temporary file first, then the renames: a
        // failure before them leaves every file as it was.
        let mut written = Vec::new();
        let mut failed = None;
        for table in &tables {
            let path = self.dir.join(table);
            let tmp = self.dir.join(format!(".{table}.serc-tmp"));
            let write = |text: &[u8]| -> std::io::Result<()> {
                let mut f = fs::File::create(&tmp)?;
                f.write_all(text)?;
                f.sync_data()
            };
            match dump(conn, table).map_err(|e| err(&path, e)).and_then(|t| write(&t).map_err(|e| err(&path, e))) {
                Ok(()) => written.push((tmp, path, table)),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    failed = Some(e);
                    break;
                }
            }
        }
        if let Some(e) = failed {
            for (tmp, ..) in &written {
                let _ = fs::remove_file(tmp);
            }
            return Err(e);
        }
        for (tmp, path, table) in written {
            fs::rename(&tmp, &path).map_err(|e| err(&path, e))?;
            if let Some(s) = stamp(&path) {
                self.files.insert(table.clone(), s);
            }
        }
        // The renames themselves made durable: a crash after the commit
        // finds the new files, not the old ones. The files hold the change
        // already, so a failure here is said, not rolled back.
        if !tables.is_empty() {
            if let Err(e) = fs::File::open(&self.dir).and_then(|d| d.sync_all()) {
                tracing::warn!(dir = %self.dir.display(), error = %e, "dbtext: the directory could not be synced");
            }
        }
        Ok(())
    }

    /// After a write, committed or rolled back: nothing is left to write.
    pub(super) fn settled(&mut self) {
        self.dirty.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// How many times a table was loaded from its file (see `loads`).
    pub(super) fn loads(&self) -> u64 {
        self.loads
    }

    /// Loads the table files that are new or changed since last seen.
    fn refresh(&mut self, conn: &Connection) -> Result<(), DbError> {
        let entries = fs::read_dir(&self.dir).map_err(|e| err(&self.dir, e))?;
        let mut loaded = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| err(&self.dir, e))?.path();
            let Some(name) = table_name(&path) else { continue };
            let Some(now) = stamp(&path) else { continue };
            if self.files.get(&name) == Some(&now) {
                continue;
            }
            let text = fs::read(&path).map_err(|e| err(&path, e))?;
            let (columns, rows) = parse(&text).map_err(|e| err(&path, e))?;
            // Counted first: reads may answer otherwise even if a later file fails.
            self.loads += 1;
            load(conn, &name, &columns, &rows).map_err(|e| err(&path, e))?;
            self.files.insert(name.clone(), now);
            loaded.push(name);
        }
        // Loading is not a change to write back.
        let mut dirty = self.dirty.lock().unwrap_or_else(PoisonError::into_inner);
        for name in &loaded {
            dirty.remove(name);
        }
        Ok(())
    }
}

/// The tables of the in-memory database (not SQLite's own).
fn sqlite_tables(conn: &Connection) -> Result<Vec<String>, DbError> {
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .map_err(sql_err)?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0)).map_err(sql_err)?;
    names.collect::<Result<Vec<_>, _>>().map_err(sql_err)
}

/// A field of a row as read: NULL, or its text unescaped.
type Field = Option<Vec<u8>>;

/// Parses a table file: its columns and its rows' fields.
fn parse(text: &[u8]) -> Result<(Vec<Column>, Vec<Vec<Field>>), String> {
    let mut lines = text.split(|&b| b == b'\n').enumerate();
    let header = loop {
        match lines.next() {
            Some((_, l)) if l.iter().all(u8::is_ascii_whitespace) => continue,
            Some((_, l)) => break l,
            None => return Err("no column definitions (an empty file)".into()),
        }
    };
    let header = std::str::from_utf8(header).map_err(|_| "line 1: the column definitions are not UTF-8")?;
    let columns = parse_header(header.trim_end_matches('\r')).map_err(|e| format!("line 1: {e}"))?;
    let mut rows = Vec::new();
    for (n, line) in lines {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let fields = parse_row(line).map_err(|e| format!("line {}: {e}", n + 1))?;
        if fields.len() != columns.len() {
            return Err(format!("line {}: {} fields, the table has {} columns", n + 1, fields.len(), columns.len()));
        }
        for (c, f) in columns.iter().zip(&fields) {
            if f.is_none() && !c.null && !c.auto && c.ty != Type::Str && c.ty != Type::Blob {
                return Err(format!("line {}: `{}` is empty and not declared `null`", n + 1, c.name));
            }
        }
        rows.push(fields);
    }
    Ok((columns, rows))
}

/// `id(int,auto) username(string) domain(string,null) …`
fn parse_header(line: &str) -> Result<Vec<Column>, String> {
    let mut columns: Vec<Column> = Vec::new();
    let mut rest = line.trim();
    while !rest.is_empty() {
        let open = rest.find('(').ok_or_else(|| format!("`{rest}`: expected name(type)"))?;
        let close = rest.find(')').filter(|&c| c > open).ok_or_else(|| format!("`{rest}`: no `)`"))?;
        let name = rest[..open].trim();
        super::ident(name).map_err(|_| format!("`{name}` is not a column name"))?;
        let mut spec = rest[open + 1..close].split(',').map(str::trim);
        let ty_text = spec.next().unwrap_or("");
        let ty = match ty_text.bytes().next().map(|b| b.to_ascii_lowercase()) {
            Some(b'i') => Type::Int,
            Some(b'd') => Type::Double,
            Some(b's') => Type::Str,
            Some(b'b') => Type::Blob,
            Some(b't') => Type::Time,
            _ => return Err(format!("`{name}`: unknown type `{ty_text}` (int, double, str, string, blob, time)")),
        };
        let mut column = Column { name: name.to_string(), ty, null: false, auto: false };
        match spec.next().map(|f| f.bytes().next().map(|b| b.to_ascii_lowercase())) {
            None => {}
            Some(Some(b'n')) => column.null = true,
            Some(Some(b'a')) if ty == Type::Int && !columns.iter().any(|c| c.auto) => column.auto = true,
            Some(_) => return Err(format!("`{name}`: the flag is `null`, or `auto` for one int column")),
        }
        if columns.iter().any(|c| c.name.eq_ignore_ascii_case(name)) {
            return Err(format!("`{name}` is declared twice"));
        }
        columns.push(column);
        rest = rest[close + 1..].trim_start();
    }
    if columns.is_empty() {
        return Err("no columns".into());
    }
    Ok(columns)
}

/// A row's fields: split at unescaped `:`, unescaped.
fn parse_row(line: &[u8]) -> Result<Vec<Field>, String> {
    let mut fields = Vec::new();
    let mut field = Vec::new();
    let mut bytes = line.iter();
    while let Some(&b) = bytes.next() {
        match b {
            b':' => fields.push(std::mem::take(&mut field)),
            b'\\' => field.push(match bytes.next() {
                Some(b'n') => b'\n',
                Some(b'r') => b'\r',
                Some(b't') => b'\t',
                Some(b'0') => 0,
                Some(&c @ (b'\\' | b':')) => c,
                Some(&c) => return Err(format!("`\\{}` is no escape (\\n \\r \\t \\0 \\\\ \\:)", c as char)),
                None => return Err("a `\\` ends the line".into()),
            }),
            _ => field.push(b),
        }
    }
    fields.push(field);
    Ok(fields.into_iter().map(|f| (!f.is_empty()).then_some(f)).collect())
}

fn sql_type(c: &Column) -> &'static str {
    match c.ty {
        Type::Int | Type::Time if c.auto => "INTEGER PRIMARY KEY AUTOINCREMENT",
        Type::Int | Type::Time => "INTEGER",
        Type::Double => "REAL",
        Type::Str => "TEXT",
        Type::Blob => "BLOB",
    }
}

/// (Re)creates `table` in the database with the file's columns and rows.
fn load(conn: &Connection, table: &str, columns: &[Column], rows: &[Vec<Field>]) -> Result<(), String> {
    let defs: Vec<String> = columns
        .iter()
        .map(|c| {
            let not_null = if c.null || c.auto { "" } else { " NOT NULL" };
            let default = match (c.ty, c.null || c.auto) {
                (_, true) => "",
                (Type::Str | Type::Blob, false) => " DEFAULT ''",
                (_, false) => " DEFAULT 0",
            };
            format!("\"{}\" {}{not_null}{default}", c.name, sql_type(c))
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let marks = vec!["?"; columns.len()].join(", ");
    let tx = conn.unchecked_transaction().map_err(|e| e.to_string())?;
    let mut ddl = format!("DROP TABLE IF EXISTS \"{table}\"; CREATE TABLE \"{table}\" ({});", defs.join(", "));
    // The indexes of OpenSER's layout of the table (the lookups the modules
    // make), on the columns the file has; none unique, as dbtext enforced none.
    for index in super::schema::table(table).map_or(&[][..], |t| t.indexes) {
        if index.columns.iter().all(|c| columns.iter().any(|col| col.name.eq_ignore_ascii_case(c))) {
            let on = index.columns.iter().map(|c| format!("\"{c}\"")).collect::<Vec<_>>().join(", ");
            ddl.push_str(&format!(" CREATE INDEX \"{table}_{}\" ON \"{table}\" ({on});", index.name));
        }
    }
    tx.execute_batch(&ddl).map_err(|e| e.to_string())?;
    {
        let mut insert = tx
            .prepare(&format!("INSERT INTO \"{table}\" ({}) VALUES ({marks})", names.join(", ")))
            .map_err(|e| e.to_string())?;
        for (n, row) in rows.iter().enumerate() {
            let values: Vec<rusqlite::types::Value> = columns
                .iter()
                .zip(row)
                .map(|(c, f)| field_value(c, f.as_deref()))
                .collect::<Result<_, _>>()
                .map_err(|e| format!("row {}: {e}", n + 1))?;
            insert.execute(rusqlite::params_from_iter(values)).map_err(|e| format!("row {}: {e}", n + 1))?;
        }
    }
    tx.commit().map_err(|e| e.to_string())
}

/// A field as the value SQLite keeps: numbers parsed, strings as text.
fn field_value(c: &Column, field: Option<&[u8]>) -> Result<rusqlite::types::Value, String> {
    use rusqlite::types::Value as V;
    let Some(bytes) = field else {
        return Ok(match c.ty {
            Type::Str if !c.null => V::Text(String::new()),
            Type::Blob if !c.null => V::Blob(Vec::new()),
            _ => V::Null,
        });
    };
    let text = || String::from_utf8_lossy(bytes).into_owned();
    Ok(match c.ty {
        Type::Int | Type::Time => {
            V::Integer(text().trim().parse().map_err(|_| format!("`{}`: `{}` is not an integer", c.name, text()))?)
        }
        Type::Double => {
            V::Real(text().trim().parse().map_err(|_| format!("`{}`: `{}` is not a number", c.name, text()))?)
        }
        Type::Str => V::Text(text()),
        Type::Blob => V::Blob(bytes.to_vec()),
    })
}

/// `table` as a table file: its columns from SQLite's description of it,
/// then its rows in the order of their row ids.
fn dump(conn: &Connection, table: &str) -> Result<Vec<u8>, String> {
    let mut info = conn.prepare(&format!("PRAGMA table_info(\"{table}\")")).map_err(|e| e.to_string())?;
    let columns: Vec<Column> = info
        .query_map([], |r| {
            let name: String = r.get(1)?;
            let decl: String = r.get(2)?;
            let not_null: bool = r.get(3)?;
            let pk: i64 = r.get(5)?;
            Ok((name, decl.to_ascii_uppercase(), not_null, pk))
        })
        .map_err(|e| e.to_string())?
        .map(|r| {
            r.map(|(name, decl, not_null, pk)| {
                let ty = if decl.contains("INT") {
                    Type::Int
                } else if decl.contains("REAL") || decl.contains("FLOA") || decl.contains("DOUB") {
                    Type::Double
                } else if decl.contains("TIME") || decl.contains("DATE") {
                    Type::Time
                } else if decl.contains("BLOB") {
                    Type::Blob
                } else {
                    Type::Str
                };
                let auto = pk == 1 && ty == Type::Int;
                Column { name, ty, null: !not_null && !auto, auto }
            })
        })
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    if columns.is_empty() {
        return Err(format!("no table `{table}`"));
    }
    let mut out = Vec::new();
    for (i, c) in columns.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        let ty = match c.ty {
            Type::Int | Type::Time => "int",
            Type::Double => "double",
            Type::Str => "string",
            Type::Blob => "blob",
        };
        let flag = if c.auto {
            ",auto"
        } else if c.null {
            ",null"
        } else {
            ""
        };
        out.extend_from_slice(format!("{}({ty}{flag})", c.name).as_bytes());
    }
    out.push(b'\n');
    let names: Vec<String> = columns.iter().map(|c| format!("\"{}\"", c.name)).collect();
    let mut select = conn
        .prepare(&format!("SELECT {} FROM \"{table}\" ORDER BY rowid", names.join(", ")))
        .map_err(|e| e.to_string())?;
    let mut rows = select.query([]).map_err(|e| e.to_string())?;
    while let Some(row) = rows.next().map_err(|e| e.to_string())? {
        for (i, c) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b':');
            }
            match row.get_ref(i).map_err(|e| e.to_string())? {
                ValueRef::Null => {}
                ValueRef::Integer(v) => out.extend_from_slice(v.to_string().as_bytes()),
                // Two decimals, as 1.3 wrote them, unless that would round.
                ValueRef::Real(f) if c.ty == Type::Double && (f * 100.0).round() / 100.0 == f => {
                    out.extend_from_slice(format!("{f:.2}").as_bytes())
                }
                ValueRef::Real(f) => out.extend_from_slice(f.to_string().as_bytes()),
                ValueRef::Text(t) if c.ty == Type::Int || c.ty == Type::Time => {
                    // A time written as text by a statement of the SQLite dialect.
                    match std::str::from_utf8(t).ok().and_then(super::parse_datetime) {
                        Some(secs) => out.extend_from_slice(secs.to_string().as_bytes()),
                        None => escape(t, &mut out),
                    }
                }
                ValueRef::Text(t) | ValueRef::Blob(t) => escape(t, &mut out),
            }
        }
        out.push(b'\n');
    }
    Ok(out)
}

fn escape(field: &[u8], out: &mut Vec<u8>) {
    for &b in field {
        match b {
            b':' => out.extend_from_slice(b"\\:"),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            0 => out.extend_from_slice(b"\\0"),
            _ => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::sqlite::Sqlite;
    use super::*;
    use crate::db::Value;

    /// OpenSER 1.3's own `scripts/dbtext/openser/location` header and a row.
    const LOCATION: &str = "id(int,auto) username(string) domain(string,null) contact(string) received(string,null) \
        path(string,null) expires(int) q(double) callid(string) cseq(int) last_modified(int) flags(int) \
        cflags(int) user_agent(string) socket(string,null) methods(int,null) \n\
        7:alice::sip\\:alice@10.0.0.1\\:5060:::1764400000:0.50:a\\\\b\\tc:3:1764399000:0:0:X\\: 1.0:udp\\:1.2.3.4\\:5060:\n";

    fn memory() -> Connection {
        Connection::open_in_memory().unwrap()
    }

    #[test]
    fn a_table_file_of_openser_1_3_loads_and_writes_back_the_same() {
        let (columns, rows) = parse(LOCATION.as_bytes()).unwrap();
        assert_eq!(columns.len(), 16);
        assert!(columns[0].auto && !columns[0].null);
        assert!(columns[2].null && columns[2].ty == Type::Str);
        assert_eq!(columns[7].ty, Type::Double);
        assert_eq!(rows[0][3].as_deref(), Some(&b"sip:alice@10.0.0.1:5060"[..]));
        assert_eq!(rows[0][2], None);
        assert_eq!(rows[0][8].as_deref(), Some(&b"a\\b\tc"[..]));
        let conn = memory();
        load(&conn, "location", &columns, &rows).unwrap();
        let (contact, q, expires): (String, f64, i64) = conn
            .query_row("SELECT contact, q, expires FROM location WHERE username = 'alice'", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .unwrap();
        assert_eq!((contact.as_str(), q, expires), ("sip:alice@10.0.0.1:5060", 0.5, 1_764_400_000));
        assert_eq!(String::from_utf8(dump(&conn, "location").unwrap()).unwrap(), LOCATION.replace(" \n", "\n"));
    }

    #[test]
    fn a_table_of_openser_s_layout_gets_its_indexes() {
        let conn = memory();
        let (c, r) =
            parse(b"id(int,auto) username(string) domain(string) password(string)\n1:a:x:p\n2:a:x:p\n").unwrap();
        load(&conn, "subscriber", &c, &r).unwrap();
        let plan: String = conn
            .query_row(
                "EXPLAIN QUERY PLAN SELECT password FROM subscriber WHERE username = 'a' AND domain = 'x'",
                [],
                |r| r.get(3),
            )
            .unwrap();
        assert!(plan.contains("USING INDEX subscriber_account_idx"), "{plan}");
    }

    #[test]
    fn keywords_as_names_and_numbers_that_two_decimals_would_round() {
        let conn = memory();
        let (c, r) = parse(b"order(int) group(double) time(int,null)\n1:0.125:\n2:1:7\n").unwrap();
        load(&conn, "select", &c, &r).unwrap();
        assert_eq!(
            String::from_utf8(dump(&conn, "select").unwrap()).unwrap(),
            "order(int) group(double) time(int,null)\n1:0.125:\n2:1.00:7\n"
        );
    }

    #[test]
    fn an_auto_column_numbers_new_rows_after_the_highest() {
        let conn = memory();
        let (c, r) = parse(b"id(int,auto) name(str)\n5:x\n").unwrap();
        load(&conn, "t", &c, &r).unwrap();
        conn.execute("INSERT INTO t (name) VALUES ('y')", []).unwrap();
        assert_eq!(String::from_utf8(dump(&conn, "t").unwrap()).unwrap(), "id(int,auto) name(string)\n5:x\n6:y\n");
    }

    #[test]
    fn bad_files_say_where() {
        for (text, says) in [
            ("", "empty file"),
            ("a(int) b(float)\n", "line 1: `b`: unknown type `float`"),
            ("a(int,null,x) a(str)\n", "line 1: `a` is declared twice"),
            ("a(str,auto)\n", "`auto` for one int column"),
            ("a(int) b(str)\n1:x\n2\n", "line 3: 1 fields, the table has 2 columns"),
            ("a(int) b(str)\n1:x\\q\n", "line 2: `\\q` is no escape"),
            ("a(int) b(str)\n:x\n", "line 2: `a` is empty and not declared `null`"),
            ("a(int) b(str)\nx:y\n", ""),
        ] {
            match parse(text.as_bytes()) {
                Err(e) => assert!(e.contains(says), "{text:?}: {e}"),
                Ok((c, r)) => {
                    // Parses; the integer is refused when loaded.
                    let e = load(&memory(), "t", &c, &r).unwrap_err();
                    assert!(e.contains("row 1: `a`: `x` is not an integer"), "{e}");
                }
            }
        }
    }

    /// A directory under the system's temporary one, removed at the end.
    struct Dir(PathBuf);

    impl Dir {
        fn new(what: &str) -> Dir {
            let nanos = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap().subsec_nanos();
            Dir(std::env::temp_dir().join(format!("serc-dbtext-{what}-{}-{nanos}", std::process::id())))
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_write_its_file_cannot_take_is_rolled_back() {
        use crate::db::{Db, DbUrl};
        let dir = Dir::new("rollback");
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.0.join("t"), "id(int,auto) name(string)\n1:kept\n").unwrap();
        let db = Db::open(&DbUrl::Text(dir.0.clone()), crate::db::DEFAULT_TIMEOUT).unwrap();
        let names = |db: &Db| -> Vec<String> {
            db.query_now("SELECT name FROM t ORDER BY id", vec![]).unwrap().iter().map(|r| r.text(0).unwrap()).collect()
        };
        // Its temporary file cannot be made (a directory has its name).
        fs::create_dir(dir.0.join(".t.serc-tmp")).unwrap();
        let e = db.execute_now("INSERT INTO t (name) VALUES (?)", vec![Value::from("lost")]).unwrap_err();
        assert!(e.to_string().contains("dbtext"), "{e}");
        assert_eq!(names(&db), ["kept"], "rolled back");
        assert_eq!(fs::read_to_string(dir.0.join("t")).unwrap(), "id(int,auto) name(string)\n1:kept\n");
        fs::remove_dir(dir.0.join(".t.serc-tmp")).unwrap();
        db.execute_now("INSERT INTO t (name) VALUES (?)", vec![Value::from("new")]).unwrap();
        assert_eq!(fs::read_to_string(dir.0.join("t")).unwrap(), "id(int,auto) name(string)\n1:kept\n2:new\n");
        // Changed by hand: read again before the next write, which keeps both.
        fs::write(dir.0.join("t"), "id(int,auto) name(string)\n1:kept\n2:new\n7:by hand\n").unwrap();
        db.execute_now("INSERT INTO t (name) VALUES (?)", vec![Value::from("after")]).unwrap();
        assert_eq!(names(&db), ["kept", "new", "by hand", "after"]);
        let file = fs::read_to_string(dir.0.join("t")).unwrap();
        assert!(file.ends_with("7:by hand\n8:after\n"), "{file}");
    }

    /// The subscriber table of a registrar with digest authentication, and
    /// the query auth_db makes of it.
    const SUBSCRIBERS: &str = "username(string) domain(string) password(string)\nalice:example.com:secret\n";
    const PASSWORD: &str = "SELECT password FROM subscriber WHERE username = ? AND domain = ?";

    /// A directory holding [`SUBSCRIBERS`], opened (the directory goes with the database).
    fn subscribers(what: &str) -> (Dir, Sqlite) {
        let dir = Dir::new(what);
        fs::create_dir_all(&dir.0).unwrap();
        fs::write(dir.0.join("subscriber"), SUBSCRIBERS).unwrap();
        let db = Sqlite::open_text(&dir.0).unwrap();
        (dir, db)
    }

    fn password(db: &Sqlite, user: &str) -> Vec<String> {
        let params = [Value::from(user), Value::from("example.com")];
        db.query_now(PASSWORD, &params).unwrap().iter().map(|r| r.text(0).unwrap()).collect()
    }

    #[test]
    fn a_select_asked_again_is_answered_until_the_tables_change() {
        use crate::db::Stmt;
        let (_dir, db) = subscribers("reads");
        assert_eq!(password(&db, "alice"), ["secret"]);
        assert_eq!(password(&db, "bob"), Vec::<String>::new());
        // Changed behind dbtext's back: the answers come from memory.
        db.raw(|conn, _| conn.execute("UPDATE subscriber SET password = 'behind'", []).unwrap());
        db.raw(|conn, _| conn.execute("INSERT INTO subscriber VALUES ('bob', 'example.com', 'b')", []).unwrap());
        assert_eq!(password(&db, "alice"), ["secret"]);
        assert_eq!(password(&db, "bob"), Vec::<String>::new());
        // Another parameter is another question.
        let other = [Value::from("alice"), Value::from("example.org")];
        assert!(db.query_now(PASSWORD, &other).unwrap().is_empty());
        // A write forgets every answer.
        let update = "UPDATE subscriber SET password = ? WHERE username = ?";
        db.transaction_now(&[Stmt::new(update, vec![Value::from("new"), Value::from("alice")])]).unwrap();
        assert_eq!(password(&db, "alice"), ["new"]);
        assert_eq!(password(&db, "bob"), ["b"]);
        // So does a statement other than a plain SELECT run as a read (a
        // config's avp_db_query), and a SELECT calling a function is not kept.
        db.query_now("UPDATE subscriber SET password = 'by a read' WHERE username = 'alice'", &[]).unwrap();
        assert_eq!(password(&db, "alice"), ["by a read"]);
        let count = "SELECT count(*) FROM subscriber";
        assert_eq!(db.query_now(count, &[]).unwrap()[0].text(0).unwrap(), "2");
        db.raw(|conn, _| conn.execute("DELETE FROM subscriber WHERE username = 'bob'", []).unwrap());
        assert_eq!(db.query_now(count, &[]).unwrap()[0].text(0).unwrap(), "1");
    }

    #[test]
    fn a_table_file_read_again_is_not_answered_from_memory() {
        let (dir, db) = subscribers("reads-reload");
        // db_mode 1: a changed file is read again before every query.
        db.raw(|_, text| text.unwrap().reload_on_read = true);
        assert_eq!(password(&db, "alice"), ["secret"]);
        fs::write(dir.0.join("subscriber"), SUBSCRIBERS.replace("secret", "changed by hand")).unwrap();
        assert_eq!(password(&db, "alice"), ["changed by hand"]);
    }

    #[test]
    fn a_reading_again_that_fails_halfway_leaves_no_stale_answer() {
        use crate::db::Stmt;
        let dir = Dir::new("reads-halfway");
        fs::create_dir_all(&dir.0).unwrap();
        for n in 0..8 {
            fs::write(dir.0.join(format!("t{n}")), "name(string)\nold\n").unwrap();
        }
        let db = Sqlite::open_text(&dir.0).unwrap();
        let name = |n: usize| db.query_now(&format!("SELECT name FROM t{n}"), &[]).unwrap()[0].text(0).unwrap();
        for n in 0..8 {
            assert_eq!(name(n), "old");
        }
        // Changed by hand, beside table files that do not parse: the write reads
        // the files again first and fails. Which tables were loaded before the
        // first bad file depends on read_dir's order; with eight of each, some
        // are, unless every bad file comes first (1 order in 12,870).
        for n in 0..8 {
            fs::write(dir.0.join(format!("t{n}")), "name(string)\nnewer\n").unwrap();
            fs::write(dir.0.join(format!("broken{n}")), "no columns here\n").unwrap();
        }
        let update = Stmt::new("UPDATE t0 SET name = 'written'", vec![]);
        assert!(db.transaction_now(&[update]).is_err());
        // A read answers what the database holds, loaded or not.
        for n in 0..8 {
            let held: String =
                db.raw(|conn, _| conn.query_row(&format!("SELECT name FROM t{n}"), [], |r| r.get(0)).unwrap());
            assert_eq!(name(n), held, "t{n}");
        }
    }

    #[test]
    fn escapes_round_trip() {
        let mut out = Vec::new();
        escape(b"a:b\\c\nd\re\tf\0g", &mut out);
        assert_eq!(out, b"a\\:b\\\\c\\nd\\re\\tf\\0g");
        assert_eq!(parse_row(&out).unwrap(), vec![Some(b"a:b\\c\nd\re\tf\0g".to_vec())]);
        assert_eq!(parse_row(b"::").unwrap(), vec![None, None, None]);
    }
}
