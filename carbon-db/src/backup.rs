//! Before the copy: who else is connected to a source, and a native, checksummed backup of it.
//!
//! The guide asks for a backup of the database before anything else, made with the vendor's
//! own tool so that an operator can restore it without this program: `pg_dump -Fc` on
//! PostgreSQL, `mariadb-dump --single-transaction` (or `mysqldump`) on MySQL/MariaDB, the
//! backup API on SQLite, the files themselves for H2. Passwords reach the tools through their
//! environment (`PGPASSWORD`, `MYSQL_PWD`), never through the command line, which other users
//! of the machine can read in `/proc`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use carbon_fs::sha256_file as hash_file;
use serde::{Deserialize, Serialize};

use crate::{DbError, DbUrl, Vendor};

/// A client session on a database other than our own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Session {
    pub user: String,
    pub host: String,
    pub application: String,
}

/// The other client sessions on `url`'s database (`pg_stat_activity`'s client backends — an
/// autovacuum worker after a busy hour is the server's own, not a writer —,
/// `information_schema.PROCESSLIST`). Embedded databases have none to list.
pub fn other_sessions(url: &DbUrl) -> Result<Vec<Session>, DbError> {
    match url.vendor() {
        Vendor::Postgres => postgres_sessions(url),
        Vendor::MySql => mysql_sessions(url),
        Vendor::Sqlite | Vendor::H2 => Ok(Vec::new()),
        _ => Err(DbError::not_copyable(url)),
    }
}

fn postgres_sessions(url: &DbUrl) -> Result<Vec<Session>, DbError> {
    let mut client = url.connect_postgres(&url.postgres_config())?;
    let rows = client
        .query(
            "SELECT coalesce(usename, ''), coalesce(client_addr::text, 'local'), \
                    coalesce(application_name, '') \
             FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() \
             AND backend_type = 'client backend' \
             ORDER BY 1, 2",
            &[],
        )
        .map_err(|e| DbError::sql(url, "listing sessions", e))?;
    Ok(rows
        .iter()
        .map(|r| Session {
            user: r.get(0),
            host: r.get(1),
            application: r.get(2),
        })
        .collect())
}

fn mysql_sessions(url: &DbUrl) -> Result<Vec<Session>, DbError> {
    use mysql::prelude::Queryable;
    let mut conn = url
        .connect_mysql(url.mysql_builder(false))
        .map_err(|e| DbError::Connect {
            url: url.to_string(),
            detail: crate::error::one_line(&e.to_string()),
        })?;
    let rows: Vec<(String, String)> = conn
        .exec(
            "SELECT USER, HOST FROM information_schema.PROCESSLIST \
             WHERE DB = ? AND ID <> CONNECTION_ID() ORDER BY USER, HOST",
            (url.database(),),
        )
        .map_err(|e| DbError::sql(url, "listing sessions", e))?;
    Ok(rows
        .into_iter()
        .map(|(user, host)| Session {
            user,
            host,
            application: String::new(),
        })
        .collect())
}

/// The program a vendor's native backup needs, if any.
pub fn dump_tool(vendor: Vendor) -> Option<&'static [&'static str]> {
    match vendor {
        Vendor::Postgres => Some(&["pg_dump"]),
        Vendor::MySql => Some(&["mariadb-dump", "mysqldump"]),
        _ => None,
    }
}

/// The first of `names` found on `PATH`.
pub fn find_tool(names: &[&str]) -> Option<PathBuf> {
    let paths = std::env::var_os("PATH")?;
    names
        .iter()
        .flat_map(|name| std::env::split_paths(&paths).map(move |dir| dir.join(name)))
        .find(|p| p.is_file())
}

/// One backup file, checksummed after it was written and synced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupFile {
    pub path: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    /// `pg_dump -Fc -Z1`, `mariadb-dump --single-transaction`, `sqlite backup API`, `copy`.
    pub method: String,
}

/// Backs up `url` into `dir` (created if needed) with the vendor's native tool. Files are
/// written under a temporary name and renamed once complete and synced.
pub fn native_backup(url: &DbUrl, dir: &Path, name: &str) -> Result<Vec<BackupFile>, DbError> {
    std::fs::create_dir_all(dir).map_err(|source| DbError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    match url.vendor() {
        Vendor::Postgres => Ok(vec![postgres_dump(
            url,
            &dir.join(format!("{name}.pgdump")),
        )?]),
        Vendor::MySql => Ok(vec![mysql_dump(url, &dir.join(format!("{name}.sql")))?]),
        Vendor::Sqlite => Ok(vec![sqlite_backup(
            url,
            &dir.join(format!("{name}.sqlite")),
        )?]),
        Vendor::H2 => h2_backup(url, dir),
        _ => Err(DbError::not_copyable(url)),
    }
}

fn postgres_dump(url: &DbUrl, dest: &Path) -> Result<BackupFile, DbError> {
    let tool = require_tool(url)?;
    let mut cmd = Command::new(&tool);
    // Level 1: most of a Carbon database's bytes are blobs gzip barely shrinks, and the
    // default level spends several times the CPU for a few per cent (the backup runs beside
    // the copy, on the same cores).
    cmd.args(["-Fc", "-Z1", "--no-sync", "-h", url.host()])
        .args(["-p", &url.port().to_string()])
        .args(["-U", url.user().unwrap_or("postgres")])
        .args(["-d", url.database()])
        .env("PGCONNECT_TIMEOUT", "10")
        .envs(crate::tls::libpq_env(url));
    if let Some(password) = url.password() {
        cmd.env("PGPASSWORD", password);
    }
    run_dump(url, cmd, dest, "pg_dump -Fc -Z1")
}

fn mysql_dump(url: &DbUrl, dest: &Path) -> Result<BackupFile, DbError> {
    let tool = require_tool(url)?;
    let mut cmd = Command::new(&tool);
    cmd.args([
        "--single-transaction",
        "--routines",
        "--triggers",
        "--events",
        "--hex-blob",
    ])
    .args(["--default-character-set=utf8mb4", "--protocol=TCP"])
    .args(crate::tls::mysql_tool_args(url))
    .arg(format!("--host={}", url.host()))
    .arg(format!("--port={}", url.port()))
    .arg(format!("--user={}", url.user().unwrap_or("root")))
    .arg(url.database());
    if let Some(password) = url.password() {
        cmd.env("MYSQL_PWD", password);
    }
    let method = format!("{} --single-transaction", file_name(&tool));
    run_dump(url, cmd, dest, &method)
}

fn require_tool(url: &DbUrl) -> Result<PathBuf, DbError> {
    let names = dump_tool(url.vendor()).unwrap_or(&[]);
    find_tool(names).ok_or_else(|| DbError::Tool {
        tool: names.join(" or "),
        url: url.to_string(),
        detail: "not found on PATH (install the vendor's client tools)".into(),
    })
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Runs a dump tool into `dest.partial`, then syncs, hashes and renames it.
fn run_dump(
    url: &DbUrl,
    mut cmd: Command,
    dest: &Path,
    method: &str,
) -> Result<BackupFile, DbError> {
    let partial = partial_name(dest);
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| DbError::Io { path, source }
    };
    // A new file, never the old one truncated: a dump tool left running by an attempt that
    // was killed keeps writing into the unlinked file, not into this one.
    let _ = std::fs::remove_file(&partial);
    let out = File::create(&partial).map_err(io(&partial))?;
    let output = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::piped())
        .output()
        .map_err(io(dest))?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        return Err(DbError::Tool {
            tool: method.to_owned(),
            url: url.to_string(),
            detail: crate::redact_raw(&crate::error::one_line(&String::from_utf8_lossy(
                &output.stderr,
            ))),
        });
    }
    finish(&partial, dest, method)
}

fn partial_name(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

fn finish(partial: &Path, dest: &Path, method: &str) -> Result<BackupFile, DbError> {
    let io = |source| DbError::Io {
        path: dest.to_path_buf(),
        source,
    };
    File::open(partial).and_then(|f| f.sync_all()).map_err(io)?;
    let (bytes, sha256) = hash_file(partial).map_err(io)?;
    std::fs::rename(partial, dest).map_err(io)?;
    if let Some(parent) = dest.parent() {
        File::open(parent).and_then(|d| d.sync_all()).map_err(io)?;
    }
    Ok(BackupFile {
        path: dest.to_path_buf(),
        bytes,
        sha256,
        method: method.to_owned(),
    })
}

fn sqlite_backup(url: &DbUrl, dest: &Path) -> Result<BackupFile, DbError> {
    let source_path = url.path().map(Path::to_path_buf).unwrap_or_default();
    let sql = |e: rusqlite::Error| DbError::sql(url, "backing up", e);
    let source = rusqlite::Connection::open_with_flags(
        &source_path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    let partial = partial_name(dest);
    let _ = std::fs::remove_file(&partial);
    let mut target = rusqlite::Connection::open(&partial).map_err(sql)?;
    {
        let backup = rusqlite::backup::Backup::new(&source, &mut target).map_err(sql)?;
        // One step of all pages: a consistent copy in one read transaction.
        while backup.step(-1).map_err(sql)? != rusqlite::backup::StepResult::Done {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    }
    drop(target);
    finish(&partial, dest, "sqlite backup API")
}

fn h2_backup(url: &DbUrl, dir: &Path) -> Result<Vec<BackupFile>, DbError> {
    let (_, files) = crate::h2::source_files(url)?;
    let mut out = Vec::new();
    for (name, path) in files {
        let dest = dir.join(&name);
        let partial = partial_name(&dest);
        let mut reader = File::open(&path).map_err(|source| DbError::Io {
            path: path.clone(),
            source,
        })?;
        let mut writer = File::create(&partial).map_err(|source| DbError::Io {
            path: partial.clone(),
            source,
        })?;
        std::io::copy(&mut reader, &mut writer)
            .and_then(|_| writer.flush())
            .map_err(|source| DbError::Io {
                path: dest.clone(),
                source,
            })?;
        out.push(finish(&partial, &dest, "copy")?);
    }
    Ok(out)
}
