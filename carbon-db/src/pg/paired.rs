//! Verification when neither side's digests are known yet (after a template copy, or
//! `db verify`): each table is read on both sides at once and the two COPY streams are
//! compared as they arrive. While they are byte for byte identical nothing is hashed — an
//! identical prefix adds the same rows to both digests — and from the first difference on,
//! each side's remaining rows are hashed as usual. A table's two digests then hold its total
//! row count and the sum of the rows after the common prefix: equal exactly when the full
//! digests would be, for half the hashing or none.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead;
use std::sync::Mutex;

use postgres::Client;

use super::state::{coordinator, digest_table, inventory, next_values, snapshot_session};
use super::tables::{Table, Unit, list_tables, units};
use crate::engine::Pieces;
use crate::progress::{Progress, ProgressEvent};
use crate::report::{CopyDigest, DbState, RowDigest};
use crate::{DbError, DbUrl};
use carbon_fs::run_pool;

/// Both sides' states, and the tables whose rows came out byte for byte identical.
pub(crate) struct Paired {
    pub(crate) source: DbState,
    pub(crate) target: DbState,
    pub(crate) identical: BTreeSet<String>,
}

/// One piece of work: a table on both sides, or (different columns, or on one side only)
/// on one side.
enum Work {
    Both(Unit),
    One(Side, Unit),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    From,
    To,
}

/// A session on each side, under that side's exported snapshot.
struct Sessions {
    from: Client,
    to: Client,
}

/// Reads both sides (read-only, `jobs` session pairs) and returns what verification compares.
pub(crate) fn read_states(
    from: &DbUrl,
    to: &DbUrl,
    jobs: usize,
    progress: &dyn Progress,
) -> Result<Paired, DbError> {
    let (mut coord_from, snap_from) = coordinator(from)?;
    let (mut coord_to, snap_to) = coordinator(to)?;
    let inv_from = inventory(&mut coord_from, from)?;
    let inv_to = inventory(&mut coord_to, to)?;
    let tables_from = list_tables(&mut coord_from, from)?;
    let tables_to = list_tables(&mut coord_to, to)?;
    let work = plan(&tables_from, &tables_to, jobs);
    let (names_from, names_to): (Vec<&str>, Vec<&str>) = (
        work.iter()
            .filter_map(|w| match w {
                Work::Both(u) | Work::One(Side::From, u) => Some(u.name.as_str()),
                Work::One(Side::To, _) => None,
            })
            .collect(),
        work.iter()
            .filter_map(|w| match w {
                Work::Both(u) | Work::One(Side::To, u) => Some(u.name.as_str()),
                Work::One(Side::From, _) => None,
            })
            .collect(),
    );
    let pieces_from = Pieces::new(names_from.into_iter());
    let pieces_to = Pieces::new(names_to.into_iter());
    // A table is identical when every one of its pieces was.
    let differing: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    run_pool(
        jobs,
        work,
        || {
            Ok(Sessions {
                from: snapshot_session(from, &snap_from)?,
                to: snapshot_session(to, &snap_to)?,
            })
        },
        |s, w| {
            let (name, d_from, d_to) = match &w {
                Work::Both(unit) => {
                    let (a, b, same) = compare_unit(s, from, to, unit, progress)?;
                    if !same {
                        differing
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(unit.name.clone());
                    }
                    (&unit.name, Some(a), Some(b))
                }
                Work::One(Side::From, unit) => (
                    &unit.name,
                    Some(digest_table(&mut s.from, from, unit, progress)?),
                    None,
                ),
                Work::One(Side::To, unit) => (
                    &unit.name,
                    None,
                    Some(digest_table(&mut s.to, to, unit, progress)?),
                ),
            };
            if let Some(d) = d_from
                && let Some(total) = pieces_from.done(name, d)
            {
                progress.event(ProgressEvent::TableDone {
                    table: name,
                    rows: total.rows,
                });
            }
            if let Some(d) = d_to {
                pieces_to.done(name, d);
            }
            Ok(())
        },
    )?;
    let source = finish(&mut coord_from, from, inv_from, pieces_from.into_totals())?;
    let target = finish(&mut coord_to, to, inv_to, pieces_to.into_totals())?;
    let differing = differing.into_inner().unwrap_or_else(|p| p.into_inner());
    let identical = source
        .tables
        .keys()
        .filter(|t| target.tables.contains_key(*t) && !differing.contains(*t))
        .cloned()
        .collect();
    Ok(Paired {
        source,
        target,
        identical,
    })
}

/// Tables with the same stored columns and format on both sides are compared in pairs (cut
/// into the source's ctid ranges: a piece's rows may differ between sides, the table's sum
/// cannot); the others are digested on their own side.
fn plan(from: &[Table], to: &[Table], jobs: usize) -> Vec<Work> {
    let by_name: BTreeMap<&str, &Table> = to.iter().map(|t| (t.name.as_str(), t)).collect();
    let (mut both, mut alone_from) = (Vec::new(), Vec::new());
    for t in from {
        match by_name.get(t.name.as_str()) {
            Some(o) if o.columns == t.columns && o.binary == t.binary => both.push(t.clone()),
            _ => alone_from.push(t.clone()),
        }
    }
    let paired: BTreeSet<&str> = both.iter().map(|t| t.name.as_str()).collect();
    let alone_to: Vec<Table> = to
        .iter()
        .filter(|t| !paired.contains(t.name.as_str()))
        .cloned()
        .collect();
    let mut work: Vec<Work> = units(&both, jobs).into_iter().map(Work::Both).collect();
    work.extend(
        units(&alone_from, jobs)
            .into_iter()
            .map(|u| Work::One(Side::From, u)),
    );
    work.extend(
        units(&alone_to, jobs)
            .into_iter()
            .map(|u| Work::One(Side::To, u)),
    );
    work
}

/// One unit read on both sides in lockstep; returns both digests and whether the streams
/// were identical. PostgreSQL sends a COPY row per message, so identical rows arrive as
/// identical chunks and the first differing chunk starts a row; should one ever start
/// mid-row, both sides are read again with full digests.
fn compare_unit(
    s: &mut Sessions,
    from: &DbUrl,
    to: &DbUrl,
    unit: &Unit,
    progress: &dyn Progress,
) -> Result<(RowDigest, RowDigest, bool), DbError> {
    let name = unit.name.as_str();
    let sql = unit.copy_out_sql();
    let mut a = s
        .from
        .copy_out(&sql)
        .map_err(|e| DbError::table(from, name, e))?;
    let mut b =
        s.to.copy_out(&sql)
            .map_err(|e| DbError::table(to, name, e))?;
    let mut prefix = CopyDigest::counting(unit.binary);
    let mut pending = 0u64;
    loop {
        let x = a.fill_buf().map_err(|e| DbError::table(from, name, e))?;
        let y = b.fill_buf().map_err(|e| DbError::table(to, name, e))?;
        if x != y {
            break;
        }
        if x.is_empty() {
            progress.event(ProgressEvent::Rows {
                rows: 0,
                bytes: pending,
            });
            return Ok((prefix.digest, prefix.digest, true));
        }
        let n = x.len();
        prefix.feed(x);
        a.consume(n);
        b.consume(n);
        pending += 2 * n as u64;
        if pending >= 4 << 20 {
            progress.event(ProgressEvent::Rows {
                rows: 0,
                bytes: pending,
            });
            pending = 0;
        }
    }
    if !prefix.at_row_boundary() {
        drain(&mut a, None).map_err(|e| DbError::table(from, name, e))?;
        drain(&mut b, None).map_err(|e| DbError::table(to, name, e))?;
        drop((a, b));
        let x = digest_table(&mut s.from, from, unit, progress)?;
        let y = digest_table(&mut s.to, to, unit, progress)?;
        return Ok((x, y, false));
    }
    let (mut rest_a, mut rest_b) = (prefix.clone(), prefix);
    rest_a.start_hashing();
    rest_b.start_hashing();
    drain(&mut a, Some(&mut rest_a)).map_err(|e| DbError::table(from, name, e))?;
    drain(&mut b, Some(&mut rest_b)).map_err(|e| DbError::table(to, name, e))?;
    Ok((rest_a.digest, rest_b.digest, false))
}

/// Reads a COPY stream to its end, feeding `digest` when given.
fn drain(r: &mut impl BufRead, mut digest: Option<&mut CopyDigest>) -> std::io::Result<()> {
    loop {
        let buf = r.fill_buf()?;
        if buf.is_empty() {
            return Ok(());
        }
        let n = buf.len();
        if let Some(d) = digest.as_deref_mut() {
            d.feed(buf);
        }
        r.consume(n);
    }
}

/// The side's counters, then its state.
fn finish(
    coord: &mut Client,
    url: &DbUrl,
    inventory: BTreeMap<String, String>,
    tables: BTreeMap<String, RowDigest>,
) -> Result<DbState, DbError> {
    let counters = next_values(coord, url)?;
    let _ = coord.batch_execute("COMMIT");
    Ok(DbState {
        inventory,
        tables,
        counters,
    })
}
