//! Migration scripts applied to a staging database, statement by statement, journalled.
//!
//! Each statement is journalled before and after (script, statement number, line, hash). The
//! first failure stops with `script:line`, the statement's first line and the server's error:
//! there is no continue-on-error mode. [`migrate`] run again with the same journal resumes at
//! the failed statement (after the operator fixed the cause, in the database or in the
//! script; a statement already applied must still read the same). On PostgreSQL a script runs
//! in one transaction unless one of its statements cannot (then statement by statement): a
//! failure leaves nothing of it applied, and resume starts it again. MySQL/MariaDB DDL commits
//! by itself: statements before the failed one stay applied.
//!
//! Row counts of every table before the first statement (kept in the journal across resumes)
//! and after the last are reported; a table that lost rows is flagged.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::schema::{SchemaError, load_script, read_catalog, resolve_script};
use crate::script::Statement;
use crate::{DbError, DbUrl, Session, Vendor};

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
enum Entry {
    /// Row counts before the first statement of the first attempt.
    Counts {
        rows: BTreeMap<String, u64>,
    },
    Started(Mark),
    Done(Mark),
    Failed {
        mark: Mark,
        error: String,
    },
    /// A transactional script rolled back: none of its statements is applied.
    RolledBack {
        script: PathBuf,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    script: PathBuf,
    statement: usize,
    line: usize,
    hash: String,
}

/// What one script did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRun {
    pub script: PathBuf,
    pub sha256: String,
    pub statements: usize,
    /// Statements already applied by an earlier attempt (resume).
    pub already_applied: usize,
    pub applied_now: usize,
    /// PostgreSQL: the script ran in one transaction.
    pub transactional: bool,
}

impl ScriptRun {
    /// One line for people: counts and whether it ran in one transaction.
    pub fn summary(&self) -> String {
        format!(
            "{} statements, {} applied now, {} by an earlier attempt{}",
            self.statements,
            self.applied_now,
            self.already_applied,
            if self.transactional {
                " (one transaction)"
            } else {
                ""
            }
        )
    }
}

/// A table's rows before and after.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowCount {
    pub table: String,
    pub before: Option<u64>,
    pub after: Option<u64>,
}

impl RowCount {
    /// Fewer rows after than before (or the table is gone).
    pub fn lost_rows(&self) -> bool {
        match (self.before, self.after) {
            (Some(b), Some(a)) => a < b,
            (Some(b), None) => b > 0,
            _ => false,
        }
    }
}

/// The outcome of [`migrate`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MigrationReport {
    pub scripts: Vec<ScriptRun>,
    pub rows: Vec<RowCount>,
    pub elapsed_ms: u64,
}

impl MigrationReport {
    /// Tables that lost rows, as `TABLE before -> after`.
    pub fn lost(&self) -> Vec<String> {
        self.rows
            .iter()
            .filter(|r| r.lost_rows())
            .map(|r| {
                let after = r.after.map_or_else(|| "gone".to_owned(), |a| a.to_string());
                format!("{} {} -> {after}", r.table, r.before.unwrap_or(0))
            })
            .collect()
    }
}

fn hash(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn journal_error(path: &Path, reason: impl Into<String>) -> SchemaError {
    SchemaError::Journal {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn read_journal(path: &Path) -> Result<Vec<Entry>, SchemaError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(SchemaError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
    };
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).map_err(|e| journal_error(path, format!("line {}: {e}", i + 1)))
        })
        .collect()
}

struct Journal {
    path: PathBuf,
    file: std::fs::File,
}

impl Journal {
    fn open(path: &Path) -> Result<Journal, SchemaError> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| journal_error(path, e.to_string()))?;
        Ok(Journal {
            path: path.to_path_buf(),
            file,
        })
    }

    fn append(&mut self, entry: &Entry) -> Result<(), SchemaError> {
        let line =
            serde_json::to_string(entry).map_err(|e| journal_error(&self.path, e.to_string()))?;
        writeln!(self.file, "{line}")
            .and_then(|()| self.file.sync_data())
            .map_err(|e| journal_error(&self.path, e.to_string()))
    }
}

/// Exact row counts of every table of `db`.
pub fn row_counts(db: &DbUrl) -> Result<BTreeMap<String, u64>, SchemaError> {
    let catalog = read_catalog(db)?;
    let mut s = Session::read_only(db).map_err(db_error("counting rows"))?;
    let mut out = BTreeMap::new();
    for (key, table) in &catalog.tables {
        let sql = match db.vendor() {
            Vendor::MySql => format!(
                "SELECT CAST(COUNT(*) AS CHAR) FROM `{}`",
                table.name.replace('`', "``")
            ),
            _ => format!(
                "SELECT count(*)::text FROM \"{}\"",
                table.name.replace('"', "\"\"")
            ),
        };
        let rows = s
            .query_text(&sql)
            .map_err(db_error(format!("counting rows of {key}")))?;
        let n = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.insert(key.clone(), n);
    }
    Ok(out)
}

fn db_error(context: impl Into<String>) -> impl FnOnce(DbError) -> SchemaError {
    let context = context.into();
    move |source| SchemaError::Db {
        context,
        source: Box::new(source),
    }
}

/// Statements PostgreSQL refuses inside a transaction block, or that manage their own.
fn needs_autocommit(statements: &[Statement]) -> bool {
    statements.iter().any(|st| {
        let head: String = st
            .text
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        head.starts_with("BEGIN")
            || head.starts_with("COMMIT")
            || head.starts_with("START TRANSACTION")
            || head.starts_with("VACUUM")
            || head.starts_with("CREATE DATABASE")
            || head.starts_with("DROP DATABASE")
            || head.contains("CONCURRENTLY")
            || head.starts_with("ALTER SYSTEM")
    })
}

/// The migration scripts `paths` name, in order: a file as given, a directory's vendor
/// script (`postgresql.sql`, `mysql.sql`, as WSO2's migration resources lay them out).
pub fn resolve(paths: &[PathBuf], vendor: Vendor) -> Result<Vec<PathBuf>, SchemaError> {
    paths.iter().map(|p| resolve_script(p, vendor)).collect()
}

/// Applies `scripts` to `db` (staging: the caller's to write), journalled in `journal`; run
/// again with the same journal to resume at the statement that failed.
pub fn migrate(
    db: &DbUrl,
    scripts: &[PathBuf],
    journal_path: &Path,
) -> Result<MigrationReport, SchemaError> {
    let started = Instant::now();
    let vendor = db.vendor();
    let scripts = resolve(scripts, vendor)?;
    let loaded = scripts
        .iter()
        .map(|p| {
            let text = std::fs::read(p).map_err(|source| SchemaError::Read {
                path: p.clone(),
                source,
            })?;
            Ok((
                p.clone(),
                hex::encode(Sha256::digest(&text)),
                load_script(p, vendor)?,
            ))
        })
        .collect::<Result<Vec<_>, SchemaError>>()?;
    let past = read_journal(journal_path)?;
    let mut journal = Journal::open(journal_path)?;
    let before = match past.iter().find_map(|e| match e {
        Entry::Counts { rows } => Some(rows.clone()),
        _ => None,
    }) {
        Some(rows) => rows,
        None => {
            let rows = row_counts(db)?;
            journal.append(&Entry::Counts { rows: rows.clone() })?;
            rows
        }
    };
    let mut done: BTreeMap<(PathBuf, usize), String> = BTreeMap::new();
    for e in &past {
        match e {
            Entry::Done(m) => {
                done.insert((m.script.clone(), m.statement), m.hash.clone());
            }
            Entry::RolledBack { script } => done.retain(|(s, _), _| s != script),
            _ => {}
        }
    }
    let mut session = Session::read_write(db).map_err(db_error("opening staging"))?;
    let mut runs = Vec::new();
    for (path, sha256, statements) in &loaded {
        let mut already = 0;
        for st in statements {
            if let Some(h) = done.get(&(path.clone(), st.number)) {
                if *h != hash(&st.text) {
                    return Err(journal_error(
                        journal_path,
                        format!(
                            "{}:{}: statement {} was applied and the script now reads differently",
                            path.display(),
                            st.line,
                            st.number
                        ),
                    ));
                }
                already += 1;
            }
        }
        let pending: Vec<&Statement> = statements
            .iter()
            .filter(|st| !done.contains_key(&(path.clone(), st.number)))
            .collect();
        let transactional =
            vendor == Vendor::Postgres && !needs_autocommit(statements) && !pending.is_empty();
        run_script(&mut session, &mut journal, path, &pending, transactional)?;
        runs.push(ScriptRun {
            script: path.clone(),
            sha256: sha256.clone(),
            statements: statements.len(),
            already_applied: already,
            applied_now: pending.len(),
            transactional,
        });
    }
    drop(session);
    let after = row_counts(db)?;
    let mut tables: Vec<&String> = before.keys().chain(after.keys()).collect();
    tables.sort();
    tables.dedup();
    let rows = tables
        .into_iter()
        .map(|t| RowCount {
            table: t.clone(),
            before: before.get(t).copied(),
            after: after.get(t).copied(),
        })
        .collect();
    Ok(MigrationReport {
        scripts: runs,
        rows,
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

fn run_script(
    session: &mut Session,
    journal: &mut Journal,
    path: &Path,
    pending: &[&Statement],
    transactional: bool,
) -> Result<(), SchemaError> {
    let mark = |st: &Statement| Mark {
        script: path.to_path_buf(),
        statement: st.number,
        line: st.line,
        hash: hash(&st.text),
    };
    if transactional {
        session.execute("BEGIN").map_err(db_error("BEGIN"))?;
    }
    for st in pending {
        journal.append(&Entry::Started(mark(st)))?;
        if let Err(source) = session.execute(&st.text) {
            let error = crate::error_chain(&source);
            journal.append(&Entry::Failed {
                mark: mark(st),
                error,
            })?;
            if transactional {
                // The failed transaction is rolled back; nothing of this script stays.
                let _ = session.execute("ROLLBACK");
                journal.append(&Entry::RolledBack {
                    script: path.to_path_buf(),
                })?;
            }
            return Err(SchemaError::Statement {
                path: path.to_path_buf(),
                line: st.line,
                number: st.number,
                first_line: st.first_line().to_owned(),
                source: Box::new(source),
            });
        }
        if !transactional {
            journal.append(&Entry::Done(mark(st)))?;
        }
    }
    if transactional {
        session.execute("COMMIT").map_err(db_error("COMMIT"))?;
        for st in pending {
            journal.append(&Entry::Done(mark(st)))?;
        }
    }
    Ok(())
}
