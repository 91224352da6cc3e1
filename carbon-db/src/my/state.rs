//! One side's state for verification (inventory, digests, counters) and `inspect`.

use std::collections::BTreeMap;
use std::sync::Mutex;

use mysql::Conn;
use mysql::prelude::Queryable;

use super::tables::{columns, list_tables, read_rows, show_create, strip_auto_increment};
use super::{
    cell, cell_s, connect_meta, connect_source, identity, lit, q, start_snapshot, strings,
};
use crate::progress::{Progress, ProgressEvent};
use crate::report::{DbState, TableInfo};
use crate::{DbError, DbUrl, Vendor};
use carbon_fs::run_pool;

pub(crate) fn inventory(
    c: &mut Conn,
    url: &DbUrl,
    db: &str,
) -> Result<BTreeMap<String, String>, DbError> {
    let mut inv = BTreeMap::new();
    let objs = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} ORDER BY 1",
            lit(db)
        ),
        "listing tables",
    )?;
    for r in &objs {
        let (name, ty) = (cell(r, 0), cell(r, 1));
        if ty == "VIEW" {
            let v = show_create(c, url, "VIEW", &name, 1)?;
            inv.insert(format!("view {name}"), cell_s(&v, 1));
        } else {
            let t = show_create(c, url, "TABLE", &name, 1)?;
            inv.insert(
                format!("table {name}"),
                strip_auto_increment(&cell_s(&t, 1)),
            );
        }
    }
    for r in strings(
        c,
        url,
        &format!(
            "SELECT TRIGGER_NAME, CONCAT_WS(' ', ACTION_TIMING, EVENT_MANIPULATION, EVENT_OBJECT_TABLE, ACTION_ORDER, ACTION_STATEMENT) \
             FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = {}",
            lit(db)
        ),
        "listing triggers",
    )? {
        inv.insert(format!("trigger {}", cell(&r, 0)), cell(&r, 1));
    }
    for r in strings(
        c,
        url,
        &format!(
            "SELECT CONCAT(ROUTINE_TYPE, ' ', ROUTINE_NAME), ROUTINE_DEFINITION FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = {}",
            lit(db)
        ),
        "listing routines",
    )? {
        inv.insert(format!("routine {}", cell(&r, 0)), cell(&r, 1));
    }
    Ok(inv)
}

pub(crate) fn counters(
    c: &mut Conn,
    url: &DbUrl,
    db: &str,
) -> Result<BTreeMap<String, i128>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} \
             AND TABLE_TYPE = 'BASE TABLE' AND AUTO_INCREMENT IS NOT NULL",
            lit(db)
        ),
        "reading AUTO_INCREMENT counters",
    )?;
    Ok(rows
        .iter()
        .map(|r| (cell(r, 0), cell(r, 1).parse::<i128>().unwrap_or(0)))
        .collect())
}

pub(crate) fn read_state(
    url: &DbUrl,
    jobs: usize,
    with_digests: bool,
    progress: &dyn Progress,
) -> Result<DbState, DbError> {
    let db = url.database().to_owned();
    let mut meta = connect_meta(url)?;
    let inventory = inventory(&mut meta, url, &db)?;
    let tables = if with_digests {
        list_tables(&mut meta, url, &db)?
    } else {
        Vec::new()
    };
    let cols = columns(&mut meta, url, &db)?;
    let digests = Mutex::new(BTreeMap::new());
    run_pool(
        jobs,
        tables.into_iter().map(|t| t.name).collect(),
        || {
            let mut c = connect_source(url)?;
            start_snapshot(&mut c, url)?;
            Ok(c)
        },
        |c, table| {
            let Some(tc) = cols.get(&table) else {
                return Err(DbError::table(url, &table, "has no readable columns"));
            };
            let d = read_rows(c, url, &table, tc, |_| true)?;
            progress.event(ProgressEvent::TableDone {
                table: &table,
                rows: d.rows,
            });
            digests
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(table, d);
            Ok(())
        },
    )?;
    let counters = counters(&mut meta, url, &db)?
        .into_iter()
        .map(|(t, v)| (format!("auto_increment {t}"), v))
        .collect();
    Ok(DbState {
        inventory,
        tables: digests.into_inner().unwrap_or_else(|p| p.into_inner()),
        counters,
    })
}

pub(crate) fn inspect(url: &DbUrl) -> Result<crate::Inspection, DbError> {
    let mut c = connect_meta(url)?;
    let db = url.database().to_owned();
    let identity = identity(&mut c, url)?;
    let inv = inventory(&mut c, url, &db)?;
    let mut objects = BTreeMap::new();
    for key in inv.keys() {
        let kind = key.split(' ').next().unwrap_or("").to_owned();
        *objects.entry(kind).or_insert(0usize) += 1;
    }
    let mut infos = Vec::new();
    for t in list_tables(&mut c, url, &db)? {
        let n: Option<u64> = c
            .query_first(format!("SELECT COUNT(*) FROM {}", q(&t.name)))
            .map_err(|e| DbError::table(url, &t.name, e))?;
        infos.push(TableInfo {
            table: t.name,
            rows: n.unwrap_or(0),
            bytes: t.bytes,
        });
    }
    let counters = counters(&mut c, url, &db)?.len();
    Ok(crate::Inspection {
        vendor: Vendor::MySql,
        url: url.to_string(),
        identity,
        bytes: infos.iter().map(|t| t.bytes).sum(),
        tables: infos,
        objects,
        counters,
    })
}

/// One table's row digest in the verifier's text form (a read-only session).
pub(crate) fn table_digest(url: &DbUrl, table: &str) -> Result<crate::report::RowDigest, DbError> {
    let mut meta = connect_meta(url)?;
    let cols = columns(&mut meta, url, url.database())?;
    let Some(tc) = cols.get(table) else {
        return Err(DbError::table(url, table, "has no readable columns"));
    };
    let mut c = connect_source(url)?;
    read_rows(&mut c, url, table, tc, |_| true)
}
