//! Schema proof: does staging have the shape the new product creates on a fresh install?
//!
//! [`prove`] reads staging's catalog (read-only), runs the new product home's fresh-install
//! scripts in a scratch database on staging's server — uniquely named, created with
//! staging's character set and collation, dropped afterwards even on failure — reads that
//! catalog too, and [`diff`]s the two. [`align`] runs the safe statements a diff proposes.

pub mod catalog;
pub mod diff;

use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

pub use catalog::Catalog;
pub use diff::{Class, Difference, SchemaDiff, diff};

use crate::script::{ScriptError, Statement, split};
use crate::{DbError, DbUrl, Session, Vendor};

/// Every scratch database name starts with this.
pub const SCRATCH_PREFIX: &str = "carbon_proof_";

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("{}: cannot read the script", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: no {vendor} fresh-install script in this directory", path.display())]
    NoScript { path: PathBuf, vendor: Vendor },
    #[error("{}", path.display())]
    Split {
        path: PathBuf,
        #[source]
        source: ScriptError,
    },
    #[error("{}:{line}: statement {number} `{first_line}` failed", path.display())]
    Statement {
        path: PathBuf,
        line: usize,
        number: usize,
        first_line: String,
        #[source]
        source: Box<DbError>,
    },
    #[error("migration journal {}: {reason}", path.display())]
    Journal { path: PathBuf, reason: String },
    #[error("{context}")]
    Db {
        context: String,
        #[source]
        source: Box<DbError>,
    },
}

impl SchemaError {
    /// A script that cannot be read or split is input that cannot be used; a statement the
    /// server refused, or a session that failed, is the system underneath.
    pub fn kind(&self) -> carbon_fs::ErrorKind {
        use carbon_fs::ErrorKind;
        match self {
            SchemaError::Read { .. } | SchemaError::Statement { .. } => ErrorKind::Io,
            SchemaError::Db { source, .. } => source.kind(),
            SchemaError::NoScript { .. } | SchemaError::Journal { .. } => ErrorKind::BadInput,
            SchemaError::Split { source, .. } => match source {
                ScriptError::Unsupported { .. } | ScriptError::Unterminated { .. } => {
                    ErrorKind::BadInput
                }
            },
        }
    }

    fn db(context: impl Into<String>) -> impl FnOnce(DbError) -> SchemaError {
        let context = context.into();
        move |source| SchemaError::Db {
            context,
            source: Box::new(source),
        }
    }
}

/// The fresh-install script of `vendor` in `dir` (`postgresql.sql`, `mysql.sql`, or the
/// message broker's `postgresql-mb.sql` / `mysql-mb.sql`), or `path` itself when it is a file.
pub fn resolve_script(path: &Path, vendor: Vendor) -> Result<PathBuf, SchemaError> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let Some(stem) = vendor.dbscript_stem() else {
        return Err(SchemaError::NoScript {
            path: path.to_path_buf(),
            vendor,
        });
    };
    [format!("{stem}.sql"), format!("{stem}-mb.sql")]
        .into_iter()
        .map(|name| path.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| SchemaError::NoScript {
            path: path.to_path_buf(),
            vendor,
        })
}

/// A script read and split into statements for `vendor`.
pub fn load_script(path: &Path, vendor: Vendor) -> Result<Vec<Statement>, SchemaError> {
    let text = std::fs::read_to_string(path).map_err(|source| SchemaError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    split(vendor, &text).map_err(|source| SchemaError::Split {
        path: path.to_path_buf(),
        source,
    })
}

/// Runs every statement of `path` on `session`, stopping at the first failure with
/// `script:line`, the statement's first line and the server's error.
/// A directory stands for its vendor script ([`resolve_script`]).
pub fn run_script(session: &mut Session, path: &Path) -> Result<usize, SchemaError> {
    let resolved = resolve_script(path, session.vendor())?;
    let path = resolved.as_path();
    let statements = load_script(path, session.vendor())?;
    for st in &statements {
        session
            .execute(&st.text)
            .map_err(|source| SchemaError::Statement {
                path: path.to_path_buf(),
                line: st.line,
                number: st.number,
                first_line: st.first_line().to_owned(),
                source: Box::new(source),
            })?;
    }
    Ok(statements.len())
}

/// The outcome of a schema proof.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaProof {
    /// The fresh-install scripts, in the order they ran.
    pub scripts: Vec<PathBuf>,
    pub staging_tables: usize,
    pub fresh_tables: usize,
    pub diff: SchemaDiff,
    pub elapsed_ms: u64,
}

impl SchemaProof {
    /// Nothing the fresh install has is missing from staging.
    pub fn is_ok(&self) -> bool {
        self.diff.count(Class::Missing) == 0
    }
}

/// A database of ours on staging's server, dropped when this goes out of scope.
struct Scratch {
    url: DbUrl,
    dropped: bool,
}

impl Scratch {
    fn create(staging: &DbUrl, charset: &(String, String, String)) -> Result<Scratch, SchemaError> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let name = format!(
            "{SCRATCH_PREFIX}{}_{:x}",
            std::process::id(),
            nanos % (1 << 48)
        );
        let (a, b, c) = charset;
        let options = match staging.vendor() {
            Vendor::Postgres => {
                format!("TEMPLATE template0 ENCODING '{a}' LC_COLLATE '{b}' LC_CTYPE '{c}'")
            }
            _ => format!("CHARACTER SET {a} COLLATE {b}"),
        };
        let url = crate::session::create_database_with(staging, &name, &options).map_err(
            SchemaError::db(format!("creating the scratch database {name}")),
        )?;
        Ok(Scratch {
            url,
            dropped: false,
        })
    }

    fn drop_now(&mut self) -> Result<(), SchemaError> {
        self.dropped = true;
        crate::drop_database(&self.url, self.url.database()).map_err(SchemaError::db(format!(
            "dropping the scratch database {}",
            self.url.database()
        )))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if !self.dropped {
            let _ = crate::drop_database(&self.url, self.url.database());
        }
    }
}

/// Only PostgreSQL and MySQL/MariaDB servers can run scripts in a scratch database.
fn refuse_vendor(staging: &DbUrl, scripts: &[PathBuf]) -> Result<(), SchemaError> {
    let vendor = staging.vendor();
    if matches!(vendor, Vendor::Postgres | Vendor::MySql) {
        return Ok(());
    }
    Err(SchemaError::Split {
        path: scripts.first().cloned().unwrap_or_default(),
        source: ScriptError::Unsupported { vendor },
    })
}

/// The catalog a fresh install creates: `scripts` run in a scratch database on the server of
/// `staging`, created with `staging`'s character set and collation, then dropped.
pub fn fresh_catalog(staging: &DbUrl, scripts: &[PathBuf]) -> Result<Catalog, SchemaError> {
    fresh_catalog_on(staging, staging, scripts)
}

fn fresh_catalog_on(
    staging: &DbUrl,
    server: &DbUrl,
    scripts: &[PathBuf],
) -> Result<Catalog, SchemaError> {
    let vendor = staging.vendor();
    refuse_vendor(staging, scripts)?;
    let scripts = scripts
        .iter()
        .map(|p| resolve_script(p, vendor))
        .collect::<Result<Vec<_>, _>>()?;
    // Refuse a script that cannot be split before creating anything.
    for path in &scripts {
        load_script(path, vendor)?;
    }
    let charset = {
        let mut s = Session::read_only(staging).map_err(SchemaError::db("reading staging"))?;
        catalog::charset(&mut s).map_err(SchemaError::db("reading staging's character set"))?
    };
    let mut scratch = Scratch::create(server, &charset)?;
    let catalog = {
        let mut s = Session::read_write(&scratch.url)
            .map_err(SchemaError::db("opening the scratch database"))?;
        for path in &scripts {
            run_script(&mut s, path)?;
        }
        catalog::read(&mut s).map_err(SchemaError::db("reading the fresh schema"))?
    };
    scratch.drop_now()?;
    Ok(catalog)
}

/// Proves `staging` against the fresh-install `scripts` (files, or directories holding the
/// vendor's script).
pub fn prove(staging: &DbUrl, scripts: &[PathBuf]) -> Result<SchemaProof, SchemaError> {
    prove_on(staging, staging, scripts)
}

/// [`prove`] for `db` (read only), with the scratch database on the server of `server` (the
/// plan proves a source this way, on its staging server, before staging exists).
pub fn prove_on(
    db: &DbUrl,
    server: &DbUrl,
    scripts: &[PathBuf],
) -> Result<SchemaProof, SchemaError> {
    let started = Instant::now();
    refuse_vendor(db, scripts)?;
    let resolved = scripts
        .iter()
        .map(|p| resolve_script(p, db.vendor()))
        .collect::<Result<Vec<_>, _>>()?;
    let staging_catalog = read_catalog(db)?;
    let fresh = fresh_catalog_on(db, server, &resolved)?;
    let staging = db;
    Ok(SchemaProof {
        scripts: resolved,
        staging_tables: staging_catalog.tables.len(),
        fresh_tables: fresh.tables.len(),
        diff: diff(staging.vendor(), &staging_catalog, &fresh),
        elapsed_ms: started.elapsed().as_millis() as u64,
    })
}

/// `db`'s catalog, read in a read-only session.
pub fn read_catalog(db: &DbUrl) -> Result<Catalog, SchemaError> {
    let mut s = Session::read_only(db).map_err(SchemaError::db(format!("reading {db}")))?;
    catalog::read(&mut s).map_err(SchemaError::db(format!("reading the schema of {db}")))
}

/// The fresh-install scripts of a product home's `dbscripts` directory (its top level, then
/// each sub-directory: `apimgt`, `identity`, `mb-store`, …) that create a table `db` holds:
/// a datasource is proved against the scripts that made its tables, not every product part.
pub fn scripts_for(db: &DbUrl, dbscripts: &Path) -> Result<Vec<PathBuf>, SchemaError> {
    let vendor = db.vendor();
    let held = read_catalog(db)?;
    let mut dirs = vec![dbscripts.to_path_buf()];
    let mut subdirs: Vec<PathBuf> = std::fs::read_dir(dbscripts)
        .map_err(|source| SchemaError::Read {
            path: dbscripts.to_path_buf(),
            source,
        })?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subdirs.sort();
    dirs.extend(subdirs);
    let mut chosen = Vec::new();
    for dir in dirs {
        let Ok(script) = resolve_script(&dir, vendor) else {
            continue;
        };
        let creates = created_tables(&load_script(&script, vendor)?);
        if creates.iter().any(|t| held.tables.contains_key(t)) {
            chosen.push(script);
        }
    }
    Ok(chosen)
}

/// Upper-case names of the tables `CREATE TABLE [IF NOT EXISTS] name` statements create.
pub fn created_tables(statements: &[Statement]) -> Vec<String> {
    statements
        .iter()
        .filter_map(|st| {
            let words: Vec<&str> = st.text.split_whitespace().take(6).collect();
            let upper: Vec<String> = words.iter().map(|w| w.to_uppercase()).collect();
            if upper.first().map(String::as_str) != Some("CREATE")
                || !upper.contains(&"TABLE".to_owned())
            {
                return None;
            }
            let at = upper.iter().position(|w| w == "TABLE")? + 1;
            let at = if upper.get(at).map(String::as_str) == Some("IF") {
                at + 3
            } else {
                at
            };
            let name = words.get(at)?.split('(').next()?;
            let name = name.trim_matches(|c| matches!(c, '`' | '"' | '[' | ']'));
            Some(name.rsplit('.').next()?.to_uppercase())
        })
        .collect()
}

/// Runs `diff`'s safe statements on `staging` (a database this run owns), in order; returns
/// how many ran.
pub fn align(staging: &DbUrl, diff: &SchemaDiff) -> Result<usize, SchemaError> {
    let statements = diff.align_statements();
    if statements.is_empty() {
        return Ok(0);
    }
    let mut s = Session::read_write(staging).map_err(SchemaError::db("opening staging"))?;
    for sql in &statements {
        s.execute(sql)
            .map_err(SchemaError::db(format!("align: {sql}")))?;
    }
    Ok(statements.len())
}
