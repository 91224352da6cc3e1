//! The source's tables and columns, and streaming one table through `LOAD DATA LOCAL INFILE`.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::mpsc::sync_channel;

use mysql::prelude::Queryable;
use mysql::{Conn, LocalInfileHandler, Value};

use super::{cell, lit, q, strings};
use crate::progress::{Progress, ProgressEvent};
use crate::report::RowDigest;
use crate::{DbError, DbUrl};

pub(super) struct Table {
    pub(super) name: String,
    pub(super) bytes: u64,
}

impl crate::engine::Piece for Table {
    fn table(&self) -> &str {
        &self.name
    }
}

pub(super) fn list_tables(c: &mut Conn, url: &DbUrl, db: &str) -> Result<Vec<Table>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0) FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = {} AND TABLE_TYPE = 'BASE TABLE' ORDER BY 2 DESC, 1",
            lit(db)
        ),
        "listing tables",
    )?;
    Ok(rows
        .iter()
        .map(|r| Table {
            name: cell(r, 0),
            bytes: cell(r, 1).parse().unwrap_or(0),
        })
        .collect())
}

/// Column list of a table for reading (non-generated; BIT as a number) and for loading.
pub(super) struct Columns {
    pub(super) select: Vec<String>,
    pub(super) load: Vec<String>,
    pub(super) set: Vec<String>,
}

pub(super) fn columns(
    c: &mut Conn,
    url: &DbUrl,
    db: &str,
) -> Result<BTreeMap<String, Columns>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, COLUMN_NAME, DATA_TYPE, EXTRA FROM information_schema.COLUMNS \
             WHERE TABLE_SCHEMA = {} ORDER BY TABLE_NAME, ORDINAL_POSITION",
            lit(db)
        ),
        "listing columns",
    )?;
    let mut out: BTreeMap<String, Columns> = BTreeMap::new();
    for r in &rows {
        let (table, col, ty, extra) = (
            cell(r, 0),
            cell(r, 1),
            cell(r, 2),
            cell(r, 3).to_ascii_uppercase(),
        );
        if extra.contains("VIRTUAL") || extra.contains("STORED") || extra.contains("PERSISTENT") {
            continue;
        }
        let entry = out.entry(table).or_insert(Columns {
            select: Vec::new(),
            load: Vec::new(),
            set: Vec::new(),
        });
        if ty.eq_ignore_ascii_case("bit") {
            let var = format!("@c{}", entry.load.len());
            entry.select.push(format!("{}+0", q(&col)));
            entry
                .set
                .push(format!("{} = CAST({var} AS UNSIGNED)", q(&col)));
            entry.load.push(var);
        } else {
            entry.select.push(q(&col));
            entry.load.push(q(&col));
        }
    }
    Ok(out)
}

/// One row in LOAD DATA's default text form (tab-separated, `\N` for NULL, escapes).
pub(super) fn encode_row(values: &[Value], out: &mut Vec<u8>) {
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match v {
            Value::NULL => out.extend_from_slice(b"\\N"),
            Value::Bytes(b) => escape_into(b, out),
            other => out.extend_from_slice(other.as_sql(true).trim_matches('\'').as_bytes()),
        }
    }
}

/// The escape LOAD DATA reads back for a byte, 0 for a byte written as is.
const ESCAPE: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'\\' as usize] = b'\\';
    t[b'\t' as usize] = b't';
    t[b'\n' as usize] = b'n';
    t[0] = b'0';
    t
};

/// Appends `bytes` escaped: runs without a special byte are copied whole (byte-at-a-time
/// pushes were 40% of the copy's client CPU).
fn escape_into(bytes: &[u8], out: &mut Vec<u8>) {
    out.reserve(bytes.len());
    let mut run = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        let esc = ESCAPE[byte as usize];
        if esc != 0 {
            out.extend_from_slice(&bytes[run..i]);
            out.extend_from_slice(&[b'\\', esc]);
            run = i + 1;
        }
    }
    out.extend_from_slice(&bytes[run..]);
}

/// Streams a table's rows in the shared text form into `sink` (one buffer per ~256 KiB).
pub(super) fn read_rows(
    c: &mut Conn,
    url: &DbUrl,
    table: &str,
    cols: &Columns,
    mut sink: impl FnMut(Vec<u8>) -> bool,
) -> Result<RowDigest, DbError> {
    let sql = format!("SELECT {} FROM {}", cols.select.join(", "), q(table));
    let result = c
        .query_iter(sql)
        .map_err(|e| DbError::table(url, table, e))?;
    let mut digest = RowDigest::default();
    let mut buf = Vec::with_capacity(300 << 10);
    for row in result {
        let row = row.map_err(|e| DbError::table(url, table, e))?;
        let values = mysql::Row::unwrap(row); // the row's values; cannot fail
        let start = buf.len();
        encode_row(&values, &mut buf);
        digest.add_row(&buf[start..]);
        buf.push(b'\n');
        if buf.len() >= 256 << 10
            && !sink(std::mem::replace(&mut buf, Vec::with_capacity(300 << 10)))
        {
            return Err(DbError::Aborted);
        }
    }
    if !buf.is_empty() && !sink(buf) {
        return Err(DbError::Aborted);
    }
    Ok(digest)
}

#[allow(clippy::too_many_arguments)]
pub(super) fn copy_table(
    src: &mut Conn,
    dst: &mut Conn,
    from: &DbUrl,
    to: &DbUrl,
    table: &str,
    cols: &Columns,
    resumed: bool,
    progress: &dyn Progress,
) -> Result<(RowDigest, u64), DbError> {
    let (tx, rx) = sync_channel::<Vec<u8>>(8);
    dst.query_drop("START TRANSACTION")
        .map_err(|e| DbError::table(to, table, e))?;
    // Rows left by an interrupted run go in the same transaction as the reload (a fresh
    // target is known empty: no DELETE).
    if resumed {
        dst.query_drop(format!("DELETE FROM {}", q(table)))
            .map_err(|e| DbError::table(to, table, e))?;
    }
    let mut load_sql = format!(
        "LOAD DATA LOCAL INFILE 'carbon-copy' INTO TABLE {} CHARACTER SET binary ({})",
        q(table),
        cols.load.join(", ")
    );
    if !cols.set.is_empty() {
        load_sql.push_str(" SET ");
        load_sql.push_str(&cols.set.join(", "));
    }
    let (produced, loaded) = std::thread::scope(|scope| {
        let producer = scope.spawn(move || {
            let mut bytes = 0u64;
            let d = read_rows(src, from, table, cols, |chunk| {
                bytes += chunk.len() as u64;
                progress.event(ProgressEvent::Rows {
                    rows: chunk.iter().filter(|&&b| b == b'\n').count() as u64,
                    bytes: chunk.len() as u64,
                });
                tx.send(chunk).is_ok()
            });
            d.map(|d| (d, bytes))
        });
        dst.set_local_infile_handler(Some(LocalInfileHandler::new(move |_name, w| {
            for chunk in rx.iter() {
                w.write_all(&chunk)?;
            }
            w.flush()
        })));
        let loaded = dst.query_drop(&load_sql).map(|()| {
            (
                dst.affected_rows(),
                dst.warnings(),
                dst.info_str().into_owned(),
            )
        });
        // Dropping the handler drops the receiver, so a blocked producer ends.
        dst.set_local_infile_handler(None);
        let produced = producer
            .join()
            .unwrap_or_else(|_| Err(DbError::table(from, table, "reader thread panicked")));
        (produced, loaded)
    });
    let fail = |dst: &mut Conn, e: DbError| {
        let _ = dst.query_drop("ROLLBACK");
        Err(e)
    };
    let (digest, bytes) = match produced {
        Ok((d, b)) => (d, b),
        Err(e) => return fail(dst, e),
    };
    let rows = digest.rows;
    let (affected, warnings, info) = match loaded {
        Ok(v) => v,
        Err(e) => return fail(dst, DbError::table(to, table, e)),
    };
    if affected != rows || warnings != 0 {
        let detail = match dst.query::<(String, u32, String), _>("SHOW WARNINGS LIMIT 1") {
            Ok(w) => w
                .first()
                .map(|(l, c, m)| format!("; first warning: {l} {c} {m}"))
                .unwrap_or_default(),
            Err(_) => String::new(),
        };
        return fail(
            dst,
            DbError::table(
                to,
                table,
                format!(
                    "sent {rows} rows, LOAD DATA loaded {affected} with {warnings} warnings ({info}){detail}"
                ),
            ),
        );
    }
    dst.query_drop("COMMIT")
        .map_err(|e| DbError::table(to, table, e))?;
    progress.event(ProgressEvent::TableDone { table, rows });
    Ok((digest, bytes))
}

pub(super) fn show_create(
    c: &mut Conn,
    url: &DbUrl,
    kind: &str,
    name: &str,
    col: usize,
) -> Result<Vec<String>, DbError> {
    let rows = strings(
        c,
        url,
        &format!("SHOW CREATE {kind} {}", q(name)),
        &format!("SHOW CREATE {kind} {name}"),
    )?;
    let row = rows.into_iter().next().unwrap_or_default();
    let _ = col;
    Ok(row.into_iter().map(Option::unwrap_or_default).collect())
}

pub(super) fn strip_auto_increment(ddl: &str) -> String {
    let mut out = String::with_capacity(ddl.len());
    let mut rest = ddl;
    while let Some(i) = rest.find(" AUTO_INCREMENT=") {
        out.push_str(&rest[..i]);
        let after = &rest[i + " AUTO_INCREMENT=".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::escape_into;

    /// The byte-at-a-time form LOAD DATA's default escapes define.
    fn reference(bytes: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for &b in bytes {
            match b {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\t' => out.extend_from_slice(b"\\t"),
                b'\n' => out.extend_from_slice(b"\\n"),
                0 => out.extend_from_slice(b"\\0"),
                other => out.push(other),
            }
        }
        out
    }

    #[test]
    fn escaping_in_runs_matches_the_byte_at_a_time_form() {
        let every_byte: Vec<u8> = (0..=255u8).chain((0..=255u8).rev()).collect();
        let cases: [&[u8]; 8] = [
            b"",
            b"plain",
            b"\\N",
            b"\\\\\t\t\n\n\0\0",
            "tab\there 中文 😀 ''q'' \"dq\"\r\n".as_bytes(),
            b"\0leading and trailing\\",
            b"\n",
            &every_byte,
        ];
        for case in cases {
            let mut out = b"prefix".to_vec();
            escape_into(case, &mut out);
            assert_eq!(&out[..6], b"prefix");
            assert_eq!(out[6..], reference(case), "{case:?}");
        }
    }
}
