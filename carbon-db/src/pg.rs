//! PostgreSQL → PostgreSQL: template fast path, or a logical copy under one exported
//! snapshot (schema by `pg_dump --snapshot`, data COPY→COPY, indexes and constraints after
//! the data, every sequence set to the source's value).

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use postgres::Client;

use crate::journal::{Journal, JournalPlan};
use crate::pool::run_pool;
use crate::progress::{Progress, ProgressEvent};
use crate::report::{CopyDigest, DbState, RowDigest, TableInfo};
use crate::{CopyOptions, CopyReport, DbError, DbUrl, Vendor};

/// Session settings that make text output identical on both sides (pg_dump's, plus UTC and hex).
const SESSION: &str = "SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3; \
    SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET statement_timeout = 0; SET lock_timeout = 0; \
    SET idle_in_transaction_session_timeout = 0; SET row_security = off; SET synchronize_seqscans = off";

const USER_NS: &str = "n.nspname NOT IN ('pg_catalog', 'information_schema') \
    AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'";

pub(crate) fn connect(url: &DbUrl) -> Result<Client, DbError> {
    crate::tls::connect_postgres(url, &url.postgres_config()).map_err(|e| match e {
        crate::tls::ConnectFailure::Setup(e) => e,
        crate::tls::ConnectFailure::Driver(e)
            if e.code() == Some(&postgres::error::SqlState::INVALID_CATALOG_NAME) =>
        {
            DbError::SourceMissing {
                url: url.to_string(),
            }
        }
        crate::tls::ConnectFailure::Driver(e) => DbError::connect(url, e),
    })
}

/// A source session: read-only by default, with the text settings.
pub(crate) fn connect_source(url: &DbUrl) -> Result<Client, DbError> {
    let mut c = connect(url)?;
    c.batch_execute(&format!(
        "SET default_transaction_read_only = on; {SESSION}"
    ))
    .map_err(|e| DbError::sql(url, "source session settings", e))?;
    Ok(c)
}

fn connect_target(url: &DbUrl) -> Result<Client, DbError> {
    let mut c = connect(url)?;
    c.batch_execute(&format!(
        "{SESSION}; SET synchronous_commit = off; SET maintenance_work_mem = '256MB'"
    ))
    .map_err(|e| DbError::sql(url, "target session settings", e))?;
    Ok(c)
}

fn maintenance(url: &DbUrl) -> Result<Client, DbError> {
    let admin = url.with_database("postgres");
    match connect(&admin) {
        Ok(c) => Ok(c),
        Err(_) => connect(&url.with_database("template1")).map_err(|e| match e {
            // Name the database the operator gave, not the maintenance one.
            DbError::Connect { detail, .. } => DbError::Connect {
                url: url.to_string(),
                detail,
            },
            other => other,
        }),
    }
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_lit(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// `pg:<system identifier>:<database oid>:<name>`: no address, no credential.
pub(crate) fn identity(c: &mut Client, url: &DbUrl) -> Result<String, DbError> {
    let row = c
        .query_one(
            "SELECT (SELECT system_identifier::text FROM pg_control_system()), oid::int8, current_database()::text \
             FROM pg_database WHERE datname = current_database()",
            &[],
        )
        .map_err(|e| DbError::sql(url, "reading the server identity", e))?;
    let sysid: Option<String> = row.get(0);
    let oid: i64 = row.get(1);
    let name: String = row.get(2);
    Ok(format!("pg:{}:{oid}:{name}", sysid.unwrap_or_default()))
}

fn database_exists(admin: &mut Client, url: &DbUrl, name: &str) -> Result<bool, DbError> {
    let n: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&name],
        )
        .map_err(|e| DbError::sql(url, "listing databases", e))?
        .get(0);
    Ok(n > 0)
}

struct Table {
    name: String,
    bytes: i64,
    /// Every column has a built-in type (no user-defined type or array of one, whose
    /// binary form embeds database-specific OIDs): COPY can use the binary format.
    binary: bool,
    /// Heap pages, for splitting a big table into ctid ranges.
    pages: i64,
    /// Quoted names of the stored (non-generated) columns, in order.
    columns: String,
}

/// A piece of work: a whole table, or one ctid range of a big one.
#[derive(Debug, Clone)]
struct Unit {
    name: String,
    binary: bool,
    columns: String,
    /// Heap pages [start, end); `None` end means to the last page.
    range: Option<(i64, Option<i64>)>,
}

/// Tables at least this big are split into ctid ranges, so that several sessions share them.
const SPLIT_BYTES: i64 = 64 << 20;

impl Unit {
    fn format(&self) -> &'static str {
        if self.binary { "binary" } else { "text" }
    }

    fn column_list(&self) -> String {
        if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns)
        }
    }

    /// The same tuples whether whole or in ranges: explicit stored columns either way.
    fn copy_out_sql(&self) -> String {
        let (name, format) = (&self.name, self.format());
        match self.range {
            None => format!(
                "COPY {name}{} TO STDOUT WITH (FORMAT {format})",
                self.column_list()
            ),
            Some((start, end)) => {
                let upper = end.map_or(String::new(), |e| format!(" AND ctid < '({e},0)'::tid"));
                format!(
                    "COPY (SELECT {} FROM ONLY {name} WHERE ctid >= '({start},0)'::tid{upper}) TO STDOUT WITH (FORMAT {format})",
                    self.columns
                )
            }
        }
    }

    fn copy_in_sql(&self) -> String {
        // FREEZE needs the table truncated in the same transaction: whole tables only.
        let freeze = if self.range.is_none() { ", FREEZE" } else { "" };
        format!(
            "COPY {}{} FROM STDIN WITH (FORMAT {}{freeze})",
            self.name,
            self.column_list(),
            self.format()
        )
    }
}

/// Per-table accumulation of the digests of its units; a table is done with its last unit.
struct Pieces {
    state: Mutex<BTreeMap<String, (usize, RowDigest)>>,
}

impl Pieces {
    fn new(work: &[Unit]) -> Pieces {
        let mut state: BTreeMap<String, (usize, RowDigest)> = BTreeMap::new();
        for u in work {
            state.entry(u.name.clone()).or_default().0 += 1;
        }
        Pieces {
            state: Mutex::new(state),
        }
    }

    /// Adds a unit's digest; returns the table's total when this was its last unit.
    fn done(&self, table: &str, d: RowDigest) -> Option<RowDigest> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = state.get_mut(table)?;
        entry.0 -= 1;
        entry.1.merge(d);
        (entry.0 == 0).then_some(entry.1)
    }

    fn into_totals(self) -> BTreeMap<String, RowDigest> {
        self.state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|(k, (_, d))| (k, d))
            .collect()
    }
}

/// Whole tables, and big ones cut into `2 × jobs` ctid ranges; largest first.
fn units(tables: &[Table], jobs: usize) -> Vec<Unit> {
    // CARBON_DB_SPLIT_BYTES lowers the threshold (tests exercise splitting on small tables).
    let split = std::env::var("CARBON_DB_SPLIT_BYTES")
        .ok()
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(SPLIT_BYTES);
    let mut out = Vec::new();
    for t in tables {
        let min_pages = if split < SPLIT_BYTES { 2 } else { 16 };
        let pieces = if jobs > 1 && t.bytes >= split && t.pages >= min_pages {
            (jobs * 2) as i64
        } else {
            1
        };
        let base = Unit {
            name: t.name.clone(),
            binary: t.binary,
            columns: t.columns.clone(),
            range: None,
        };
        if pieces == 1 {
            out.push(base);
            continue;
        }
        let step = t.pages / pieces + 1;
        for i in 0..pieces {
            let end = if i == pieces - 1 {
                None
            } else {
                Some((i + 1) * step)
            };
            out.push(Unit {
                range: Some((i * step, end)),
                ..base.clone()
            });
        }
    }
    out
}

fn list_tables(c: &mut Client, url: &DbUrl) -> Result<Vec<Table>, DbError> {
    let rows = c
        .query(
            &format!(
                "SELECT format('%I.%I', n.nspname, c.relname), pg_total_relation_size(c.oid),
                        coalesce((SELECT bool_and(a.atttypid < 16384 AND (t.typelem = 0 OR t.typelem < 16384))
                                  FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
                                  WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), true),
                        (pg_relation_size(c.oid) / current_setting('block_size')::int)::int8,
                        coalesce((SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
                                  FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0
                                    AND NOT a.attisdropped AND a.attgenerated = ''), '')
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relkind = 'r' AND {USER_NS}
                   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                                   AND d.objid = c.oid AND d.deptype = 'e')
                 ORDER BY 2 DESC, 1"
            ),
            &[],
        )
        .map_err(|e| DbError::sql(url, "listing tables", e))?;
    Ok(rows
        .iter()
        .map(|r| Table {
            name: r.get(0),
            bytes: r.get(1),
            binary: r.get(2),
            pages: r.get(3),
            columns: r.get(4),
        })
        .collect())
}

/// (name, next value) of every sequence: owned, identity and standalone alike.
fn read_counters(c: &mut Client, url: &DbUrl) -> Result<Vec<(String, i64, bool, i64)>, DbError> {
    let seqs = c
        .query(
            &format!(
                "SELECT format('%I.%I', n.nspname, c.relname), s.seqincrement
                 FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid
                 JOIN pg_namespace n ON n.oid = c.relnamespace WHERE {USER_NS} ORDER BY 1"
            ),
            &[],
        )
        .map_err(|e| DbError::sql(url, "listing sequences", e))?;
    let mut out = Vec::new();
    for chunk in seqs.chunks(200) {
        let sql = chunk
            .iter()
            .map(|r| {
                let name: String = r.get(0);
                format!(
                    "SELECT {} AS name, last_value, is_called FROM {name}",
                    quote_lit(&name)
                )
            })
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let rows = c
            .query(&sql, &[])
            .map_err(|e| DbError::sql(url, "reading sequence values", e))?;
        for (row, seq) in rows.iter().zip(chunk) {
            out.push((row.get(0), row.get(1), row.get(2), seq.get(1)));
        }
    }
    Ok(out)
}

fn pg_dump_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CARBON_PG_DUMP") {
        return PathBuf::from(p);
    }
    // The newest installed client: pg_dump must be at least the server's major version.
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(dir) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in dir.flatten() {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok();
            let bin = entry.path().join("bin/pg_dump");
            if let Some(v) = version.filter(|_| bin.exists())
                && best.as_ref().is_none_or(|(b, _)| v > *b)
            {
                best = Some((v, bin));
            }
        }
    }
    best.map_or_else(|| PathBuf::from("pg_dump"), |(_, p)| p)
}

/// Runs pg_dump for one section under the exported snapshot and returns the SQL without
/// psql meta-commands (`\restrict`, `\connect`).
fn pg_dump_section(url: &DbUrl, section: &str, snapshot: &str) -> Result<String, DbError> {
    let tool = pg_dump_binary();
    let mut cmd = Command::new(&tool);
    cmd.args([
        "--schema-only",
        "--no-owner",
        "--no-privileges",
        "--no-publications",
        "--no-subscriptions",
    ])
    .arg(format!("--section={section}"))
    .arg(format!("--snapshot={snapshot}"))
    .arg("--host")
    .arg(url.host())
    .arg("--port")
    .arg(url.port().to_string())
    .arg("--username")
    .arg(url.user().unwrap_or("postgres"))
    .arg("--dbname")
    .arg(url.database())
    .env("PGAPPNAME", "carbon-upgrade")
    .env("PGCONNECT_TIMEOUT", "10")
    .envs(crate::tls::libpq_env(url))
    .env_remove("PGPASSWORD");
    if let Some(pw) = url.password() {
        cmd.env("PGPASSWORD", pw);
    } else {
        cmd.arg("--no-password");
    }
    let out = cmd.output().map_err(|e| DbError::Tool {
        tool: tool.display().to_string(),
        url: url.to_string(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(DbError::Tool {
            tool: format!("pg_dump --section={section}"),
            url: url.to_string(),
            detail: crate::error::one_line(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// A post-data script split at pg_dump's TOC comments: (type, SQL).
fn split_post_data(script: &str) -> (String, Vec<(String, String)>) {
    let mut preamble = String::new();
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("-- Name: ") {
            let kind = rest
                .split("; Type: ")
                .nth(1)
                .and_then(|t| t.split(';').next())
                .unwrap_or("")
                .to_owned();
            blocks.push((kind, String::new()));
            continue;
        }
        if line.starts_with("--") {
            continue;
        }
        match blocks.last_mut() {
            Some((_, sql)) => {
                sql.push_str(line);
                sql.push('\n');
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    blocks.retain(|(_, sql)| !sql.trim().is_empty());
    (preamble, blocks)
}

/// Copies one table: TRUNCATE + COPY FREEZE in one target transaction, rows piped from the
/// source's COPY without decoding (binary format when every column type is built-in).
/// Returns rows and bytes.
fn copy_table(
    src: &mut Client,
    dst: &mut Client,
    from: &DbUrl,
    to: &DbUrl,
    table: &Unit,
    progress: &dyn Progress,
) -> Result<(RowDigest, u64), DbError> {
    let name = table.name.as_str();
    let mut tx = dst.transaction().map_err(|e| DbError::table(to, name, e))?;
    if table.range.is_none() {
        tx.batch_execute(&format!("TRUNCATE {name}"))
            .map_err(|e| DbError::table(to, name, e))?;
    }
    let mut writer = tx
        .copy_in(&table.copy_in_sql())
        .map_err(|e| DbError::table(to, name, e))?;
    let mut reader = src
        .copy_out(&table.copy_out_sql())
        .map_err(|e| DbError::table(from, name, e))?;
    let mut bytes = 0u64;
    let mut pending = 0u64;
    let mut digest = CopyDigest::new(table.binary);
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| DbError::table(from, name, e))?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        digest.feed(buf);
        writer
            .write_all(buf)
            .map_err(|e| DbError::table(to, name, e))?;
        reader.consume(n);
        bytes += n as u64;
        pending += n as u64;
        if pending >= 1 << 20 {
            progress.event(ProgressEvent::Rows {
                rows: 0,
                bytes: pending,
            });
            pending = 0;
        }
    }
    drop(reader);
    let rows = writer.finish().map_err(|e| DbError::table(to, name, e))?;
    if rows != digest.digest.rows {
        return Err(DbError::table(
            to,
            name,
            format!(
                "source sent {} rows but the target loaded {rows}",
                digest.digest.rows
            ),
        ));
    }
    tx.commit().map_err(|e| DbError::table(to, name, e))?;
    progress.event(ProgressEvent::Rows {
        rows,
        bytes: pending,
    });
    Ok((digest.digest, bytes))
}

/// Digest of one table from its COPY stream (binary when every column type is built-in,
/// else text), with the same session settings on both sides.
fn digest_table(
    c: &mut Client,
    url: &DbUrl,
    table: &Unit,
    progress: &dyn Progress,
) -> Result<RowDigest, DbError> {
    let name = table.name.as_str();
    let mut reader = c
        .copy_out(&table.copy_out_sql())
        .map_err(|e| DbError::table(url, name, e))?;
    let mut digest = CopyDigest::new(table.binary);
    let mut pending = 0u64;
    loop {
        let buf = reader
            .fill_buf()
            .map_err(|e| DbError::table(url, name, e))?;
        if buf.is_empty() {
            break;
        }
        let n = buf.len();
        digest.feed(buf);
        reader.consume(n);
        pending += n as u64;
        if pending >= 4 << 20 {
            progress.event(ProgressEvent::Rows {
                rows: 0,
                bytes: pending,
            });
            pending = 0;
        }
    }
    Ok(digest.digest)
}

fn inventory(c: &mut Client, url: &DbUrl) -> Result<BTreeMap<String, String>, DbError> {
    let sql = format!(
        "SELECT 'relation ' || format('%I.%I', n.nspname, c.relname), c.relkind::text || c.relpersistence::text
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('r','p','v','m','S','f') AND {USER_NS}
         UNION ALL
         SELECT 'column ' || format('%I.%I.%I', n.nspname, c.relname, a.attname),
                format_type(a.atttypid, a.atttypmod)
                || CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
                || coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
                || CASE a.attidentity WHEN 'a' THEN ' IDENTITY ALWAYS' WHEN 'd' THEN ' IDENTITY BY DEFAULT' ELSE '' END
                || CASE a.attgenerated WHEN 's' THEN ' GENERATED STORED' ELSE '' END
                || coalesce(' COLLATE ' || co.collname, '')
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
           LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
           LEFT JOIN pg_collation co ON co.oid = a.attcollation AND a.attcollation <> 100
          WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r','p','v','m','f') AND {USER_NS}
         UNION ALL
         SELECT 'index ' || format('%I.%I', n.nspname, ic.relname), pg_get_indexdef(i.indexrelid)
           FROM pg_index i JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace
          WHERE {USER_NS}
         UNION ALL
         SELECT 'constraint ' || format('%I.%I.%I', n.nspname, c.relname, k.conname), pg_get_constraintdef(k.oid)
           FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS}
         UNION ALL
         SELECT 'sequence ' || format('%I.%I', n.nspname, c.relname),
                format('%s start %s increment %s min %s max %s cycle %s', format_type(s.seqtypid, NULL),
                       s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcycle)
           FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE {USER_NS}
         UNION ALL
         SELECT 'view ' || format('%I.%I', n.nspname, c.relname), pg_get_viewdef(c.oid)
           FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE c.relkind IN ('v','m') AND {USER_NS}
         UNION ALL
         SELECT 'trigger ' || format('%I.%I.%I', n.nspname, c.relname, t.tgname), pg_get_triggerdef(t.oid)
           FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE NOT t.tgisinternal AND {USER_NS}
         UNION ALL
         SELECT 'function ' || format('%I.%I(%s)', n.nspname, p.proname, pg_get_function_identity_arguments(p.oid)),
                md5(coalesce(p.prosrc, '')) || ' ' || pg_get_function_result(p.oid)
           FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
          WHERE {USER_NS} AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                                          AND d.objid = p.oid AND d.deptype = 'e')
         UNION ALL
         SELECT 'extension ' || e.extname, e.extversion FROM pg_extension e WHERE e.extname <> 'plpgsql'"
    );
    let rows = c
        .query(&sql, &[])
        .map_err(|e| DbError::sql(url, "reading the catalog", e))?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                r.get::<_, Option<String>>(1).unwrap_or_default(),
            )
        })
        .collect())
}

fn begin_read(c: &mut Client, url: &DbUrl) -> Result<(), DbError> {
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(|e| DbError::sql(url, "starting a read-only transaction", e))
}

/// Reads one side's full state (inventory, digests, counters) with `jobs` sessions.
pub(crate) fn read_state(
    url: &DbUrl,
    jobs: usize,
    with_digests: bool,
    progress: &dyn Progress,
) -> Result<DbState, DbError> {
    let mut coord = connect_source(url)?;
    begin_read(&mut coord, url)?;
    let snapshot: String = coord
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| DbError::sql(url, "exporting a snapshot", e))?
        .get(0);
    let inventory = inventory(&mut coord, url)?;
    let tables = if with_digests {
        list_tables(&mut coord, url)?
    } else {
        Vec::new()
    };
    let work = units(&tables, jobs);
    let pieces = Pieces::new(&work);
    run_pool(
        jobs,
        work,
        || {
            let mut c = connect_source(url)?;
            begin_read(&mut c, url)?;
            c.batch_execute(&format!(
                "SET TRANSACTION SNAPSHOT {}",
                quote_lit(&snapshot)
            ))
            .map_err(|e| DbError::sql(url, "importing the snapshot", e))?;
            Ok(c)
        },
        |c, unit| {
            let d = digest_table(c, url, &unit, progress)?;
            if let Some(total) = pieces.done(&unit.name, d) {
                progress.event(ProgressEvent::TableDone {
                    table: &unit.name,
                    rows: total.rows,
                });
            }
            Ok(())
        },
    )?;
    let digests = pieces.into_totals();
    let counters = read_counters(&mut coord, url)?
        .into_iter()
        .map(|(name, last, called, inc)| {
            let next = if called {
                i128::from(last) + i128::from(inc)
            } else {
                i128::from(last)
            };
            (format!("sequence {name}"), next)
        })
        .collect();
    let _ = coord.batch_execute("COMMIT");
    Ok(DbState {
        inventory,
        tables: digests,
        counters,
    })
}

/// The whole copy. The caller has checked vendors and that the target is not the source.
pub(crate) fn copy(
    from: &DbUrl,
    to: &DbUrl,
    opts: &CopyOptions,
    progress: &dyn Progress,
) -> Result<CopyReport, DbError> {
    let started = Instant::now();
    let mut report = CopyReport::new(Vendor::Postgres, from, to, "logical");
    // Fast path first, without ever connecting to the source (a session there, even one
    // just closed, makes CREATE DATABASE … TEMPLATE wait or refuse).
    let mut admin = maintenance(to)?;
    let target_exists = database_exists(&mut admin, to, to.database())?;
    if !target_exists && !opts.logical && from.same_server(to) {
        if !database_exists(&mut admin, from, from.database())? {
            return Err(DbError::SourceMissing {
                url: from.to_string(),
            });
        }
        progress.event(ProgressEvent::Phase("template copy"));
        let others: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&from.database()],
            )
            .map_err(|e| DbError::sql(to, "checking sessions on the source", e))?
            .get(0);
        if others == 0 {
            let sql = format!(
                "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
                quote_ident(to.database()),
                quote_ident(from.database())
            );
            match admin.batch_execute(&sql) {
                Ok(()) => {
                    report.method = "template".into();
                    report.copy_ms = started.elapsed().as_millis() as u64;
                    let mut t = connect_source(to)?;
                    let tables = list_tables(&mut t, to)?;
                    report.tables = tables.len();
                    report.bytes = tables.iter().map(|t| t.bytes.max(0) as u64).sum();
                    report.counters = read_counters(&mut t, to)?.len();
                    return Ok(report);
                }
                Err(e) => report.warnings.push(format!(
                    "template copy refused ({}); streaming instead",
                    crate::error::ErrText::text(&e)
                )),
            }
        } else {
            report.warnings.push(format!(
                "{others} other session(s) on the source: streaming instead of a template copy"
            ));
        }
    }

    // Does the source exist, and what is it?
    let mut src = connect_source(from)?;
    let source_id = identity(&mut src, from)?;
    let lo: i64 = src
        .query_one("SELECT count(*) FROM pg_largeobject_metadata", &[])
        .map_err(|e| DbError::sql(from, "counting large objects", e))?
        .get(0);
    if lo > 0 {
        return Err(DbError::Unsupported {
            url: from.to_string(),
            reason: format!("{lo} large objects (pg_largeobject) cannot be copied by this tool"),
        });
    }

    if !target_exists {
        let row = src
            .query_one(
                "SELECT pg_encoding_to_char(encoding), datcollate, datctype FROM pg_database WHERE datname = current_database()",
                &[],
            )
            .map_err(|e| DbError::sql(from, "reading the database encoding", e))?;
        let (enc, coll, ctype): (String, String, String) = (row.get(0), row.get(1), row.get(2));
        admin
            .batch_execute(&format!(
                "CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}",
                quote_ident(to.database()),
                quote_lit(&enc),
                quote_lit(&coll),
                quote_lit(&ctype)
            ))
            .map_err(|e| DbError::sql(to, "creating the target database", e))?;
    }
    drop(admin);
    let mut dst = connect_target(to)?;
    let target_id = identity(&mut dst, to)?;
    let empty = crate::contents::of_postgres(&mut dst, to).and_then(|c| c.require_empty());
    let JournalPlan {
        mut journal,
        previous,
        resumed,
    } = JournalPlan::decide(
        opts.journal.as_deref(),
        Vendor::Postgres,
        &source_id,
        &target_id,
        empty,
    )?;
    report.resumed = resumed;
    report.snapshot_consistent = !resumed;

    // One snapshot for everything: pg_dump and all workers import it.
    begin_read(&mut src, from)?;
    let snapshot: String = src
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| DbError::sql(from, "exporting a snapshot", e))?
        .get(0);

    progress.event(ProgressEvent::Phase("schema"));
    // Both sections at once: two pg_dump processes under the same snapshot.
    let (pre, post_data) = std::thread::scope(|scope| {
        let pre = scope.spawn(|| pg_dump_section(from, "pre-data", &snapshot));
        let post = pg_dump_section(from, "post-data", &snapshot);
        (pre.join().unwrap_or(Err(DbError::Aborted)), post)
    });
    let post_data = post_data?;
    if !previous.steps.contains("pre-data") {
        let pre = pre?;
        dst.batch_execute(&pre)
            .map_err(|e| DbError::sql(to, "creating the schema (pg_dump pre-data)", e))?;
        // Keep the target session's settings after the dump's SETs.
        dst.batch_execute(&format!(
            "RESET ALL; {SESSION}; SET synchronous_commit = off"
        ))
        .map_err(|e| DbError::sql(to, "target session settings", e))?;
        journal.step_done("pre-data")?;
    }

    let tables = list_tables(&mut src, from)?;
    report.tables = tables.len();
    let todo: Vec<Table> = tables
        .into_iter()
        .filter(|t| !previous.tables.contains_key(&t.name))
        .collect();
    progress.event(ProgressEvent::Phase("data"));
    progress.event(ProgressEvent::Planned {
        tables: todo.len(),
        bytes: todo.iter().map(|t| t.bytes.max(0) as u64).sum(),
    });
    let work = units(&todo, opts.jobs);
    // A split table is loaded by several sessions, so nothing can TRUNCATE it in the same
    // transaction: on a resumed run, empty it first (a fresh target is empty already).
    if resumed {
        let mut split: Vec<&str> = work
            .iter()
            .filter(|u| u.range.is_some())
            .map(|u| u.name.as_str())
            .collect();
        split.dedup();
        for name in split {
            dst.batch_execute(&format!("TRUNCATE {name}"))
                .map_err(|e| DbError::table(to, name, e))?;
        }
    }
    drop(dst);
    let pieces = Pieces::new(&work);
    let journal_m = Mutex::new(&mut journal);
    let bytes_total = Mutex::new(0u64);
    run_pool(
        opts.jobs,
        work,
        || {
            let mut s = connect_source(from)?;
            begin_read(&mut s, from)?;
            s.batch_execute(&format!(
                "SET TRANSACTION SNAPSHOT {}",
                quote_lit(&snapshot)
            ))
            .map_err(|e| DbError::sql(from, "importing the snapshot", e))?;
            let d = connect_target(to)?;
            Ok((s, d))
        },
        |(s, d), unit| {
            let (digest, bytes) = copy_table(s, d, from, to, &unit, progress)?;
            *bytes_total.lock().unwrap_or_else(|p| p.into_inner()) += bytes;
            if let Some(total) = pieces.done(&unit.name, digest) {
                progress.event(ProgressEvent::TableDone {
                    table: &unit.name,
                    rows: total.rows,
                });
                journal_m
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .table_done(&unit.name, total.rows)?;
            }
            Ok(())
        },
    )?;
    let streamed = pieces.into_totals();
    report.rows =
        streamed.values().map(|d| d.rows).sum::<u64>() + previous.tables.values().sum::<u64>();
    report.bytes = bytes_total.into_inner().unwrap_or_else(|p| p.into_inner());
    // Tables copied by an earlier run were read under another snapshot: no stream digest.
    if !resumed {
        report.stream_digests = Some(streamed);
    }

    // Indexes and constraints after the data: parallel, then FKs, then the rest.
    progress.event(ProgressEvent::Phase("indexes"));
    apply_post_data(to, &post_data, opts.jobs, &previous.steps, &mut journal)?;

    // Sequences last: they are not transactional, read them after the data.
    progress.event(ProgressEvent::Phase("sequences"));
    let _ = src.batch_execute("COMMIT");
    let counters = read_counters(&mut src, from)?;
    report.counters = counters.len();
    if !counters.is_empty() {
        let sql = counters
            .iter()
            .map(|(name, last, called, _)| {
                format!(
                    "SELECT pg_catalog.setval({}, {last}, {called});",
                    quote_lit(name)
                )
            })
            .collect::<String>();
        let mut dst = connect_target(to)?;
        dst.batch_execute(&sql)
            .map_err(|e| DbError::sql(to, "setting sequences", e))?;
    }
    journal.step_done("done")?;
    report.copy_ms = started.elapsed().as_millis() as u64;
    Ok(report)
}

fn apply_post_data(
    to: &DbUrl,
    script: &str,
    jobs: usize,
    done: &std::collections::BTreeSet<String>,
    journal: &mut Journal,
) -> Result<(), DbError> {
    let (preamble, blocks) = split_post_data(script);
    let resumed = !done.is_empty();
    let key = |i: usize| format!("post-data {i}");
    let exec = |c: &mut Client, sql: &str, what: &str| -> Result<(), DbError> {
        match c.batch_execute(sql) {
            Ok(()) => Ok(()),
            // Done before a crash but not journalled: already there is fine on resume.
            Err(e)
                if resumed
                    && matches!(
                        e.code(),
                        Some(c) if *c == postgres::error::SqlState::DUPLICATE_TABLE
                            || *c == postgres::error::SqlState::DUPLICATE_OBJECT
                            || *c == postgres::error::SqlState::INVALID_TABLE_DEFINITION
                    ) =>
            {
                Ok(())
            }
            Err(e) => Err(DbError::sql(to, format!("post-data {what}"), e)),
        }
    };
    let journal_m = Mutex::new(journal);
    let phase = |kinds: &dyn Fn(&str) -> bool, parallel: bool| -> Result<(), DbError> {
        let items: Vec<usize> = blocks
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| kinds(k) && !done.contains(&key(*i)))
            .map(|(i, _)| i)
            .collect();
        run_pool(
            if parallel { jobs } else { 1 },
            items,
            || {
                let mut c = connect_target(to)?;
                c.batch_execute(&preamble)
                    .map_err(|e| DbError::sql(to, "post-data settings", e))?;
                Ok(c)
            },
            |c, i| {
                let (kind, sql) = &blocks[i];
                exec(c, sql, kind)?;
                journal_m
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .step_done(&key(i))
            },
        )
    };
    phase(&|k| k == "INDEX" || k == "CONSTRAINT", true)?;
    phase(&|k| k == "FK CONSTRAINT", false)?;
    phase(
        &|k| !matches!(k, "INDEX" | "CONSTRAINT" | "FK CONSTRAINT"),
        false,
    )?;
    Ok(())
}

pub(crate) fn inspect(url: &DbUrl) -> Result<crate::Inspection, DbError> {
    let mut c = connect_source(url)?;
    let identity = identity(&mut c, url)?;
    let inv = inventory(&mut c, url)?;
    let mut objects = BTreeMap::new();
    for key in inv.keys() {
        let kind = key.split(' ').next().unwrap_or("").to_owned();
        *objects.entry(kind).or_insert(0usize) += 1;
    }
    let tables = list_tables(&mut c, url)?;
    let mut infos = Vec::new();
    for t in &tables {
        let n: i64 = c
            .query_one(&format!("SELECT count(*) FROM {}", t.name), &[])
            .map_err(|e| DbError::table(url, &t.name, e))?
            .get(0);
        infos.push(TableInfo {
            table: t.name.clone(),
            rows: n.max(0) as u64,
            bytes: t.bytes.max(0) as u64,
        });
    }
    let counters = read_counters(&mut c, url)?.len();
    Ok(crate::Inspection {
        vendor: Vendor::Postgres,
        url: url.to_string(),
        identity,
        bytes: infos.iter().map(|t| t.bytes).sum(),
        tables: infos,
        objects,
        counters,
    })
}
