//! The shape of a database as its server's catalog describes it: tables, columns (type,
//! length/precision, nullability, default), primary keys, unique constraints, foreign keys
//! with their actions, indexes and sequences. Read through a [`Session`]; names are keyed
//! upper-case (PostgreSQL folds WSO2's unquoted names to lower case, MySQL keeps them), and
//! the server's own spelling is kept for the statements `align` writes.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{DbError, Session, Vendor};

/// One database's schema.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Catalog {
    /// Keyed by upper-case name.
    pub tables: BTreeMap<String, Table>,
    /// Sequence names (PostgreSQL), upper-case.
    pub sequences: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Table {
    /// The server's spelling.
    pub name: String,
    /// Keyed by upper-case name.
    pub columns: BTreeMap<String, Column>,
    pub primary_key: Option<Key>,
    pub uniques: Vec<Key>,
    pub foreign_keys: Vec<ForeignKey>,
    /// Indexes that back no primary key or unique constraint.
    pub indexes: Vec<Index>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Column {
    pub name: String,
    /// Lower-case base type: `character varying`, `integer`, `varchar`, `int unsigned`, ….
    pub data_type: String,
    /// The server's full spelling (`varchar(45)`, `character varying(45)`), for `align`.
    pub full_type: String,
    /// Characters of a character type.
    pub length: Option<u64>,
    /// Digits of a decimal, fractional seconds of a time type.
    pub precision: Option<u64>,
    pub scale: Option<u64>,
    pub nullable: bool,
    /// As the server renders it; `None` when there is none (or it is `NULL`).
    pub default: Option<String>,
    /// MySQL `auto_increment` / `on update …` (its `EXTRA`), lower-case; empty on PostgreSQL.
    pub extra: String,
}

/// A primary key or unique constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Key {
    pub name: String,
    /// Upper-case, in key order.
    pub columns: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForeignKey {
    pub name: String,
    pub columns: Vec<String>,
    /// Upper-case.
    pub ref_table: String,
    pub ref_columns: Vec<String>,
    /// `CASCADE`, `SET NULL`, `SET DEFAULT`, `RESTRICT`, `NO ACTION`.
    pub on_update: String,
    pub on_delete: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Index {
    pub name: String,
    /// Upper-case column names (MySQL prefix lengths as `COL(100)`; PostgreSQL expressions
    /// as the server prints them).
    pub columns: Vec<String>,
    pub unique: bool,
}

fn upper(s: &str) -> String {
    s.to_uppercase()
}

fn list(s: &str) -> Vec<String> {
    s.split(',')
        .filter(|c| !c.is_empty())
        .map(|c| upper(c.trim()))
        .collect()
}

fn cell(row: &[Option<String>], i: usize) -> String {
    row.get(i).cloned().flatten().unwrap_or_default()
}

fn opt(row: &[Option<String>], i: usize) -> Option<String> {
    row.get(i).cloned().flatten()
}

fn num(row: &[Option<String>], i: usize) -> Option<u64> {
    opt(row, i).and_then(|v| v.parse().ok())
}

/// Reads the catalog of the session's database (its current schema on PostgreSQL).
pub fn read(session: &mut Session) -> Result<Catalog, DbError> {
    match session.vendor() {
        Vendor::Postgres => read_postgres(session),
        Vendor::MySql => read_mysql(session),
        vendor => Err(DbError::Unsupported {
            url: session.url().to_string(),
            reason: format!("the schema of a {vendor} database is not read"),
        }),
    }
}

fn table<'a>(catalog: &'a mut Catalog, name: &str) -> Option<&'a mut Table> {
    catalog.tables.get_mut(&upper(name))
}

fn tables(session: &mut Session, sql: &str) -> Result<Catalog, DbError> {
    let mut catalog = Catalog::default();
    for row in session.query_text(sql)? {
        let name = cell(&row, 0);
        catalog.tables.insert(
            upper(&name),
            Table {
                name,
                ..Table::default()
            },
        );
    }
    Ok(catalog)
}

fn read_postgres(s: &mut Session) -> Result<Catalog, DbError> {
    let mut catalog = tables(
        s,
        "SELECT table_name::text FROM information_schema.tables \
         WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
    )?;
    let columns = s.query_text(
        "SELECT table_name::text, column_name::text, data_type::text, udt_name::text, \
                character_maximum_length::text, numeric_precision::text, numeric_scale::text, \
                datetime_precision::text, is_nullable::text, column_default::text \
         FROM information_schema.columns WHERE table_schema = current_schema()",
    )?;
    for row in columns {
        let Some(t) = table(&mut catalog, &cell(&row, 0)) else {
            continue;
        };
        let name = cell(&row, 1);
        let mut data_type = cell(&row, 2).to_lowercase();
        if data_type == "user-defined" || data_type == "array" {
            data_type = cell(&row, 3);
        }
        let length = num(&row, 4);
        let (precision, scale) = match data_type.as_str() {
            "numeric" => (num(&row, 5), num(&row, 6)),
            t if t.starts_with("time") || t == "interval" => (num(&row, 7), None),
            _ => (None, None),
        };
        let full_type = match (length, precision, scale) {
            (Some(l), _, _) => format!("{data_type}({l})"),
            (None, Some(p), Some(sc)) => format!("{data_type}({p},{sc})"),
            _ => data_type.clone(),
        };
        t.columns.insert(
            upper(&name),
            Column {
                name,
                data_type,
                full_type,
                length,
                precision,
                scale,
                nullable: cell(&row, 8) == "YES",
                default: opt(&row, 9),
                extra: String::new(),
            },
        );
    }
    let constraints = s.query_text(
        "SELECT t.relname::text, c.conname::text, c.contype::text, \
           array_to_string(ARRAY(SELECT a.attname FROM unnest(c.conkey) WITH ORDINALITY k(n, o) \
             JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n ORDER BY k.o), ','), \
           COALESCE(rt.relname::text, ''), \
           COALESCE(array_to_string(ARRAY(SELECT a.attname FROM unnest(c.confkey) WITH ORDINALITY k(n, o) \
             JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.n ORDER BY k.o), ','), ''), \
           c.confupdtype::text, c.confdeltype::text \
         FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid \
         JOIN pg_namespace n ON n.oid = t.relnamespace LEFT JOIN pg_class rt ON rt.oid = c.confrelid \
         WHERE n.nspname = current_schema() AND c.contype IN ('p', 'u', 'f')",
    )?;
    for row in constraints {
        let action = |code: &str| {
            match code {
                "c" => "CASCADE",
                "n" => "SET NULL",
                "d" => "SET DEFAULT",
                "r" => "RESTRICT",
                _ => "NO ACTION",
            }
            .to_owned()
        };
        let kind = cell(&row, 2);
        let (on_update, on_delete) = (action(&cell(&row, 6)), action(&cell(&row, 7)));
        add_constraint(&mut catalog, &row, &kind, on_update, on_delete);
    }
    let indexes = s.query_text(
        "SELECT t.relname::text, i.relname::text, ix.indisunique::text, \
           array_to_string(ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k + 1, true) \
             FROM generate_subscripts(ix.indkey, 1) k ORDER BY k), ',') \
         FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid \
         JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
         WHERE n.nspname = current_schema() AND NOT EXISTS (SELECT 1 FROM pg_constraint c \
           WHERE c.conindid = ix.indexrelid AND c.conrelid = ix.indrelid AND c.contype IN ('p', 'u', 'x'))",
    )?;
    for row in indexes {
        if let Some(t) = table(&mut catalog, &cell(&row, 0)) {
            t.indexes.push(Index {
                name: cell(&row, 1),
                columns: list(&cell(&row, 3)),
                unique: cell(&row, 2) == "true",
            });
        }
    }
    let sequences = s.query_text(
        "SELECT sequence_name::text FROM information_schema.sequences \
         WHERE sequence_schema = current_schema() ORDER BY 1",
    )?;
    catalog.sequences = sequences.iter().map(|r| upper(&cell(r, 0))).collect();
    catalog.sequences.sort();
    sort(&mut catalog);
    Ok(catalog)
}

/// Adds one primary key (`p`), unique (`u`) or foreign key (`f`) row: table, name, kind,
/// columns, referenced table, referenced columns.
fn add_constraint(
    catalog: &mut Catalog,
    row: &[Option<String>],
    kind: &str,
    on_update: String,
    on_delete: String,
) {
    let Some(t) = table(catalog, &cell(row, 0)) else {
        return;
    };
    let key = Key {
        name: cell(row, 1),
        columns: list(&cell(row, 3)),
    };
    match kind {
        "p" | "PRIMARY KEY" => t.primary_key = Some(key),
        "u" | "UNIQUE" => t.uniques.push(key),
        _ => t.foreign_keys.push(ForeignKey {
            name: key.name,
            columns: key.columns,
            ref_table: upper(&cell(row, 4)),
            ref_columns: list(&cell(row, 5)),
            on_update,
            on_delete,
        }),
    }
}

fn read_mysql(s: &mut Session) -> Result<Catalog, DbError> {
    let mut catalog = tables(
        s,
        "SELECT TABLE_NAME FROM information_schema.TABLES \
         WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
    )?;
    let columns = s.query_text(
        "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, COLUMN_TYPE, \
                CAST(CHARACTER_MAXIMUM_LENGTH AS CHAR), CAST(NUMERIC_PRECISION AS CHAR), \
                CAST(NUMERIC_SCALE AS CHAR), CAST(DATETIME_PRECISION AS CHAR), IS_NULLABLE, \
                COLUMN_DEFAULT, EXTRA \
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()",
    )?;
    for row in columns {
        let Some(t) = table(&mut catalog, &cell(&row, 0)) else {
            continue;
        };
        let name = cell(&row, 1);
        let full_type = cell(&row, 3).to_lowercase();
        let mut data_type = cell(&row, 2).to_lowercase();
        if full_type.contains("unsigned") {
            data_type.push_str(" unsigned");
        }
        let base = cell(&row, 2).to_lowercase();
        let length = match base.as_str() {
            "char" | "varchar" | "binary" | "varbinary" => num(&row, 4),
            _ => None,
        };
        let (precision, scale) = match base.as_str() {
            "decimal" | "numeric" => (num(&row, 5), num(&row, 6)),
            "datetime" | "timestamp" | "time" => (num(&row, 7), None),
            _ => (None, None),
        };
        // MariaDB renders "no default" of a nullable column as the text NULL.
        let default = opt(&row, 9).filter(|d| d != "NULL");
        t.columns.insert(
            upper(&name),
            Column {
                name,
                data_type,
                full_type,
                length,
                precision,
                scale,
                nullable: cell(&row, 8) == "YES",
                default,
                extra: cell(&row, 10).to_lowercase(),
            },
        );
    }
    let constraints = s.query_text(
        "SELECT k.TABLE_NAME, k.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE, \
           GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ','), \
           COALESCE(MAX(k.REFERENCED_TABLE_NAME), ''), \
           COALESCE(GROUP_CONCAT(k.REFERENCED_COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ','), ''), \
           COALESCE(MAX(rc.UPDATE_RULE), ''), COALESCE(MAX(rc.DELETE_RULE), '') \
         FROM information_schema.KEY_COLUMN_USAGE k \
         JOIN information_schema.TABLE_CONSTRAINTS tc ON tc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
           AND tc.TABLE_NAME = k.TABLE_NAME AND tc.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
         LEFT JOIN information_schema.REFERENTIAL_CONSTRAINTS rc ON rc.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA \
           AND rc.TABLE_NAME = k.TABLE_NAME AND rc.CONSTRAINT_NAME = k.CONSTRAINT_NAME \
         WHERE k.TABLE_SCHEMA = DATABASE() AND tc.CONSTRAINT_TYPE IN ('PRIMARY KEY', 'UNIQUE', 'FOREIGN KEY') \
         GROUP BY k.TABLE_NAME, k.CONSTRAINT_NAME, tc.CONSTRAINT_TYPE",
    )?;
    let mut key_names: Vec<(String, String)> = Vec::new();
    for row in constraints {
        let kind = cell(&row, 2);
        if kind != "FOREIGN KEY" {
            key_names.push((upper(&cell(&row, 0)), cell(&row, 1)));
        }
        let (on_update, on_delete) = (cell(&row, 6), cell(&row, 7));
        add_constraint(&mut catalog, &row, &kind, on_update, on_delete);
    }
    let indexes = s.query_text(
        "SELECT TABLE_NAME, INDEX_NAME, CAST(MIN(NON_UNIQUE) AS CHAR), \
           GROUP_CONCAT(CONCAT(COLUMN_NAME, COALESCE(CONCAT('(', SUB_PART, ')'), '')) \
             ORDER BY SEQ_IN_INDEX SEPARATOR ',') \
         FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
         GROUP BY TABLE_NAME, INDEX_NAME",
    )?;
    for row in indexes {
        let (tname, iname) = (upper(&cell(&row, 0)), cell(&row, 1));
        if key_names.iter().any(|(t, k)| *t == tname && *k == iname) {
            continue;
        }
        if let Some(t) = catalog.tables.get_mut(&tname) {
            t.indexes.push(Index {
                name: iname,
                columns: list(&cell(&row, 3)),
                unique: cell(&row, 2) == "0",
            });
        }
    }
    sort(&mut catalog);
    Ok(catalog)
}

fn sort(catalog: &mut Catalog) {
    for t in catalog.tables.values_mut() {
        t.uniques.sort_by(|a, b| a.columns.cmp(&b.columns));
        t.foreign_keys.sort_by(|a, b| a.columns.cmp(&b.columns));
        t.indexes
            .sort_by(|a, b| (&a.columns, a.unique, &a.name).cmp(&(&b.columns, b.unique, &b.name)));
    }
}

/// Staging's character set and collation, to create a scratch database like it:
/// PostgreSQL (encoding, LC_COLLATE, LC_CTYPE); MySQL (character set, collation, "") of most tables.
pub fn charset(session: &mut Session) -> Result<(String, String, String), DbError> {
    let sql = match session.vendor() {
        Vendor::Postgres => {
            "SELECT pg_encoding_to_char(encoding)::text, datcollate::text, datctype::text \
             FROM pg_database WHERE datname = current_database()"
        }
        // The collation most of staging's tables have (a copy keeps each table's, while the
        // database default may be the server's), else the database default.
        _ => {
            "SELECT c.CHARACTER_SET_NAME, c.COLLATION_NAME, '' FROM ( \
               SELECT TABLE_COLLATION AS coll, COUNT(*) AS n FROM information_schema.TABLES \
               WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' GROUP BY TABLE_COLLATION \
               UNION ALL SELECT DEFAULT_COLLATION_NAME, 0 FROM information_schema.SCHEMATA \
               WHERE SCHEMA_NAME = DATABASE()) t \
             JOIN information_schema.COLLATIONS c ON c.COLLATION_NAME = t.coll \
             ORDER BY t.n DESC LIMIT 1"
        }
    };
    let rows = session.query_text(sql)?;
    let row = rows.first().cloned().unwrap_or_default();
    Ok((cell(&row, 0), cell(&row, 1), cell(&row, 2)))
}
