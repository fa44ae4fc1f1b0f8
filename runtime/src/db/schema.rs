//! OpenSER 1.3's tables, their versions in the `version` table, and the
//! check made before a module uses them.
//!
//! Each layout is written once ([`TABLES`]: columns, types, defaults,
//! indexes, as OpenSER 1.3's db/schema defined them) and rendered per dialect
//! ([`create_sql`]). Differences from 1.3's scripts: MySQL tables are InnoDB
//! (1.3 made MyISAM tables, which have no transactions; serc writes an AOR's
//! contacts in one); index names are prefixed with their table's in every
//! dialect (1.3 did so for PostgreSQL only); SQLite, which 1.3 did not have,
//! keeps `DATETIME` columns as text.

use super::{Db, DbError, Dialect, Stmt, Value};

/// A column type of the 1.3 layouts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The `id` primary key (auto-increment).
    Id,
    Varchar(u16),
    DateTime,
    Int,
    UInt,
    Float,
}

/// A column: name, type, whether it may be NULL, its default (SQL literal).
#[derive(Clone, Copy, Debug)]
pub struct Column {
    pub name: &'static str,
    pub kind: Kind,
    pub null: bool,
    pub default: Option<&'static str>,
}

/// An index: its name (without the table's prefix), unique or not, its columns.
#[derive(Clone, Copy, Debug)]
pub struct Index {
    pub name: &'static str,
    pub unique: bool,
    pub columns: &'static [&'static str],
}

/// A table of OpenSER 1.3 with its version in the `version` table.
#[derive(Clone, Copy, Debug)]
pub struct Table {
    pub name: &'static str,
    pub version: u32,
    /// The module that reads it (for messages).
    pub module: &'static str,
    pub columns: &'static [Column],
    pub indexes: &'static [Index],
}

const fn col(name: &'static str, kind: Kind, default: &'static str) -> Column {
    Column { name, kind, null: false, default: Some(default) }
}

const fn nullable(name: &'static str, kind: Kind) -> Column {
    Column { name, kind, null: true, default: None }
}

const ID: Column = Column { name: "id", kind: Kind::Id, null: false, default: None };
const V64: Kind = Kind::Varchar(64);
const OLD: &str = "'1900-01-01 00:00:01'";
const LAST_MODIFIED: Column = col("last_modified", Kind::DateTime, OLD);

/// The `version` table: which version of each table's layout the database holds.
pub const VERSION: Table = Table {
    name: "version",
    version: 0,
    module: "core",
    columns: &[
        Column { name: "table_name", kind: Kind::Varchar(32), null: false, default: None },
        col("table_version", Kind::UInt, "0"),
    ],
    indexes: &[],
};

const ACC_COLUMNS: &[Column] = &[
    ID,
    col("method", Kind::Varchar(16), "''"),
    col("from_tag", V64, "''"),
    col("to_tag", V64, "''"),
    col("callid", V64, "''"),
    col("sip_code", Kind::Varchar(3), "''"),
    col("sip_reason", Kind::Varchar(32), "''"),
    Column { name: "time", kind: Kind::DateTime, null: false, default: None },
];

/// The tables serc knows, with OpenSER 1.3's versions.
pub const TABLES: &[Table] = &[
    Table {
        name: "location",
        version: 1004,
        module: "usrloc",
        columns: &[
            ID,
            col("username", V64, "''"),
            nullable("domain", V64),
            col("contact", Kind::Varchar(255), "''"),
            nullable("received", Kind::Varchar(128)),
            nullable("path", Kind::Varchar(128)),
            col("expires", Kind::DateTime, "'2020-05-28 21:32:15'"),
            col("q", Kind::Float, "1.0"),
            col("callid", Kind::Varchar(255), "'Default-Call-ID'"),
            col("cseq", Kind::Int, "13"),
            LAST_MODIFIED,
            col("flags", Kind::Int, "0"),
            col("cflags", Kind::Int, "0"),
            col("user_agent", Kind::Varchar(255), "''"),
            nullable("socket", V64),
            nullable("methods", Kind::Int),
        ],
        indexes: &[Index { name: "account_contact_idx", unique: false, columns: &["username", "domain", "contact"] }],
    },
    Table {
        name: "subscriber",
        version: 6,
        module: "auth_db",
        columns: &[
            ID,
            col("username", V64, "''"),
            col("domain", V64, "''"),
            col("password", Kind::Varchar(25), "''"),
            col("first_name", V64, "''"),
            col("last_name", V64, "''"),
            col("email_address", V64, "''"),
            col("datetime_created", Kind::DateTime, OLD),
            col("ha1", V64, "''"),
            col("ha1b", V64, "''"),
            nullable("timezone", V64),
            nullable("rpid", V64),
        ],
        indexes: &[
            Index { name: "account_idx", unique: true, columns: &["username", "domain"] },
            Index { name: "username_idx", unique: false, columns: &["username"] },
        ],
    },
    Table {
        name: "domain",
        version: 1,
        module: "domain",
        columns: &[ID, col("domain", V64, "''"), LAST_MODIFIED],
        indexes: &[Index { name: "domain_idx", unique: true, columns: &["domain"] }],
    },
    Table {
        name: "uri",
        version: 1,
        module: "uri_db",
        columns: &[ID, col("username", V64, "''"), col("domain", V64, "''"), col("uri_user", V64, "''"), LAST_MODIFIED],
        indexes: &[Index { name: "account_idx", unique: true, columns: &["username", "domain", "uri_user"] }],
    },
    Table {
        name: "usr_preferences",
        version: 2,
        module: "avpops",
        columns: &[
            ID,
            col("uuid", V64, "''"),
            col("username", Kind::Varchar(128), "'0'"),
            col("domain", V64, "''"),
            col("attribute", Kind::Varchar(32), "''"),
            col("type", Kind::Int, "0"),
            col("value", Kind::Varchar(128), "''"),
            LAST_MODIFIED,
        ],
        indexes: &[
            Index { name: "ua_idx", unique: false, columns: &["uuid", "attribute"] },
            Index { name: "uda_idx", unique: false, columns: &["username", "domain", "attribute"] },
        ],
    },
    Table {
        name: "acc",
        version: 4,
        module: "acc",
        columns: ACC_COLUMNS,
        indexes: &[Index { name: "callid_idx", unique: false, columns: &["callid"] }],
    },
    Table {
        name: "missed_calls",
        version: 3,
        module: "acc",
        columns: ACC_COLUMNS,
        indexes: &[Index { name: "callid_idx", unique: false, columns: &["callid"] }],
    },
];

/// The table named `name` ([`TABLES`] or `version`).
pub fn table(name: &str) -> Option<&'static Table> {
    if name == VERSION.name {
        return Some(&VERSION);
    }
    TABLES.iter().find(|t| t.name == name)
}

fn type_sql(kind: Kind, dialect: Dialect) -> String {
    match (kind, dialect) {
        (Kind::Id, Dialect::Mysql) => "INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL".into(),
        (Kind::Id, Dialect::Postgres) => "SERIAL PRIMARY KEY NOT NULL".into(),
        (Kind::Id, Dialect::Sqlite) => "INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL".into(),
        (Kind::Varchar(n), _) => format!("VARCHAR({n})"),
        (Kind::DateTime, Dialect::Mysql) => "DATETIME".into(),
        (Kind::DateTime, Dialect::Postgres) => "TIMESTAMP WITHOUT TIME ZONE".into(),
        (Kind::DateTime, Dialect::Sqlite) => "TIMESTAMP".into(),
        (Kind::Int, Dialect::Mysql) => "INT(11)".into(),
        (Kind::UInt, Dialect::Mysql) => "INT UNSIGNED".into(),
        (Kind::Int | Kind::UInt, _) => "INTEGER".into(),
        (Kind::Float, Dialect::Mysql) => "FLOAT(10,2)".into(),
        (Kind::Float, _) => "REAL".into(),
    }
}

/// `CREATE TABLE` and `CREATE INDEX` statements of `table`, separated by `;`.
pub fn create_sql(table: &Table, dialect: Dialect) -> String {
    let cols: Vec<String> = table
        .columns
        .iter()
        .map(|c| {
            let mut s = format!("    {} {}", c.name, type_sql(c.kind, dialect));
            if c.kind != Kind::Id {
                if !c.null {
                    s.push_str(" NOT NULL");
                }
                match c.default {
                    Some(d) => s.push_str(&format!(" DEFAULT {d}")),
                    None if c.null => s.push_str(" DEFAULT NULL"),
                    None => {}
                }
            }
            s
        })
        .collect();
    let engine = if dialect == Dialect::Mysql { " ENGINE=InnoDB" } else { "" };
    let mut sql = format!("CREATE TABLE {} (\n{}\n){engine};\n", table.name, cols.join(",\n"));
    for i in table.indexes {
        let unique = if i.unique { "UNIQUE " } else { "" };
        sql.push_str(&format!(
            "CREATE {unique}INDEX {t}_{n} ON {t} ({c});\n",
            t = table.name,
            n = i.name,
            c = i.columns.join(", ")
        ));
    }
    sql
}

/// Whether `table` exists.
pub async fn exists(db: &Db, table: &str) -> Result<bool, DbError> {
    let table = super::ident(table)?;
    match db.query(format!("SELECT 1 FROM {table} WHERE 1 = 0"), vec![]).await {
        Ok(_) => Ok(true),
        Err(DbError::Query(_)) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `serc db init`: creates the `version` table and every table of
/// [`TABLES`] that is missing, each with its row in `version`. Tables that
/// exist are left as they are (and checked). Returns the tables created.
pub async fn init(db: &Db) -> Result<Vec<&'static str>, DbError> {
    let mut created = Vec::new();
    if !exists(db, VERSION.name).await? {
        db.batch(create_sql(&VERSION, db.dialect())).await?;
        created.push(VERSION.name);
    }
    for t in TABLES {
        if exists(db, t.name).await? {
            continue;
        }
        db.batch(create_sql(t, db.dialect())).await?;
        db.transaction(vec![
            Stmt::new("DELETE FROM version WHERE table_name = ?", vec![t.name.into()]),
            Stmt::new(
                "INSERT INTO version (table_name, table_version) VALUES (?, ?)",
                vec![t.name.into(), Value::Int(t.version.into())],
            ),
        ])
        .await?;
        created.push(t.name);
    }
    check(db, &TABLES.iter().map(|t| t.name).collect::<Vec<_>>()).await?;
    Ok(created)
}

/// Checks that each of `tables` exists with the version serc expects in the
/// `version` table; the error names the table, the version found and the
/// one expected.
pub async fn check(db: &Db, tables: &[&str]) -> Result<(), DbError> {
    let url = db.url();
    let init = format!("create it with `serc db init --db-url {}`", super::redact(&url.to_string()));
    if !exists(db, VERSION.name).await? {
        return Err(DbError::Schema(format!("{url}: the `version` table is missing ({init})")));
    }
    for name in tables {
        let Some(t) = table(name) else { continue };
        if t.name == VERSION.name {
            continue;
        }
        if !exists(db, t.name).await? {
            return Err(DbError::Schema(format!(
                "{url}: the `{}` table ({}, version {}) is missing ({init})",
                t.name, t.module, t.version
            )));
        }
        let rows = db.query("SELECT table_version FROM version WHERE table_name = ?", vec![t.name.into()]).await?;
        match rows.first().and_then(|r| r.int(0)) {
            Some(v) if v == i64::from(t.version) => {}
            Some(v) => {
                return Err(DbError::Schema(format!(
                    "{url}: the `{}` table has version {v} in the `version` table; serc expects {} \
                     (OpenSER 1.3's layout)",
                    t.name, t.version
                )))
            }
            None => {
                return Err(DbError::Schema(format!(
                    "{url}: the `{}` table has no row in the `version` table; serc expects version {}",
                    t.name, t.version
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layouts_render_in_each_dialect() {
        let loc = table("location").unwrap();
        let my = create_sql(loc, Dialect::Mysql);
        assert!(my.contains("id INT(10) UNSIGNED AUTO_INCREMENT PRIMARY KEY NOT NULL"), "{my}");
        assert!(my.contains("expires DATETIME NOT NULL DEFAULT '2020-05-28 21:32:15'"), "{my}");
        assert!(my.contains("domain VARCHAR(64) DEFAULT NULL"), "{my}");
        assert!(my.contains("CREATE INDEX location_account_contact_idx ON location (username, domain, contact)"));
        let pg = create_sql(table("subscriber").unwrap(), Dialect::Postgres);
        assert!(pg.contains("id SERIAL PRIMARY KEY NOT NULL"), "{pg}");
        assert!(pg.contains("CREATE UNIQUE INDEX subscriber_account_idx ON subscriber (username, domain)"));
        assert_eq!(
            TABLES.iter().map(|t| (t.name, t.version)).collect::<Vec<_>>(),
            [
                ("location", 1004),
                ("subscriber", 6),
                ("domain", 1),
                ("uri", 1),
                ("usr_preferences", 2),
                ("acc", 4),
                ("missed_calls", 3)
            ]
        );
    }
}
