//! The source's tables and how their rows are cut into units of work (whole tables, or ctid
//! ranges of big ones), shared by the copy and by verification.

use postgres::Client;

use super::{USER_NS, quote_lit};
use crate::{DbError, DbUrl};

#[derive(Clone)]
pub(crate) struct Table {
    pub(crate) name: String,
    pub(crate) bytes: i64,
    /// Every column has a built-in type (no user-defined type or array of one, whose
    /// binary form embeds database-specific OIDs): COPY can use the binary format.
    pub(crate) binary: bool,
    /// Heap pages, for splitting a big table into ctid ranges.
    pub(crate) pages: i64,
    /// Quoted names of the stored (non-generated) columns, in order.
    pub(crate) columns: String,
}

/// A piece of work: a whole table, or one ctid range of a big one.
#[derive(Debug, Clone)]
pub(crate) struct Unit {
    pub(crate) name: String,
    pub(crate) binary: bool,
    pub(crate) columns: String,
    /// Heap pages [start, end); `None` end means to the last page.
    pub(crate) range: Option<(i64, Option<i64>)>,
}

impl Unit {
    pub(crate) fn format(&self) -> &'static str {
        if self.binary { "binary" } else { "text" }
    }

    pub(crate) fn column_list(&self) -> String {
        if self.columns.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.columns)
        }
    }

    /// The same tuples whether whole or in ranges: explicit stored columns either way.
    pub(crate) fn copy_out_sql(&self) -> String {
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

    pub(crate) fn copy_in_sql(&self) -> String {
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

/// Tables at least this big are split into ctid ranges, so that several sessions share them.
pub(crate) const SPLIT_BYTES: i64 = 64 << 20;

impl crate::engine::Piece for Unit {
    fn table(&self) -> &str {
        &self.name
    }
}

/// Whole tables, and big ones cut into `2 × jobs` ctid ranges; largest first.
pub(crate) fn units(tables: &[Table], jobs: usize) -> Vec<Unit> {
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

pub(crate) fn list_tables(c: &mut Client, url: &DbUrl) -> Result<Vec<Table>, DbError> {
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
pub(crate) fn read_counters(
    c: &mut Client,
    url: &DbUrl,
) -> Result<Vec<(String, i64, bool, i64)>, DbError> {
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
