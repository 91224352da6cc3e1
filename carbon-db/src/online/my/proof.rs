//! The cut-over proof without reading everything: every key the stream touched compared row by
//! row on both sides; for tables without a primary key, every touched row image counted on
//! both sides; the inventory, every counter and the row count of every table. The snapshot
//! copy was verified in full at the snapshot; everything that changed since passed through the
//! touched keys and images. Source and staging are read at the same time, one thread each.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io::BufRead as _;
use std::time::Instant;

use mysql::prelude::Queryable;
use mysql::{Conn, Value};

use super::catalog::{self, TableMeta};
use crate::my::{connect_meta, connect_source, q};
use crate::online::{OnlineError, Stream};
use crate::report::{Mismatch, RowDigest, TableCheck};
use crate::{DbError, DbUrl, Vendor, VerifyReport};

/// What the touched-keys file says, per table: primary keys; row images of tables without a
/// primary key; tables without a primary key touched by lines without an image.
#[derive(Default)]
struct Touched {
    keys: BTreeMap<String, BTreeSet<String>>,
    images: BTreeMap<String, BTreeSet<String>>,
    whole: BTreeSet<String>,
}

fn touched(stream: &Stream) -> Result<Touched, OnlineError> {
    let path = stream.dir.join("touched-keys.jsonl");
    let mut t = Touched::default();
    let file = match std::fs::File::open(&path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(t),
        Err(source) => return Err(OnlineError::State { path, source }),
    };
    for line in std::io::BufReader::new(file).lines() {
        let line = line.map_err(|source| OnlineError::State {
            path: path.clone(),
            source,
        })?;
        // A line cut by a crash while appending: its transaction was not committed.
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        let table = v["table"].as_str().unwrap_or_default().to_owned();
        match (v["key"].as_array(), v["image"].as_array()) {
            (Some(k), _) if !k.is_empty() => {
                t.keys.entry(table).or_default().insert(json_text(k));
            }
            (_, Some(image)) => {
                t.images.entry(table).or_default().insert(json_text(image));
            }
            // Written before images were recorded: that table is compared in full.
            _ => {
                t.whole.insert(table);
            }
        }
    }
    for table in &t.whole {
        t.images.remove(table);
    }
    Ok(t)
}

fn json_text(values: &[serde_json::Value]) -> String {
    serde_json::Value::Array(values.to_vec()).to_string()
}

/// The reads both sides do, with their parameters decoded.
#[derive(Default)]
struct Plan<'a> {
    keys: Vec<(&'a TableMeta, Vec<Vec<Value>>)>,
    images: Vec<(&'a TableMeta, Vec<Vec<Value>>)>,
    /// Compared by digest: no usable image set.
    whole: Vec<String>,
}

fn plan<'a>(
    stream: &Stream,
    tables: &'a BTreeMap<String, TableMeta>,
    touched: Touched,
    mismatches: &mut Vec<Mismatch>,
) -> Result<Plan<'a>, OnlineError> {
    let mut p = Plan::default();
    let absent = |table: &str, mismatches: &mut Vec<Mismatch>| {
        mismatches.push(mismatch(
            table,
            "missing",
            "touched by the stream, absent from the target",
        ));
    };
    for (table, keys) in &touched.keys {
        let Some(meta) = tables.get(table) else {
            absent(table, mismatches);
            continue;
        };
        let values = keys
            .iter()
            .map(|key| {
                parse_values(key).ok_or_else(|| OnlineError::State {
                    path: stream.dir.join("touched-keys.jsonl"),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("bad key {key}"),
                    ),
                })
            })
            .collect::<Result<_, _>>()?;
        p.keys.push((meta, values));
    }
    for (table, images) in &touched.images {
        let Some(meta) = tables.get(table) else {
            absent(table, mismatches);
            continue;
        };
        let values: Option<Vec<Vec<Value>>> = images
            .iter()
            .map(|i| parse_values(i).filter(|v| v.len() == meta.cols.len()))
            .collect();
        match values {
            Some(v) => p.images.push((meta, v)),
            // An image this version cannot read back (another format): the whole table.
            None => p.whole.push(table.clone()),
        }
    }
    for table in &touched.whole {
        if tables.contains_key(table) {
            p.whole.push(table.clone());
        } else {
            absent(table, mismatches);
        }
    }
    Ok(p)
}

/// What one side holds, in the plan's order.
struct Side {
    rows: Vec<Vec<Option<Vec<Value>>>>,
    image_counts: Vec<Vec<u64>>,
    digests: Vec<RowDigest>,
    inventory: BTreeMap<String, String>,
    counters: BTreeMap<String, i128>,
    counts: Vec<u64>,
    /// Milliseconds per step, for the report.
    steps: String,
}

/// Images counted per statement (one round trip).
const IMAGES_PER_QUERY: usize = 64;

fn read_side(
    url: &DbUrl,
    plan: &Plan<'_>,
    tables: &BTreeMap<String, TableMeta>,
) -> Result<Side, DbError> {
    let mut c = connect_source(url)?;
    let mut steps = String::new();
    let mut t = Instant::now();
    let mut lap = |what: &str, n: usize, t: &mut Instant| {
        let _ = write!(steps, "{what} {} ms ({n}), ", t.elapsed().as_millis());
        *t = Instant::now();
    };
    let mut rows = Vec::new();
    for (meta, keys) in &plan.keys {
        rows.push(
            keys.iter()
                .map(|k| row(&mut c, url, meta, k))
                .collect::<Result<Vec<_>, _>>()?,
        );
    }
    lap("keys", plan.keys.iter().map(|k| k.1.len()).sum(), &mut t);
    let mut image_counts = Vec::new();
    for (meta, images) in &plan.images {
        image_counts.push(count_images(&mut c, url, meta, images)?);
    }
    lap(
        "images",
        plan.images.iter().map(|k| k.1.len()).sum(),
        &mut t,
    );
    let digests = plan
        .whole
        .iter()
        .map(|table| crate::my::table_digest(url, table))
        .collect::<Result<Vec<_>, _>>()?;
    lap("whole tables", plan.whole.len(), &mut t);
    let mut meta = connect_meta(url)?;
    let inventory = crate::my::inventory(&mut meta, url, url.database())?;
    let counters = crate::my::counters(&mut meta, url, url.database())?;
    lap("inventory and counters", inventory.len(), &mut t);
    let counts = tables
        .keys()
        .map(|table| count(&mut c, url, table))
        .collect::<Result<Vec<_>, _>>()?;
    lap("row counts", counts.len(), &mut t);
    Ok(Side {
        rows,
        image_counts,
        digests,
        inventory,
        counters,
        counts,
        steps: steps.trim_end_matches(", ").to_owned(),
    })
}

/// Compares the touched keys and images, inventory, counters and row counts; the third value
/// says what each side's reads cost.
pub(super) fn prove_touched(stream: &Stream) -> Result<(VerifyReport, u64, String), OnlineError> {
    let (from, to) = (&stream.from, &stream.to);
    let started = Instant::now();
    let tables = catalog::load(&mut connect_meta(to)?, to, to.database())?;
    let mut mismatches = Vec::new();
    let plan = plan(stream, &tables, touched(stream)?, &mut mismatches)?;
    let (a, b) = std::thread::scope(|scope| {
        let src = scope.spawn(|| read_side(from, &plan, &tables));
        let dst = read_side(to, &plan, &tables);
        let src = src.join().unwrap_or_else(|_| {
            Err(DbError::table(
                from,
                "*",
                "the proof's source reader panicked",
            ))
        });
        (src, dst)
    });
    let (a, b) = (a?, b?);
    let keys_compared = compare_keys(&plan, &a, &b, &mut mismatches);
    compare_images(&plan, &a, &b, &mut mismatches);
    for (table, (x, y)) in plan.whole.iter().zip(a.digests.iter().zip(&b.digests)) {
        if x != y {
            mismatches.push(mismatch(
                table,
                "content",
                &format!(
                    "{} rows on the source, {} on the target, contents differ",
                    x.rows, y.rows
                ),
            ));
        }
    }
    compare_catalog(&a, &b, &mut mismatches);
    let mut checks = Vec::new();
    let mut rows = 0;
    for (table, (&x, &y)) in tables.keys().zip(a.counts.iter().zip(&b.counts)) {
        if x != y {
            mismatches.push(mismatch(table, "rows", &format!("source {x}, target {y}")));
        }
        rows += x;
        checks.push(TableCheck {
            table: table.clone(),
            rows: x,
            digest: String::new(),
            ok: x == y,
        });
    }
    let steps = format!("source: {}; target: {}", a.steps, b.steps);
    Ok((
        VerifyReport {
            vendor: Vendor::MySql,
            objects: a.inventory.len(),
            tables: checks,
            rows,
            counters: a.counters.len(),
            files: Vec::new(),
            mismatches,
            elapsed_ms: started.elapsed().as_millis() as u64,
        },
        keys_compared,
        steps,
    ))
}

fn compare_keys(plan: &Plan<'_>, a: &Side, b: &Side, mismatches: &mut Vec<Mismatch>) -> u64 {
    let mut compared = 0;
    for ((meta, keys), (ra, rb)) in plan.keys.iter().zip(a.rows.iter().zip(&b.rows)) {
        for (key, (x, y)) in keys.iter().zip(ra.iter().zip(rb)) {
            compared += 1;
            if x == y {
                continue;
            }
            let what = match (x, y) {
                (Some(_), None) => "missing on the target",
                (None, Some(_)) => "extra on the target",
                _ => "differs",
            };
            mismatches.push(mismatch(
                &meta.name,
                "content",
                &format!("row {} {what}", meta.describe_key_values(key)),
            ));
        }
    }
    compared
}

/// Rows never touched were equal at the verified snapshot and are unchanged since; every row
/// image the stream removed or added must be there as many times on both sides.
fn compare_images(plan: &Plan<'_>, a: &Side, b: &Side, mismatches: &mut Vec<Mismatch>) {
    for ((meta, images), (ca, cb)) in plan
        .images
        .iter()
        .zip(a.image_counts.iter().zip(&b.image_counts))
    {
        for (image, (x, y)) in images.iter().zip(ca.iter().zip(cb)) {
            if x != y {
                mismatches.push(mismatch(
                    &meta.name,
                    "content",
                    &format!(
                        "row ({}) is {x} time(s) on the source, {y} on the target",
                        meta.describe_key(image)
                    ),
                ));
            }
        }
    }
}

fn compare_catalog(a: &Side, b: &Side, mismatches: &mut Vec<Mismatch>) {
    for (name, def) in &a.inventory {
        match b.inventory.get(name) {
            None => mismatches.push(mismatch(name, "missing", "absent from the target")),
            Some(d) if d != def => mismatches.push(mismatch(name, "definition", "differs")),
            Some(_) => {}
        }
    }
    for name in b.inventory.keys().filter(|n| !a.inventory.contains_key(*n)) {
        mismatches.push(mismatch(name, "extra", "only on the target"));
    }
    for (table, v) in &a.counters {
        if b.counters.get(table) != Some(v) {
            mismatches.push(mismatch(
                &format!("auto_increment {table}"),
                "counter",
                &format!("source {v}, target {:?}", b.counters.get(table)),
            ));
        }
    }
}

fn mismatch(object: &str, kind: &str, detail: &str) -> Mismatch {
    Mismatch {
        object: object.to_owned(),
        kind: kind.to_owned(),
        detail: detail.to_owned(),
    }
}

/// A JSON array of touched-keys values → driver parameters.
fn parse_values(text: &str) -> Option<Vec<Value>> {
    let v: serde_json::Value = serde_json::from_str(text).ok()?;
    v.as_array()?.iter().map(catalog::key_value).collect()
}

/// Key values → the WHERE parameters of the primary key filter.
fn row(
    c: &mut Conn,
    url: &DbUrl,
    meta: &TableMeta,
    key: &[Value],
) -> Result<Option<Vec<Value>>, DbError> {
    let r: Option<mysql::Row> = c
        .exec_first(&meta.select_sql, key.to_vec())
        .map_err(|e| DbError::table(url, &meta.name, e))?;
    Ok(r.map(mysql::Row::unwrap))
}

/// How many rows equal each image, in a few round trips.
fn count_images(
    c: &mut Conn,
    url: &DbUrl,
    meta: &TableMeta,
    images: &[Vec<Value>],
) -> Result<Vec<u64>, DbError> {
    let mut out = Vec::with_capacity(images.len());
    for chunk in images.chunks(IMAGES_PER_QUERY) {
        let params: Vec<Value> = chunk.iter().flat_map(|i| meta.filter_params(i)).collect();
        let rows: Vec<(usize, u64)> = c
            .exec(meta.count_images_sql(chunk.len()), params)
            .map_err(|e| DbError::table(url, &meta.name, e))?;
        let mut counts = vec![None; chunk.len()];
        for (i, n) in rows {
            if let Some(slot) = counts.get_mut(i) {
                *slot = Some(n);
            }
        }
        for n in counts {
            out.push(n.ok_or_else(|| {
                DbError::table(url, &meta.name, "an image count is missing from the answer")
            })?);
        }
    }
    Ok(out)
}

fn count(c: &mut Conn, url: &DbUrl, table: &str) -> Result<u64, DbError> {
    let n: Option<u64> = c
        .query_first(format!("SELECT COUNT(*) FROM {}", q(table)))
        .map_err(|e| DbError::table(url, table, e))?;
    Ok(n.unwrap_or(0))
}
