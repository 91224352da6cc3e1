//! What pg_dump gives (pre-data and post-data under the exported snapshot) and applying
//! post-data in parallel phases.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::Instant;

use postgres::Client;

use super::connect_target;
use crate::journal::Journal;
use crate::{DbError, DbUrl, KindTime};
use carbon_fs::run_pool;

pub(super) fn pg_dump_binary() -> PathBuf {
    if let Some(p) = std::env::var_os("CARBON_PG_DUMP") {
        return PathBuf::from(p);
    }
    // The newest installed client: pg_dump must be at least the server's major version.
    let mut best: Option<(u32, PathBuf)> = None;
    if let Ok(dir) = std::fs::read_dir("/usr/lib/postgresql") {
        for entry in dir.flatten() {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok();
            let bin = entry.path().join("bin/pg_dump");
            if let Some(v) = version.filter(|_| bin.exists())
                && best.as_ref().is_none_or(|(b, _)| v > *b)
            {
                best = Some((v, bin));
            }
        }
    }
    best.map_or_else(|| PathBuf::from("pg_dump"), |(_, p)| p)
}

/// Runs pg_dump for one section under the exported snapshot and returns the SQL without
/// psql meta-commands (`\restrict`, `\connect`).
pub(super) fn pg_dump_section(
    url: &DbUrl,
    section: &str,
    snapshot: &str,
) -> Result<String, DbError> {
    let tool = pg_dump_binary();
    let mut cmd = Command::new(&tool);
    cmd.args([
        "--schema-only",
        "--no-owner",
        "--no-privileges",
        "--no-publications",
        "--no-subscriptions",
    ])
    .arg(format!("--section={section}"))
    .arg(format!("--snapshot={snapshot}"))
    .arg("--host")
    .arg(url.host())
    .arg("--port")
    .arg(url.port().to_string())
    .arg("--username")
    .arg(url.user().unwrap_or("postgres"))
    .arg("--dbname")
    .arg(url.database())
    .env("PGAPPNAME", "carbon-upgrade")
    .env("PGCONNECT_TIMEOUT", "10")
    .envs(crate::tls::libpq_env(url))
    .env_remove("PGPASSWORD");
    if let Some(pw) = url.password() {
        cmd.env("PGPASSWORD", pw);
    } else {
        cmd.arg("--no-password");
    }
    let out = cmd.output().map_err(|e| DbError::Tool {
        tool: tool.display().to_string(),
        url: url.to_string(),
        detail: e.to_string(),
    })?;
    if !out.status.success() {
        return Err(DbError::Tool {
            tool: format!("pg_dump --section={section}"),
            url: url.to_string(),
            detail: crate::error::one_line(&String::from_utf8_lossy(&out.stderr)),
        });
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n"))
}

/// A post-data script split at pg_dump's TOC comments: (type, SQL).
pub(super) fn split_post_data(script: &str) -> (String, Vec<(String, String)>) {
    let mut preamble = String::new();
    let mut blocks: Vec<(String, String)> = Vec::new();
    for line in script.lines() {
        if let Some(rest) = line.strip_prefix("-- Name: ") {
            let kind = rest
                .split("; Type: ")
                .nth(1)
                .and_then(|t| t.split(';').next())
                .unwrap_or("")
                .to_owned();
            blocks.push((kind, String::new()));
            continue;
        }
        if line.starts_with("--") {
            continue;
        }
        match blocks.last_mut() {
            Some((_, sql)) => {
                sql.push_str(line);
                sql.push('\n');
            }
            None => {
                preamble.push_str(line);
                preamble.push('\n');
            }
        }
    }
    blocks.retain(|(_, sql)| !sql.trim().is_empty());
    (preamble, blocks)
}

/// The report's name for a post-data block's kind.
fn kind_name(kind: &str, sql: &str) -> &'static str {
    match kind {
        "INDEX" => "indexes",
        "CONSTRAINT" if sql.contains("PRIMARY KEY") => "primary keys",
        "CONSTRAINT" => "unique constraints",
        "FK CONSTRAINT" => "foreign keys",
        _ => "other",
    }
}

/// The table a post-data block works on (`ALTER TABLE [ONLY] t …`, `CREATE … ON [ONLY] t …`),
/// as pg_dump qualifies it.
fn block_table(sql: &str) -> Option<&str> {
    let s = sql.trim_start();
    let rest = if let Some(rest) = s.strip_prefix("ALTER TABLE ") {
        rest
    } else if s.starts_with("CREATE ") {
        &s[s.find(" ON ")? + 4..]
    } else {
        return None;
    };
    let rest = rest.strip_prefix("ONLY ").unwrap_or(rest);
    rest.split_whitespace().next()
}

/// Blocks of tables smaller than this go several to a round trip (one implicit transaction).
const SMALL_TABLE: i64 = 8 << 20;
/// At most this many blocks to a round trip.
const BATCH: usize = 40;

/// The post-data blocks as units of work, biggest table first (the longest builds start
/// first and spread over the workers): a big table's blocks one by one (two indexes of one
/// table build in parallel), a small table's blocks together with other small tables'.
/// A table's blocks never straddle two batches, so two sessions' batches lock disjoint
/// tables and cannot deadlock.
fn work_items<'b>(
    mut items: Vec<usize>,
    size: &dyn Fn(usize) -> i64,
    table: impl Fn(usize) -> Option<&'b str>,
) -> Vec<Vec<usize>> {
    items.sort_by_key(|&i| std::cmp::Reverse(size(i)));
    let mut out: Vec<Vec<usize>> = Vec::new();
    let mut batch: Vec<usize> = Vec::new();
    let mut k = 0;
    while k < items.len() {
        let i = items[k];
        if size(i) >= SMALL_TABLE || table(i).is_none() {
            out.push(vec![i]);
            k += 1;
            continue;
        }
        // This small table's blocks (adjacent: same size), all into one batch.
        let mut end = k + 1;
        while end < items.len() && table(items[end]) == table(i) {
            end += 1;
        }
        if !batch.is_empty() && batch.len() + (end - k) > BATCH {
            out.push(std::mem::take(&mut batch));
        }
        batch.extend(&items[k..end]);
        k = end;
    }
    if !batch.is_empty() {
        out.push(batch);
    }
    out
}

/// Applies post-data (indexes and constraints in parallel, then foreign keys, then the
/// rest), journalling each block; returns the statements' count and summed time per kind
/// (a batch's time shared evenly by its statements).
pub(super) fn apply_post_data(
    to: &DbUrl,
    script: &str,
    sizes: &BTreeMap<String, i64>,
    jobs: usize,
    done: &std::collections::BTreeSet<String>,
    journal: &mut Journal,
) -> Result<Vec<KindTime>, DbError> {
    let (preamble, blocks) = split_post_data(script);
    let resumed = !done.is_empty();
    let key = |i: usize| format!("post-data {i}");
    let exec = |c: &mut Client, sql: &str, what: &str| -> Result<(), DbError> {
        match c.batch_execute(sql) {
            Ok(()) => Ok(()),
            // Done before a crash but not journalled: already there is fine on resume.
            Err(e)
                if resumed
                    && matches!(
                        e.code(),
                        Some(c) if *c == postgres::error::SqlState::DUPLICATE_TABLE
                            || *c == postgres::error::SqlState::DUPLICATE_OBJECT
                            || *c == postgres::error::SqlState::INVALID_TABLE_DEFINITION
                    ) =>
            {
                Ok(())
            }
            Err(e) => Err(DbError::sql(to, format!("post-data {what}"), e)),
        }
    };
    let journal_m = Mutex::new(journal);
    let kinds_m: Mutex<Vec<KindTime>> = Mutex::new(Vec::new());
    let size = |i: usize| {
        block_table(&blocks[i].1)
            .and_then(|t| sizes.get(t))
            .copied()
            .unwrap_or(0)
    };
    let phase = |kinds: &dyn Fn(&str) -> bool, parallel: bool| -> Result<(), DbError> {
        let items: Vec<usize> = blocks
            .iter()
            .enumerate()
            .filter(|(i, (k, _))| kinds(k) && !done.contains(&key(*i)))
            .map(|(i, _)| i)
            .collect();
        run_pool(
            if parallel { jobs } else { 1 },
            work_items(items, &size, |i| block_table(&blocks[i].1)),
            || {
                let mut c = connect_target(to)?;
                c.batch_execute(&preamble)
                    .map_err(|e| DbError::sql(to, "post-data settings", e))?;
                if parallel && jobs > 1 {
                    // Our sessions already build side by side; a build's own parallel
                    // workers only add coordination (measured: 5% less server CPU without).
                    c.batch_execute("SET max_parallel_maintenance_workers = 0")
                        .map_err(|e| DbError::sql(to, "post-data settings", e))?;
                }
                Ok(c)
            },
            |c, batch| {
                let began = Instant::now();
                let together = batch.len() > 1
                    && c.batch_execute(
                        &batch
                            .iter()
                            .map(|&i| blocks[i].1.as_str())
                            .collect::<String>(),
                    )
                    .is_ok();
                if !together {
                    // One by one: the failing statement named exactly, or accepted on resume.
                    for &i in &batch {
                        let (kind, sql) = &blocks[i];
                        exec(c, sql, kind)?;
                    }
                }
                let ms = began.elapsed().as_millis() as u64 / batch.len() as u64;
                {
                    let mut kinds = kinds_m.lock().unwrap_or_else(|p| p.into_inner());
                    for &i in &batch {
                        let name = kind_name(&blocks[i].0, &blocks[i].1);
                        match kinds.iter_mut().find(|k| k.kind == name) {
                            Some(k) => {
                                k.count += 1;
                                k.ms += ms;
                            }
                            None => kinds.push(KindTime {
                                kind: name.to_owned(),
                                count: 1,
                                ms,
                            }),
                        }
                    }
                }
                let mut journal = journal_m.lock().unwrap_or_else(|p| p.into_inner());
                batch
                    .iter()
                    .try_for_each(|&i| journal.redoable_step_done(&key(i)))
            },
        )
    };
    phase(&|k| k == "INDEX" || k == "CONSTRAINT", true)?;
    phase(&|k| k == "FK CONSTRAINT", false)?;
    phase(
        &|k| !matches!(k, "INDEX" | "CONSTRAINT" | "FK CONSTRAINT"),
        false,
    )?;
    Ok(kinds_m.into_inner().unwrap_or_else(|p| p.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::{BATCH, SMALL_TABLE, block_table, work_items};

    #[test]
    fn post_data_blocks_name_their_table() {
        for (sql, table) in [
            (
                "ALTER TABLE ONLY public.reg_path\n    ADD CONSTRAINT reg_path_pkey PRIMARY KEY (reg_path_id);\n",
                Some("public.reg_path"),
            ),
            (
                "CREATE UNIQUE INDEX idx_x ON public.um_user USING btree (um_user_name);\n",
                Some("public.um_user"),
            ),
            (
                "CREATE INDEX i ON ONLY public.p USING btree (a);\n",
                Some("public.p"),
            ),
            ("COMMENT ON TABLE public.t IS 'x';\n", None),
        ] {
            assert_eq!(block_table(sql), table, "{sql}");
        }
    }

    /// Big tables first and alone; a small table's blocks all in one batch, batches bounded.
    #[test]
    fn work_items_put_big_first_and_never_split_a_small_table() {
        // Block i belongs to table i / 3; tables 0 and 1 are big, the others small.
        let tables: Vec<String> = (0..300).map(|i| format!("t{}", i / 3)).collect();
        let size = |i: usize| match i / 3 {
            0 => 10 * SMALL_TABLE,
            1 => 2 * SMALL_TABLE,
            t => 1000 - t as i64,
        };
        let items = work_items((0..300).rev().collect(), &size, |i| {
            Some(tables[i].as_str())
        });
        assert!(items[..6].iter().all(|b| b.len() == 1));
        assert!(items[..3].iter().all(|b| b[0] / 3 == 0), "{items:?}");
        let mut seen = std::collections::BTreeMap::new();
        for (n, batch) in items.iter().enumerate().skip(6) {
            assert!(batch.len() <= BATCH);
            for &i in batch {
                assert_eq!(*seen.entry(i / 3).or_insert(n), n, "table {} split", i / 3);
            }
        }
        let mut all: Vec<usize> = items.concat();
        all.sort_unstable();
        assert_eq!(all, (0..300).collect::<Vec<_>>());
    }
}
