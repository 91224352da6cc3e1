//! The copy skeleton both server engines follow (PostgreSQL, MySQL/MariaDB): decide from
//! the journal whether this continues an earlier attempt, run each step once, copy the
//! data over the one worker pool, finish the journal and the report. An engine brings its
//! sessions and its per-table copy; the order, the journal and the totals live here.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Instant;

use carbon_fs::run_pool;

use crate::contents::Contents;
use crate::journal::{Journal, JournalPlan};
use crate::progress::{Progress, ProgressEvent};
use crate::report::{RowDigest, TableTime};
use crate::{CopyOptions, CopyReport, DbError};

/// A unit of the data phase: a whole table, or one piece of a table cut for parallelism.
pub(crate) trait Piece: Send {
    /// The table this unit belongs to (a table is done when all its pieces are).
    fn table(&self) -> &str;
}

/// One copy in progress, after the journal decision.
pub(crate) struct CopyRun<'a> {
    journal: Journal,
    steps_done: BTreeSet<String>,
    tables_done: BTreeMap<String, u64>,
    resumed: bool,
    progress: &'a dyn Progress,
    started: Instant,
    /// The phase running now and since when (its time goes into the report when the next
    /// one starts or the copy finishes).
    current: Option<(&'static str, Instant)>,
    pub(crate) report: CopyReport,
}

impl<'a> CopyRun<'a> {
    /// Opens (or continues) the copy journal: a run continues only when the journal names
    /// this source and target and the target holds nothing else.
    pub(crate) fn begin(
        mut report: CopyReport,
        started: Instant,
        opts: &CopyOptions,
        ids: (&str, &str),
        target: Result<Contents, DbError>,
        progress: &'a dyn Progress,
    ) -> Result<CopyRun<'a>, DbError> {
        let (source_id, target_id) = ids;
        let JournalPlan {
            journal,
            previous,
            resumed,
        } = JournalPlan::decide(
            opts.journal.as_deref(),
            report.vendor,
            source_id,
            target_id,
            target,
        )?;
        report.resumed = resumed;
        // Rows copied by an earlier attempt were read under another snapshot.
        if resumed {
            report.snapshot_consistent = false;
        }
        Ok(CopyRun {
            journal,
            steps_done: previous.steps,
            tables_done: previous.tables,
            resumed,
            progress,
            // Everything before the first named phase (connections, the journal decision,
            // the snapshot) counts as the snapshot.
            current: Some(("snapshot", started)),
            started,
            report,
        })
    }

    pub(crate) fn resumed(&self) -> bool {
        self.resumed
    }

    /// Starts phase `name` (and ends the one before, recording its time in the report).
    pub(crate) fn phase(&mut self, name: &'static str) {
        self.end_phase();
        self.current = Some((name, Instant::now()));
        self.progress.event(ProgressEvent::Phase(name));
    }

    fn end_phase(&mut self) {
        if let Some((name, since)) = self.current.take() {
            self.report
                .phases
                .add(name, since.elapsed().as_millis() as u64);
        }
    }

    /// Runs `step` unless an earlier attempt journalled it done; journals it when it is.
    pub(crate) fn once(
        &mut self,
        step: &str,
        run: impl FnOnce() -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        if self.steps_done.contains(step) {
            return Ok(());
        }
        run()?;
        self.journal.step_done(step)
    }

    /// Runs `run` with the steps done so far and the journal, for a phase that journals
    /// several steps of its own (PostgreSQL's post-data: indexes, then constraints).
    pub(crate) fn with_journal<T>(
        &mut self,
        run: impl FnOnce(&BTreeSet<String>, &mut Journal) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        run(&self.steps_done, &mut self.journal)
    }

    /// The tables an earlier attempt did not finish (all of them on a fresh run).
    pub(crate) fn pending<T>(&mut self, tables: Vec<T>, name: impl Fn(&T) -> &str) -> Vec<T> {
        self.report.tables = tables.len();
        tables
            .into_iter()
            .filter(|t| !self.tables_done.contains_key(name(t)))
            .collect()
    }

    /// Starts the data phase, announcing the tables to copy and their bytes.
    pub(crate) fn announce<T>(&mut self, todo: &[T], bytes: impl Fn(&T) -> u64) {
        self.phase("data");
        self.progress.event(ProgressEvent::Planned {
            tables: todo.len(),
            bytes: todo.iter().map(bytes).sum(),
        });
    }

    /// The data phase: `work` over `jobs` workers, each opening its sessions once with
    /// `open`; `copy` moves one unit and returns its stream digest and bytes. A table is
    /// journalled done when its last piece is; the report gets rows, bytes and (when every
    /// row was read under one snapshot) the stream digests.
    pub(crate) fn data<U: Piece, S>(
        &mut self,
        jobs: usize,
        work: Vec<U>,
        open: impl Fn() -> Result<S, DbError> + Sync,
        copy: impl Fn(&mut S, &U) -> Result<(RowDigest, u64), DbError> + Sync,
    ) -> Result<(), DbError> {
        let pieces = Pieces::new(work.iter().map(Piece::table));
        let journal = Mutex::new(&mut self.journal);
        let bytes = Mutex::new(0u64);
        let times: Mutex<BTreeMap<String, TableTime>> = Mutex::new(BTreeMap::new());
        let progress = self.progress;
        run_pool(jobs, work, open, |sessions, unit| {
            let began = Instant::now();
            let (digest, moved) = copy(sessions, &unit)?;
            let ms = began.elapsed().as_millis() as u64;
            *bytes.lock().unwrap_or_else(|p| p.into_inner()) += moved;
            {
                let mut times = times.lock().unwrap_or_else(|p| p.into_inner());
                let t = times
                    .entry(unit.table().to_owned())
                    .or_insert_with(|| TableTime {
                        table: unit.table().to_owned(),
                        rows: 0,
                        bytes: 0,
                        ms: 0,
                    });
                t.rows += digest.rows;
                t.bytes += moved;
                t.ms += ms;
            }
            let Some(total) = pieces.done(unit.table(), digest) else {
                return Ok(());
            };
            progress.event(ProgressEvent::TableDone {
                table: unit.table(),
                rows: total.rows,
            });
            journal
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .table_done(unit.table(), total.rows)
        })?;
        let mut slowest: Vec<TableTime> = times
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_values()
            .collect();
        slowest.sort_by(|a, b| b.ms.cmp(&a.ms).then_with(|| a.table.cmp(&b.table)));
        slowest.truncate(10);
        self.report.phases.tables = slowest;
        let streamed = pieces.into_totals();
        self.report.rows =
            streamed.values().map(|d| d.rows).sum::<u64>() + self.tables_done.values().sum::<u64>();
        self.report.bytes = bytes.into_inner().unwrap_or_else(|p| p.into_inner());
        if self.report.snapshot_consistent {
            self.report.stream_digests = Some(streamed);
        }
        Ok(())
    }

    /// Journals the copy complete and returns its report.
    pub(crate) fn finish(mut self) -> Result<CopyReport, DbError> {
        self.journal.step_done("done")?;
        self.end_phase();
        self.report.copy_ms = self.started.elapsed().as_millis() as u64;
        Ok(self.report)
    }
}

/// Digests of the pieces of each table, merged as pieces finish in any order.
pub(crate) struct Pieces {
    state: Mutex<BTreeMap<String, (usize, RowDigest)>>,
}

impl Pieces {
    pub(crate) fn new<'t>(tables: impl Iterator<Item = &'t str>) -> Pieces {
        let mut state: BTreeMap<String, (usize, RowDigest)> = BTreeMap::new();
        for table in tables {
            state.entry(table.to_owned()).or_default().0 += 1;
        }
        Pieces {
            state: Mutex::new(state),
        }
    }

    /// Adds a piece's digest; returns the table's total when this was its last piece.
    pub(crate) fn done(&self, table: &str, digest: RowDigest) -> Option<RowDigest> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let entry = state.get_mut(table)?;
        entry.0 -= 1;
        entry.1.merge(digest);
        (entry.0 == 0).then_some(entry.1)
    }

    pub(crate) fn into_totals(self) -> BTreeMap<String, RowDigest> {
        self.state
            .into_inner()
            .unwrap_or_else(|p| p.into_inner())
            .into_iter()
            .map(|(table, (_, digest))| (table, digest))
            .collect()
    }
}
