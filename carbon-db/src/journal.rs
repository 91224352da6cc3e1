//! Resume journal: JSON lines, pinned to source and target identities.
//!
//! The first line is a header naming the vendor and both identities (catalog facts such as
//! PostgreSQL's system identifier and database oid: no URL, no credential). Each later line
//! records one finished unit (`step` or `table`). A unit is idempotent (a table is TRUNCATEd
//! and loaded in one transaction), so a unit that had started but not been journalled when
//! the process died is simply done again.
//!
//! Steps whose redo would fail (the header, pre-data, the end) are fsynced when written.
//! Units that can always be redone (a table: TRUNCATE + load in one transaction, or a split
//! table emptied again on resume; a post-data statement: "already exists" is accepted on
//! resume) are written without their own fsync: a kill -9 loses nothing the kernel holds,
//! and a power loss that drops such a line only makes the resume redo that unit. An fsync
//! costs tens of milliseconds on a busy disk; per table and per index it was seconds of a
//! 144-table copy.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{DbError, Vendor};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
enum Entry {
    Header {
        format: u32,
        vendor: Vendor,
        source: String,
        target: String,
    },
    Step {
        step: String,
    },
    Table {
        table: String,
        rows: u64,
    },
}

/// What an earlier run left in the journal.
#[derive(Debug, Default)]
pub(crate) struct Previous {
    pub source: String,
    pub target: String,
    pub vendor: Option<Vendor>,
    pub steps: BTreeSet<String>,
    pub tables: BTreeMap<String, u64>,
}

impl Previous {
    pub fn matches(&self, vendor: Vendor, source: &str, target: &str) -> bool {
        self.vendor == Some(vendor) && self.source == source && self.target == target
    }
}

#[derive(Debug)]
pub(crate) struct Journal {
    path: PathBuf,
    file: Option<File>,
}

impl Journal {
    /// Reads an existing journal, if any.
    pub fn load(path: &Path) -> Result<Option<Previous>, DbError> {
        let file = match File::open(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(DbError::io(path, e)),
        };
        let mut prev = Previous::default();
        for (n, line) in BufReader::new(file).lines().enumerate() {
            let line = line.map_err(|e| DbError::io(path, e))?;
            if line.trim().is_empty() {
                continue;
            }
            // A torn last line (killed mid-write) is ignored; anything else is corruption.
            let entry: Entry = match serde_json::from_str(&line) {
                Ok(e) => e,
                Err(_) => continue,
            };
            match entry {
                Entry::Header {
                    format,
                    vendor,
                    source,
                    target,
                } => {
                    if n != 0 || format != 1 {
                        return Err(DbError::Journal {
                            path: path.to_owned(),
                            reason: "unexpected header (not a carbon-db journal, format 1)".into(),
                        });
                    }
                    prev.vendor = Some(vendor);
                    prev.source = source;
                    prev.target = target;
                }
                Entry::Step { step } => {
                    prev.steps.insert(step);
                }
                Entry::Table { table, rows } => {
                    prev.tables.insert(table, rows);
                }
            }
        }
        if prev.vendor.is_none() {
            return Ok(None);
        }
        Ok(Some(prev))
    }

    /// No journal at all (copy without resume support).
    pub fn disabled() -> Journal {
        Journal {
            path: PathBuf::new(),
            file: None,
        }
    }

    /// Starts a new journal, replacing any old one.
    pub fn create(
        path: &Path,
        vendor: Vendor,
        source: &str,
        target: &str,
    ) -> Result<Journal, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| DbError::io(dir, e))?;
        }
        let file = File::create(path).map_err(|e| DbError::io(path, e))?;
        let mut journal = Journal {
            path: path.to_owned(),
            file: Some(file),
        };
        journal.write(
            &Entry::Header {
                format: 1,
                vendor,
                source: source.to_owned(),
                target: target.to_owned(),
            },
            true,
        )?;
        Ok(journal)
    }

    /// Continues an existing journal.
    pub fn append(path: &Path) -> Result<Journal, DbError> {
        let file = OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| DbError::io(path, e))?;
        Ok(Journal {
            path: path.to_owned(),
            file: Some(file),
        })
    }

    /// A step done, durably (fsynced, with every line before it).
    pub fn step_done(&mut self, step: &str) -> Result<(), DbError> {
        self.write(
            &Entry::Step {
                step: step.to_owned(),
            },
            true,
        )
    }

    /// A step that is redone safely if its line is lost (a post-data statement): no fsync.
    pub fn redoable_step_done(&mut self, step: &str) -> Result<(), DbError> {
        self.write(
            &Entry::Step {
                step: step.to_owned(),
            },
            false,
        )
    }

    /// A table loaded (redone safely if its line is lost): no fsync.
    pub fn table_done(&mut self, table: &str, rows: u64) -> Result<(), DbError> {
        self.write(
            &Entry::Table {
                table: table.to_owned(),
                rows,
            },
            false,
        )
    }

    fn write(&mut self, entry: &Entry, sync: bool) -> Result<(), DbError> {
        let Some(file) = self.file.as_mut() else {
            return Ok(());
        };
        let mut line = serde_json::to_string(entry).map_err(|e| DbError::Journal {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        line.push('\n');
        file.write_all(line.as_bytes())
            .and_then(|()| if sync { file.sync_data() } else { Ok(()) })
            .map_err(|e| DbError::io(&self.path, e))
    }
}

/// Journal handling shared by the server vendors: decides between a fresh run and a resume.
pub(crate) struct JournalPlan {
    pub journal: Journal,
    pub previous: Previous,
    pub resumed: bool,
}

impl std::fmt::Debug for JournalPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalPlan")
            .field("resumed", &self.resumed)
            .finish_non_exhaustive()
    }
}

impl JournalPlan {
    /// `target` is what the target holds ([`crate::contents`]). A non-empty target is only
    /// accepted when the journal belongs to this very source and target.
    pub fn decide(
        path: Option<&Path>,
        vendor: Vendor,
        source_id: &str,
        target_id: &str,
        target: Result<crate::Contents, DbError>,
    ) -> Result<JournalPlan, DbError> {
        let target_empty = target.and_then(|held| held.require_empty());
        let Some(path) = path else {
            target_empty?;
            return Ok(JournalPlan {
                journal: Journal::disabled(),
                previous: Previous::default(),
                resumed: false,
            });
        };
        let previous = Journal::load(path)?;
        // A journal whose schema step is done but whose target is empty again (dropped and
        // recreated under the same name) describes a copy that no longer exists.
        let stale = |prev: &Previous| prev.steps.contains("pre-data") && target_empty.is_ok();
        match previous {
            Some(prev) if prev.matches(vendor, source_id, target_id) && !stale(&prev) => {
                Ok(JournalPlan {
                    journal: Journal::append(path)?,
                    previous: prev,
                    resumed: true,
                })
            }
            Some(prev)
                if !prev.matches(vendor, source_id, target_id) && !prev.steps.contains("done") =>
            {
                Err(DbError::Journal {
                    path: path.to_owned(),
                    reason: format!(
                        "belongs to an unfinished copy of {} into {}, not into this target; finish that copy or remove the journal",
                        prev.source, prev.target
                    ),
                })
            }
            _ => {
                target_empty?;
                Ok(JournalPlan {
                    journal: Journal::create(path, vendor, source_id, target_id)?,
                    previous: Previous::default(),
                    resumed: false,
                })
            }
        }
    }
}
