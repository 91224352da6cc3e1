//! The run's journal: JSON lines in `state_dir/journal.jsonl`, appended and fsynced per event,
//! so that after kill -9 or power loss it says exactly where the run stopped.
//!
//! The first line pins the run's identity (homes and databases); `resume` refuses a journal
//! whose identity differs from the configuration it is given. A torn last line (a crash in
//! the middle of a write) is ignored: the event it would have recorded did not complete.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use super::step::Step;

pub const FILE_NAME: &str = "journal.jsonl";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first line: which run this is and what it works on.
    Run {
        run_id: String,
        identity: serde_json::Value,
        at_ms: u64,
    },
    Started {
        step: Step,
        at_ms: u64,
    },
    Completed {
        step: Step,
        at_ms: u64,
        detail: serde_json::Value,
    },
    Failed {
        step: Step,
        at_ms: u64,
        error: String,
    },
    /// Before the first write to a staging database: how this run owns it. Only this record
    /// allows a later reset of that database (see `carbon_db::staging`).
    StagingClaimed {
        datasource: String,
        claim: carbon_db::staging::Claim,
        at_ms: u64,
    },
}

#[derive(Debug)]
pub struct Journal {
    path: PathBuf,
    file: File,
    pub run_id: String,
    pub events: Vec<Event>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Journal {
    /// Starts a new journal; refuses when one exists (that run must be resumed or removed).
    pub fn create(state_dir: &Path, identity: serde_json::Value) -> Result<Journal> {
        Journal::create_named(state_dir, FILE_NAME, identity)
    }

    /// [`Journal::create`] under another file name (one journal per scope).
    pub fn create_named(
        state_dir: &Path,
        file_name: &str,
        identity: serde_json::Value,
    ) -> Result<Journal> {
        std::fs::create_dir_all(state_dir)
            .with_context(|| format!("creating the state directory {}", state_dir.display()))?;
        let path = state_dir.join(file_name);
        let file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .with_context(|| {
                format!("{} exists: an earlier run is recorded there; use `resume`, or remove the state directory", path.display())
            })?;
        let run_id = format!("run-{:x}-{:x}", now_ms(), std::process::id());
        let mut journal = Journal {
            path,
            file,
            run_id: run_id.clone(),
            events: Vec::new(),
        };
        journal.append(Event::Run {
            run_id,
            identity,
            at_ms: now_ms(),
        })?;
        Ok(journal)
    }

    /// Reopens a journal to continue it, after checking that it belongs to this run.
    pub fn resume(state_dir: &Path, identity: &serde_json::Value) -> Result<Journal> {
        Journal::resume_named(state_dir, FILE_NAME, identity)
    }

    /// [`Journal::resume`] of the journal under another file name (one per scope).
    pub fn resume_named(
        state_dir: &Path,
        file_name: &str,
        identity: &serde_json::Value,
    ) -> Result<Journal> {
        let path = state_dir.join(file_name);
        let events = read(&path)?;
        let Some(Event::Run {
            run_id,
            identity: recorded,
            ..
        }) = events.first().cloned()
        else {
            bail!(
                "{} does not start with a run record: not a carbon-upgrade journal",
                path.display()
            );
        };
        if &recorded != identity {
            bail!(
                "{} belongs to another run ({run_id}): its homes or databases differ from this configuration",
                path.display()
            );
        }
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Journal {
            path,
            file,
            run_id,
            events,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, event: Event) -> Result<()> {
        let mut line = serde_json::to_vec(&event).context("encoding a journal event")?;
        line.push(b'\n');
        self.file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
            .with_context(|| format!("writing {}", self.path.display()))?;
        self.events.push(event);
        Ok(())
    }

    /// This run's claim on the staging database of `datasource`, if it recorded one.
    pub fn staging_claim(&self, datasource: &str) -> Option<carbon_db::staging::Claim> {
        self.events.iter().find_map(|e| match e {
            Event::StagingClaimed {
                datasource: d,
                claim,
                ..
            } if d == datasource => Some(*claim),
            _ => None,
        })
    }

    /// The detail recorded when `step` last completed, if it did.
    pub fn completed(&self, step: &Step) -> Option<&serde_json::Value> {
        self.events.iter().rev().find_map(|e| match e {
            Event::Completed {
                step: s, detail, ..
            } if s == step => Some(detail),
            _ => None,
        })
    }
}

/// Reads every complete event; a torn final line is dropped, any other bad line is an error.
pub fn read(path: &Path) -> Result<Vec<Event>> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut lines: Vec<String> = Vec::new();
    let mut reader = BufReader::new(file);
    loop {
        let mut line = String::new();
        let n = reader
            .read_line(&mut line)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        lines.push(line);
    }
    let mut events = Vec::new();
    let last = lines.len().saturating_sub(1);
    for (i, line) in lines.iter().enumerate() {
        if i == last && !line.ends_with('\n') {
            continue; // torn by a crash mid-write: that event never completed
        }
        let event = serde_json::from_str(line.trim_end())
            .with_context(|| format!("{} line {}: not a journal event", path.display(), i + 1))?;
        events.push(event);
    }
    Ok(events)
}
