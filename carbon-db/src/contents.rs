//! What a database holds: the one answer that preflight, copy and a staging reset all use, so
//! that preflight can never pass a target that copy refuses, and a reset can prove it only
//! removes what a copy wrote.
//!
//! PostgreSQL: every schema but the system ones; tables, views, materialized views, sequences,
//! foreign tables, composite/enum/range/base types and domains, functions, procedures and
//! aggregates, triggers, event triggers, schemas other than `public`, and extensions other than
//! `plpgsql` (objects that belong to an extension are named through the extension).
//! MariaDB/MySQL: tables, sequences, views, routines, triggers and events of the database.
//! SQLite: every entry of `sqlite_schema`. H2: the data files.

use std::collections::BTreeSet;
use std::fmt;

use crate::{DbError, DbUrl, Vendor};

/// One object a database holds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DbObject {
    /// `table`, `view`, `function`, `event`, …
    pub kind: String,
    /// Qualified and quoted as the vendor shows it (`public.f(integer)`, `t`, `trg on public.t`).
    pub name: String,
    /// The statement that removes it (and what depends on it); empty for file targets.
    drop_sql: String,
}

impl fmt::Display for DbObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// What one database holds, or that it does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contents {
    /// The database (redacted URL).
    pub url: String,
    pub exists: bool,
    /// Sorted by kind, then name.
    pub objects: Vec<DbObject>,
}

impl Contents {
    pub fn is_empty(&self) -> bool {
        self.objects.is_empty()
    }

    /// The first few objects, for a one-line message: `function public.f(), view public.v`.
    pub fn summary(&self) -> String {
        summarise(self.objects.iter())
    }

    /// `Err(TargetNotEmpty)` naming what the database holds, unless it holds nothing.
    pub fn require_empty(&self) -> Result<(), DbError> {
        if self.is_empty() {
            return Ok(());
        }
        Err(DbError::TargetNotEmpty {
            url: self.url.clone(),
            objects: self.summary(),
        })
    }

    /// The objects held here that `other` does not hold (same kind and name).
    pub fn not_in<'a>(&'a self, other: &Contents) -> Vec<&'a DbObject> {
        let theirs: BTreeSet<(&str, &str)> = other
            .objects
            .iter()
            .map(|o| (o.kind.as_str(), o.name.as_str()))
            .collect();
        self.objects
            .iter()
            .filter(|o| !theirs.contains(&(o.kind.as_str(), o.name.as_str())))
            .collect()
    }

    fn from_objects(url: &DbUrl, mut objects: Vec<DbObject>) -> Contents {
        objects.sort();
        objects.dedup();
        Contents {
            url: url.to_string(),
            exists: true,
            objects,
        }
    }

    fn absent(url: &DbUrl) -> Contents {
        Contents {
            url: url.to_string(),
            exists: false,
            objects: Vec::new(),
        }
    }
}

/// `kind name, kind name, …` for at most five objects.
pub fn summarise<'a>(objects: impl ExactSizeIterator<Item = &'a DbObject>) -> String {
    let total = objects.len();
    let mut names: Vec<String> = objects.take(5).map(ToString::to_string).collect();
    if total > 5 {
        names.push(format!("… ({total} objects in all)"));
    }
    names.join(", ")
}

/// What `url` holds, read in a read-only session. An absent database is `exists: false`.
pub fn contents(url: &DbUrl) -> Result<Contents, DbError> {
    let read = match url.vendor() {
        Vendor::Postgres => crate::pg::connect_source(url).and_then(|mut c| postgres(&mut c, url)),
        Vendor::MySql => crate::my::connect_meta(url).and_then(|mut c| mysql(&mut c, url)),
        Vendor::Sqlite => crate::sqlite::open_read(url).and_then(|c| sqlite(&c, url)),
        Vendor::H2 => h2(url),
        _ => Err(DbError::not_copyable(url)),
    };
    match read {
        Ok(objects) => Ok(Contents::from_objects(url, objects)),
        Err(DbError::SourceMissing { .. }) => Ok(Contents::absent(url)),
        Err(e) => Err(e),
    }
}

/// What the database of an open PostgreSQL session holds.
pub(crate) fn of_postgres(c: &mut postgres::Client, url: &DbUrl) -> Result<Contents, DbError> {
    postgres(c, url).map(|objects| Contents::from_objects(url, objects))
}

/// What the database of an open MariaDB/MySQL session holds.
pub(crate) fn of_mysql(c: &mut mysql::Conn, url: &DbUrl) -> Result<Contents, DbError> {
    mysql(c, url).map(|objects| Contents::from_objects(url, objects))
}

/// What an open SQLite database holds.
pub(crate) fn of_sqlite(c: &rusqlite::Connection, url: &DbUrl) -> Result<Contents, DbError> {
    sqlite(c, url).map(|objects| Contents::from_objects(url, objects))
}

/// Removes every object of `contents` from its database in one transaction where the vendor
/// has transactional DDL, waiting at most a few seconds for a lock: a session that holds one
/// is reported, not killed. The caller has proved that these objects are ours.
pub(crate) fn drop_objects(url: &DbUrl, contents: &Contents) -> Result<(), DbError> {
    let mut objects: Vec<&DbObject> = contents.objects.iter().collect();
    objects.sort_by_key(|o| drop_rank(&o.kind));
    match url.vendor() {
        Vendor::Postgres => {
            let mut c = crate::pg::connect(url)?;
            let mut sql = String::from("BEGIN; SET LOCAL lock_timeout = '5s';\n");
            for o in &objects {
                sql.push_str(&o.drop_sql);
                sql.push_str(";\n");
            }
            sql.push_str("COMMIT;");
            c.batch_execute(&sql)
                .map_err(|e| DbError::sql(url, "emptying the staging database", e))
        }
        Vendor::MySql => {
            use mysql::prelude::Queryable;
            let mut c = crate::my::connect(url, true)?;
            c.query_drop("SET SESSION foreign_key_checks = 0, lock_wait_timeout = 5")
                .map_err(|e| DbError::sql(url, "emptying the staging database", e))?;
            for o in &objects {
                c.query_drop(&o.drop_sql)
                    .map_err(|e| DbError::sql(url, "emptying the staging database", e))?;
            }
            Ok(())
        }
        Vendor::Sqlite | Vendor::H2 => Err(DbError::Unsupported {
            url: url.to_string(),
            reason: "a file database is reset by removing its files".into(),
        }),
        _ => Err(DbError::not_copyable(url)),
    }
}

/// Dependents before what they depend on (CASCADE and IF EXISTS make the order a courtesy).
fn drop_rank(kind: &str) -> u8 {
    match kind {
        "event trigger" | "trigger" | "event" => 0,
        "view" | "materialized view" => 1,
        "table" | "foreign table" => 2,
        "sequence" => 3,
        "function" | "procedure" | "aggregate" | "package" | "package body" => 4,
        "type" | "domain" => 5,
        "extension" => 6,
        _ => 7,
    }
}

const PG_USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

/// Not a member of an extension (those go with `DROP EXTENSION`).
fn pg_own(catalog: &str, oid: &str) -> String {
    format!(
        "NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = '{catalog}'::regclass \
         AND d.objid = {oid} AND d.deptype = 'e')"
    )
}

fn postgres(c: &mut postgres::Client, url: &DbUrl) -> Result<Vec<DbObject>, DbError> {
    let sql = format!(
        "SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                  WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' WHEN 'c' THEN 'type' ELSE 'table' END,
                format('%I.%I', n.nspname, c.relname),
                format('DROP %s IF EXISTS %I.%I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW'
                  WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE'
                  WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END, n.nspname, c.relname)
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE c.relkind IN ('r','p','v','m','S','f','c') AND {PG_USER_NS} AND {rel_own}
         UNION ALL
         SELECT CASE p.prokind WHEN 'p' THEN 'procedure' WHEN 'a' THEN 'aggregate' ELSE 'function' END,
                format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
                format('DROP ROUTINE IF EXISTS %I.%I(%s) CASCADE', n.nspname, p.proname,
                       pg_get_function_identity_arguments(p.oid))
         FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
         WHERE {PG_USER_NS} AND {proc_own}
         UNION ALL
         SELECT CASE t.typtype WHEN 'd' THEN 'domain' ELSE 'type' END,
                format('%I.%I', n.nspname, t.typname),
                format('DROP %s IF EXISTS %I.%I CASCADE', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
                       n.nspname, t.typname)
         FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
         WHERE t.typtype IN ('b','d','e','r') AND {PG_USER_NS} AND {type_own}
           AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
         UNION ALL
         SELECT 'trigger', format('%I on %I.%I', t.tgname, n.nspname, c.relname),
                format('DROP TRIGGER IF EXISTS %I ON %I.%I', t.tgname, n.nspname, c.relname)
         FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE NOT t.tgisinternal AND {PG_USER_NS}
         UNION ALL
         SELECT 'event trigger', quote_ident(evtname), format('DROP EVENT TRIGGER IF EXISTS %I', evtname)
         FROM pg_event_trigger
         UNION ALL
         SELECT 'extension', quote_ident(extname), format('DROP EXTENSION IF EXISTS %I CASCADE', extname)
         FROM pg_extension WHERE extname <> 'plpgsql'
         UNION ALL
         SELECT 'schema', quote_ident(n.nspname), format('DROP SCHEMA IF EXISTS %I CASCADE', n.nspname)
         FROM pg_namespace n WHERE {PG_USER_NS} AND n.nspname <> 'public' AND {ns_own}",
        rel_own = pg_own("pg_class", "c.oid"),
        proc_own = pg_own("pg_proc", "p.oid"),
        type_own = pg_own("pg_type", "t.oid"),
        ns_own = pg_own("pg_namespace", "n.oid"),
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| DbError::sql(url, "listing what the database holds", e))?;
    Ok(rows
        .iter()
        .map(|r| DbObject {
            kind: r.get(0),
            name: r.get(1),
            drop_sql: r.get(2),
        })
        .collect())
}

fn mysql(c: &mut mysql::Conn, url: &DbUrl) -> Result<Vec<DbObject>, DbError> {
    use mysql::prelude::Queryable;
    let db = url.database();
    let rows: Vec<(String, String)> = c
        .exec(
            "SELECT CASE TABLE_TYPE WHEN 'VIEW' THEN 'view' WHEN 'SEQUENCE' THEN 'sequence' ELSE 'table' END, TABLE_NAME
               FROM information_schema.TABLES WHERE TABLE_SCHEMA = ?
             UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = ?
             UNION ALL SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = ?
             UNION ALL SELECT 'event', EVENT_NAME FROM information_schema.EVENTS WHERE EVENT_SCHEMA = ?",
            (db, db, db, db),
        )
        .map_err(|e| DbError::sql(url, "listing what the database holds", e))?;
    let quoted = |name: &str| format!("`{}`.`{}`", db.replace('`', "``"), name.replace('`', "``"));
    Ok(rows
        .into_iter()
        .map(|(kind, name)| {
            let drop_sql = format!("DROP {} IF EXISTS {}", kind.to_uppercase(), quoted(&name));
            DbObject {
                kind,
                name,
                drop_sql,
            }
        })
        .collect())
}

fn sqlite(c: &rusqlite::Connection, url: &DbUrl) -> Result<Vec<DbObject>, DbError> {
    let mut stmt = c
        .prepare("SELECT type, name FROM sqlite_schema")
        .map_err(|e| DbError::sql(url, "listing what the database holds", e))?;
    stmt.query_map([], |r| {
        Ok(DbObject {
            kind: r.get(0)?,
            name: r.get(1)?,
            drop_sql: String::new(),
        })
    })
    .and_then(Iterator::collect::<Result<Vec<_>, _>>)
    .map_err(|e| DbError::sql(url, "listing what the database holds", e))
}

fn h2(url: &DbUrl) -> Result<Vec<DbObject>, DbError> {
    let (_, files) = crate::h2::source_files(url)?;
    Ok(files
        .into_iter()
        .map(|(_, path)| DbObject {
            kind: "file".into(),
            name: path.display().to_string(),
            drop_sql: String::new(),
        })
        .collect())
}
