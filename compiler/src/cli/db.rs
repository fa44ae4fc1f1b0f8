//! `serc db`: creates OpenSER 1.3's tables and manages subscribers and
//! domains the way `openserctl` did, on any database a proxy's `db_url` can
//! name. The work is done by `serc_runtime::db`, the code the proxies run, so
//! the tables `serc db init` creates are the ones a proxy checks at start.

use clap::{Args, Subcommand};
use serc_runtime::db::{self, schema, users, Db, DbError, DbUrl};

use super::Status;

const AFTER_HELP: &str = "\
Database URLs (as a config's db_url modparams write them):
  sqlite:///var/lib/serc/openser.sqlite     an SQLite file (created when missing)
  postgres://openser:secret@127.0.0.1:5432/openser
  mysql://openser:openserrw@127.0.0.1:3306/openser   (MySQL or MariaDB)
Without --db-url: sqlite://openser.sqlite in the current directory, the embedded database a
proxy uses when its config names none.

Examples:
  serc db init --db-url postgres://openser:secret@127.0.0.1/openser
  serc db add-user sip:alice@example.com secret --db-url postgres://openser:secret@127.0.0.1/openser
  serc db add-domain example.com
  serc db remove-user sip:alice@example.com

Exit status: 0 done, 1 the database refused (missing tables, wrong versions, a user that exists
already or does not exist), 2 a bad URL or a database that cannot be reached.";

/// Create OpenSER 1.3's tables; add and remove subscribers and domains.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct DbArgs {
    #[command(subcommand)]
    pub command: DbCommand,
}

#[derive(Debug, Args)]
pub struct UrlArg {
    /// The database (sqlite://PATH, postgres://USER:PASS@HOST:PORT/DB, mysql://USER:PASS@HOST:PORT/DB)
    #[arg(long, value_name = "URL")]
    pub db_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Create the version table and OpenSER 1.3's tables that are missing
    /// (location, subscriber, domain, uri, usr_preferences, acc, missed_calls)
    Init {
        #[command(flatten)]
        url: UrlArg,
    },
    /// Add a subscriber with its password, ha1 and ha1b (as openserctl add)
    AddUser {
        /// sip:USER@DOMAIN
        uri: String,
        /// The password (at most 25 characters)
        password: String,
        #[command(flatten)]
        url: UrlArg,
    },
    /// Remove a subscriber and its registered contacts (as openserctl rm)
    RemoveUser {
        /// sip:USER@DOMAIN
        uri: String,
        #[command(flatten)]
        url: UrlArg,
    },
    /// Add a domain to the domain table (as openserctl domain add)
    AddDomain {
        /// The domain (example.com)
        domain: String,
        #[command(flatten)]
        url: UrlArg,
    },
}

fn status_of(e: &DbError) -> Status {
    match e {
        DbError::Url(_) | DbError::Connect(_) | DbError::Timeout(_) => Status::Failure,
        _ => Status::Errors,
    }
}

fn open(url: &UrlArg) -> Result<Db, DbError> {
    let (url, embedded) = DbUrl::for_module(url.db_url.as_deref())?;
    if embedded {
        eprintln!("note: no --db-url: using the embedded database {url}");
    }
    Db::open(&url, db::DEFAULT_TIMEOUT)
}

pub fn run(args: &DbArgs) -> Status {
    let outcome = match &args.command {
        DbCommand::Init { url } => open(url).and_then(|db| {
            let d = db.clone();
            let created = db.wait(async move { schema::init(&d).await })?;
            if created.is_empty() {
                println!("{}: every table is there, with the versions serc expects", db.url());
            } else {
                println!("{}: created {}", db.url(), created.join(", "));
            }
            Ok(())
        }),
        DbCommand::AddUser { uri, password, url } => users::Account::parse(uri).and_then(|account| {
            let db = open(url)?;
            let (d, a, p) = (db.clone(), account.clone(), password.clone());
            db.wait(async move {
                schema::check(&d, &["subscriber"]).await?;
                users::add_user(&d, &a, &p).await
            })?;
            println!("added the subscriber {}@{}", account.user, account.domain);
            Ok(())
        }),
        DbCommand::RemoveUser { uri, url } => users::Account::parse(uri).and_then(|account| {
            let db = open(url)?;
            let (d, a) = (db.clone(), account.clone());
            let removed = db.wait(async move {
                schema::check(&d, &["subscriber"]).await?;
                users::remove_user(&d, &a).await
            })?;
            if removed {
                println!("removed the subscriber {}@{}", account.user, account.domain);
                Ok(())
            } else {
                Err(DbError::Query(format!("there is no subscriber {}@{}", account.user, account.domain)))
            }
        }),
        DbCommand::AddDomain { domain, url } => open(url).and_then(|db| {
            let (d, name) = (db.clone(), domain.clone());
            let added = db.wait(async move {
                schema::check(&d, &["domain"]).await?;
                users::add_domain(&d, &name).await
            })?;
            if added {
                println!("added the domain {}", domain.trim().to_ascii_lowercase());
            } else {
                println!("the domain {} is there already", domain.trim().to_ascii_lowercase());
            }
            Ok(())
        }),
    };
    match outcome {
        Ok(()) => Status::Ok,
        Err(e) => {
            eprintln!("error: {e}");
            status_of(&e)
        }
    }
}
