//! One side's state for verification (inventory, per-table digests, counters) and `inspect`.

use std::collections::BTreeMap;
use std::io::BufRead;

use postgres::Client;

use super::tables::{Unit, list_tables, read_counters, units};
use super::{USER_NS, connect_source, identity, quote_lit};
use crate::engine::Pieces;
use crate::progress::{Progress, ProgressEvent};
use crate::report::{CopyDigest, DbState, RowDigest, TableInfo};
use crate::{DbError, DbUrl, Vendor};
use carbon_fs::run_pool;

/// Digest of one table from its COPY stream (binary when every column type is built-in,
/// else text), with the same session settings on both sides.
pub(crate) fn digest_table(
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

pub(crate) fn inventory(c: &mut Client, url: &DbUrl) -> Result<BTreeMap<String, String>, DbError> {
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

pub(crate) fn begin_read(c: &mut Client, url: &DbUrl) -> Result<(), DbError> {
    c.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .map_err(|e| DbError::sql(url, "starting a read-only transaction", e))
}

/// A read-only session holding a snapshot that worker sessions import.
pub(crate) fn coordinator(url: &DbUrl) -> Result<(Client, String), DbError> {
    let mut c = connect_source(url)?;
    begin_read(&mut c, url)?;
    let snapshot: String = c
        .query_one("SELECT pg_export_snapshot()", &[])
        .map_err(|e| DbError::sql(url, "exporting a snapshot", e))?
        .get(0);
    Ok((c, snapshot))
}

/// A read-only session under an exported snapshot.
pub(crate) fn snapshot_session(url: &DbUrl, snapshot: &str) -> Result<Client, DbError> {
    let mut c = connect_source(url)?;
    begin_read(&mut c, url)?;
    c.batch_execute(&format!("SET TRANSACTION SNAPSHOT {}", quote_lit(snapshot)))
        .map_err(|e| DbError::sql(url, "importing the snapshot", e))?;
    Ok(c)
}

/// Reads one side's full state (inventory, digests, counters) with `jobs` sessions.
pub(crate) fn read_state(
    url: &DbUrl,
    jobs: usize,
    with_digests: bool,
    progress: &dyn Progress,
) -> Result<DbState, DbError> {
    let (mut coord, snapshot) = coordinator(url)?;
    let inventory = inventory(&mut coord, url)?;
    let tables = if with_digests {
        list_tables(&mut coord, url)?
    } else {
        Vec::new()
    };
    let work = units(&tables, jobs);
    let pieces = Pieces::new(work.iter().map(|u| u.name.as_str()));
    run_pool(
        jobs,
        work,
        || snapshot_session(url, &snapshot),
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
    let counters = next_values(&mut coord, url)?;
    let _ = coord.batch_execute("COMMIT");
    Ok(DbState {
        inventory,
        tables: digests,
        counters,
    })
}

/// Every sequence's next value, keyed as verification compares it.
pub(crate) fn next_values(c: &mut Client, url: &DbUrl) -> Result<BTreeMap<String, i128>, DbError> {
    Ok(read_counters(c, url)?
        .into_iter()
        .map(|(name, last, called, inc)| {
            let next = if called {
                i128::from(last) + i128::from(inc)
            } else {
                i128::from(last)
            };
            (format!("sequence {name}"), next)
        })
        .collect())
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
