//! `cargo xtask bench db [--shape apim|synthetic] [--scale bench|small|tiny] [--runs N] [--vendors postgres,mariadb,sqlite] [--baseline BIN] [--keep-source]`
//!
//! Makes a source database per vendor, then times,
//! in the same run, our `carbon-upgrade db copy` (release build, verification included)
//! against the peer tools an operator would use, median of N runs each, with peak RSS
//! (GNU time `%M`, which covers a pipeline's children). Every run starts from a target that
//! is absent or empty: an empty database made before the clock starts for every tool that
//! copies into one (ours `--logical` and on MariaDB included), none for the template copy. Prints a table with ratios (ours / peer).
//! `--baseline BIN` times an earlier build of `carbon-upgrade` beside this one, same run.
//! Then (unless `--no-offline-run`) a whole offline `carbon-upgrade run` on a small home over
//! the same source, this build and the baseline: downtime (critical path), total, copy step.
//!
//! Shapes: `apim` (the default) is what an API Manager 2.0.0 operator has: the schema made by
//! WSO2's own scripts (kernel 4.4.7, apimgt, mb-store, metrics: 144 tables on PostgreSQL),
//! read at run time from `CARBON_FIXTURES` or `../shared/carbon-fixtures` beside the
//! workspace, filled by `carbon_db::fixture::FillPlan::apim` (≥ 2 M rows, ~600 MB at
//! `bench`, blobs up to 1 MiB, a 250 k-row text-keyed token table, NULL vs '', quotes,
//! backslashes, CJK and emoji). `synthetic` is the generator's own 14-table schema.

#[path = "bench_run.rs"]
mod offline;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use carbon_db::Vendor;
use carbon_db::fixture::{self, Scale};
use carbon_db::testkit::{self, TestDb};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    Apim,
    Synthetic,
}

struct Options {
    shape: Shape,
    scale: String,
    runs: usize,
    vendors: Vec<Vendor>,
    jobs: usize,
    /// Time only our tool (quick iterations; ratios need the peers).
    only_ours: bool,
    /// An earlier build of `carbon-upgrade`, timed beside this one in the same run.
    baseline: Option<PathBuf>,
    /// Also time a whole offline `carbon-upgrade run` on the source (servers only).
    offline_run: bool,
    /// Leave the source database in place and print its URL (for profiling one step by hand).
    keep_source: bool,
}

/// carbon-fs against cp -a, rsync and cp + sha256sum (knobs: CARBON_FS_BENCH_RUNS, _SCALE,
/// _ONLY=tmpfs|disk, _TMPFS, _DISK).
fn bench_fs() -> Result<()> {
    crate::run_step(
        "cargo bench -p carbon-fs --bench fs",
        crate::cargo().args(["bench", "-p", "carbon-fs", "--bench", "fs"]),
    )
}

/// The peers come from Debian's packages; install the missing ones (as root) rather than
/// benchmark against fewer tools than the issue names.
fn install_peer_tools() -> Result<()> {
    let wanted = [
        ("pgcopydb", "pgcopydb"),
        ("mydumper", "mydumper"),
        ("myloader", "mydumper"),
        ("sqlite3", "sqlite3"),
    ];
    let on_path = |tool: &str| {
        std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|d| d.join(tool).is_file()))
    };
    let mut missing: Vec<&str> = wanted
        .iter()
        .filter(|(tool, _)| !on_path(tool))
        .map(|(_, package)| *package)
        .collect();
    missing.dedup();
    if missing.is_empty() {
        return Ok(());
    }
    println!(
        "==> installing the peer tools: apt-get install -y {}",
        missing.join(" ")
    );
    let update = Command::new("apt-get")
        .arg("update")
        .status()
        .context("apt-get update")?;
    let install = Command::new("apt-get")
        .args(["install", "-y"])
        .args(&missing)
        .status()
        .context("apt-get install")?;
    if !update.success() || !install.success() {
        bail!(
            "could not install {}: run apt-get install -y {} as root",
            missing.join(" "),
            missing.join(" ")
        );
    }
    Ok(())
}

fn parse(args: &[String]) -> Result<Options> {
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("db") => {}
        other => bail!(
            "usage: cargo xtask bench fs | cargo xtask bench db [--shape apim|synthetic] [--scale bench|small|tiny] [--runs N] [--vendors postgres,mariadb,sqlite] [--jobs N] [--only-ours] [--baseline BIN] [--no-offline-run] [--keep-source] (got {other:?})"
        ),
    }
    let mut o = Options {
        shape: Shape::Apim,
        scale: "bench".into(),
        runs: 3,
        vendors: Vec::new(),
        jobs: 2,
        only_ours: false,
        baseline: None,
        offline_run: true,
        keep_source: false,
    };
    while let Some(flag) = it.next() {
        if flag == "--keep-source" {
            o.keep_source = true;
            continue;
        }
        if flag == "--only-ours" {
            o.only_ours = true;
            continue;
        }
        if flag == "--no-offline-run" {
            o.offline_run = false;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--scale" => o.scale = value.clone(),
            "--shape" => {
                o.shape = match value.as_str() {
                    "apim" => Shape::Apim,
                    "synthetic" => Shape::Synthetic,
                    other => bail!("unknown shape {other} (apim, synthetic)"),
                }
            }
            "--runs" => o.runs = value.parse().context("--runs")?,
            "--jobs" => o.jobs = value.parse().context("--jobs")?,
            "--baseline" => o.baseline = Some(PathBuf::from(value)),
            "--vendors" => {
                o.vendors = value
                    .split(',')
                    .map(|v| match v {
                        "postgres" | "pg" => Ok(Vendor::Postgres),
                        "mariadb" | "mysql" => Ok(Vendor::MySql),
                        "sqlite" => Ok(Vendor::Sqlite),
                        other => bail!("unknown vendor {other}"),
                    })
                    .collect::<Result<_>>()?;
            }
            other => bail!("unknown flag {other}"),
        }
    }
    if Scale::named(&o.scale).is_none() {
        bail!("unknown scale {} (tiny, small, bench)", o.scale);
    }
    if o.vendors.is_empty() {
        o.vendors = match o.shape {
            Shape::Apim => vec![Vendor::Postgres, Vendor::MySql],
            Shape::Synthetic => vec![Vendor::Postgres, Vendor::MySql, Vendor::Sqlite],
        };
    }
    if o.shape == Shape::Apim && o.vendors.contains(&Vendor::Sqlite) {
        bail!("the apim shape has no SQLite scripts: use --shape synthetic for SQLite");
    }
    Ok(o)
}

/// A tool's runs: seconds, peak RSS (KiB), why it stopped, and (ours) each run's
/// (seconds, note, phase breakdown).
#[derive(Default)]
struct Samples {
    secs: Vec<f64>,
    rss: u64,
    failed: String,
    ours: Vec<(f64, String, String)>,
}

/// After making the source: PostgreSQL vacuums it as autovacuum keeps a production database
/// (hint bits set, tuples frozen: otherwise the first tool to read the fresh load sets them
/// on every page, and pays for the others — 9.6 s instead of 5.2 s for our first
/// verification at bench scale), then writes its dirty pages now (CHECKPOINT), not inside
/// the first timed run (a template copy forces a checkpoint and paid for the whole load:
/// 51 s instead of 1.3 s at small scale); InnoDB is given up to two minutes to flush the
/// load's dirty pages; then a pause for the servers' other background work.
fn settle(vendor: Vendor, src: &TestDb) -> Result<()> {
    match vendor {
        Vendor::Postgres => {
            let mut c = src.pg_client();
            // Two statements: VACUUM refuses to run inside a multi-statement string.
            c.batch_execute("VACUUM (FREEZE, ANALYZE)")
                .context("VACUUM after making the source")?;
            c.batch_execute("CHECKPOINT")
                .context("CHECKPOINT after making the source")?;
        }
        Vendor::MySql => {
            use mysql::prelude::Queryable;
            let mut conn = src.mysql_conn();
            let started = Instant::now();
            while started.elapsed().as_secs() < 120 {
                let dirty: Option<(String, u64)> =
                    conn.query_first("SHOW GLOBAL STATUS LIKE 'Innodb_buffer_pool_pages_dirty'")?;
                if dirty.is_none_or(|(_, pages)| pages < 200) {
                    break;
                }
                std::thread::sleep(std::time::Duration::from_secs(1));
            }
        }
        _ => {}
    }
    std::thread::sleep(std::time::Duration::from_secs(5));
    Ok(())
}

/// One timed run: wall seconds and peak RSS in KiB (largest process of the command tree).
struct Sample {
    secs: f64,
    rss_kib: u64,
    stdout: String,
}

fn timed(cmd: &str, workdir: &Path) -> Result<Sample> {
    let timing = workdir.join("time.out");
    let started = Instant::now();
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %M")
        .arg("-o")
        .arg(&timing)
        .args(["sh", "-c", cmd])
        .current_dir(workdir)
        .output()
        .with_context(|| format!("starting {cmd}"))?;
    let secs = started.elapsed().as_secs_f64();
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            testkit_redact(cmd),
            out.status,
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    let t = std::fs::read_to_string(&timing).unwrap_or_default();
    let rss_kib = t
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    Ok(Sample {
        secs,
        rss_kib,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
    })
}

fn testkit_redact(cmd: &str) -> String {
    carbon_db::redact_raw(cmd)
}

struct Row {
    vendor: Vendor,
    tool: String,
    median: f64,
    min: f64,
    max: f64,
    rss_mib: f64,
    note: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Builds a tool's shell command from (source URL, target database, work dir).
type CommandFn = Box<dyn Fn(&str, &TestDb, &Path) -> String>;

/// A tool to time: builds its shell command from (source URL, target URL or path, work dir).
struct Tool {
    name: String,
    /// Whether the target database must exist (empty) before the run.
    needs_target: bool,
    command: CommandFn,
}

fn q(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

fn ours(bin: &Path, jobs: usize, extra: &'static str) -> CommandFn {
    let bin = bin.to_owned();
    Box::new(move |src, dst, dir| {
        format!(
            "{} db copy --from {} --to {} --jobs {jobs} --json --journal {} {extra}",
            q(&bin.display().to_string()),
            q(src),
            q(dst.url()),
            q(&dir.join("journal.jsonl").display().to_string())
        )
    })
}

fn mysql_flags(url: &str) -> String {
    let o = testkit::mysql_opts(url);
    format!(
        "-h {} -P {} -u {}",
        o.get_ip_or_hostname(),
        o.get_tcp_port(),
        o.get_user().unwrap_or("root")
    )
}

fn tools(vendor: Vendor, bin: &Path, jobs: usize) -> Vec<Tool> {
    match vendor {
        Vendor::Postgres => vec![
            Tool {
                name: "carbon-upgrade (template fast path + verify)".into(),
                needs_target: false,
                command: ours(bin, jobs, ""),
            },
            Tool {
                name: "carbon-upgrade --logical (+ verify)".into(),
                // Into an empty database made before the clock starts, as for the peers
                // (CREATE DATABASE alone takes 0.4–1.9 s on this busy server).
                needs_target: true,
                command: ours(bin, jobs, "--logical"),
            },
            Tool {
                name: "pg_dump -Fc -Z0 | pg_restore".into(),
                needs_target: true,
                command: Box::new(|src, dst, _| {
                    format!(
                        "pg_dump -Fc -Z0 --dbname={} | pg_restore --no-owner --dbname={}",
                        q(src),
                        q(dst.url())
                    )
                }),
            },
            Tool {
                name: "pg_dump -Fd -j2 + pg_restore -j2".into(),
                needs_target: true,
                command: Box::new(|src, dst, _| {
                    format!(
                        "rm -rf dump && pg_dump -Fd -j2 -Z0 -f dump --dbname={} && pg_restore -j2 --no-owner --dbname={} dump && rm -rf dump",
                        q(src),
                        q(dst.url())
                    )
                }),
            },
            Tool {
                name: "pgcopydb clone (0.10, 2 table + 2 index jobs)".into(),
                needs_target: true,
                command: Box::new(|src, dst, _| {
                    format!(
                        "rm -rf pgcopydb && pgcopydb clone --source {} --target {} --table-jobs 2 --index-jobs 2 --dir pgcopydb --no-owner >/dev/null 2>pgcopydb.log",
                        q(src),
                        q(dst.url())
                    )
                }),
            },
            Tool {
                name: "CREATE DATABASE … TEMPLATE (no verify)".into(),
                needs_target: false,
                command: Box::new(|src, dst, _| {
                    let server = testkit::server_url(Vendor::Postgres).unwrap_or_default();
                    let name = src.rsplit('/').next().unwrap_or("");
                    format!(
                        "psql -q --dbname={} -c {}",
                        q(&server),
                        q(&format!(
                            "CREATE DATABASE \"{}\" TEMPLATE \"{name}\" STRATEGY FILE_COPY",
                            dst.name()
                        ))
                    )
                }),
            },
        ],
        Vendor::MySql => vec![
            Tool {
                name: "carbon-upgrade (+ verify)".into(),
                needs_target: true,
                command: ours(bin, jobs, ""),
            },
            Tool {
                name: "mysqldump --single-transaction | mariadb".into(),
                needs_target: true,
                command: Box::new(|src, dst, _| {
                    let name = src.rsplit('/').next().unwrap_or("");
                    format!(
                        "mysqldump --single-transaction {} {name} | mariadb {} {}",
                        mysql_flags(src),
                        mysql_flags(dst.url()),
                        dst.name()
                    )
                }),
            },
            Tool {
                name: "mydumper -t 2 + myloader -t 2 (0.10.1)".into(),
                needs_target: true,
                command: Box::new(|src, dst, _| {
                    let name = src.rsplit('/').next().unwrap_or("");
                    format!(
                        "rm -rf dump && mydumper {} -t 2 -B {name} -o dump && myloader {} -t 2 -B {} -d dump -o && rm -rf dump",
                        mysql_flags(src),
                        mysql_flags(dst.url()),
                        dst.name()
                    )
                }),
            },
        ],
        _ => vec![
            Tool {
                name: "carbon-upgrade (+ verify)".into(),
                needs_target: false,
                command: ours(bin, jobs, ""),
            },
            Tool {
                name: "sqlite3 .backup (no verify)".into(),
                needs_target: false,
                command: Box::new(|src, dst, _| {
                    let path = src.trim_start_matches("sqlite:");
                    format!(
                        "sqlite3 {} {}",
                        q(path),
                        q(&format!(".backup '{}'", dst.sqlite_path().display()))
                    )
                }),
            },
        ],
    }
}

/// WSO2's scripts of the API Manager 2.0.0 database, per vendor, under the fixtures directory.
fn apim_scripts(vendor: Vendor) -> [&'static str; 4] {
    match vendor {
        Vendor::Postgres => [
            "4.4.7/dbscripts/postgresql.sql",
            "products/wso2am-2.0.0/dbscripts/apimgt/postgresql.sql",
            "products/wso2am-2.0.0/dbscripts/mb-store/postgresql-mb.sql",
            "products/wso2am-2.0.0/dbscripts/metrics/postgresql.sql",
        ],
        _ => [
            "4.4.7/dbscripts/mysql5.7.sql",
            "products/wso2am-2.0.0/dbscripts/apimgt/mysql5.7.sql",
            "products/wso2am-2.0.0/dbscripts/mb-store/mysql-mb.sql",
            "products/wso2am-2.0.0/dbscripts/metrics/mysql.sql",
        ],
    }
}

/// The real WSO2 files: `CARBON_FIXTURES`, else `../shared/carbon-fixtures` beside the
/// workspace. They are never copied into the repository.
fn fixtures_dir() -> Result<PathBuf> {
    let dir = std::env::var_os("CARBON_FIXTURES").map_or_else(
        || crate::workspace_root().join("../shared/carbon-fixtures"),
        PathBuf::from,
    );
    if !dir.join("4.4.7/dbscripts").is_dir() || !dir.join("products/wso2am-2.0.0").is_dir() {
        bail!(
            "WSO2 fixtures not found at {} (need 4.4.7/dbscripts and products/wso2am-2.0.0): set CARBON_FIXTURES, or use --shape synthetic",
            dir.display()
        );
    }
    Ok(dir)
}

/// The API Manager 2.0.0 database made by WSO2's scripts, filled per `FillPlan::apim`.
fn generate_apim(vendor: Vendor, scale: &str) -> Result<TestDb> {
    let dir = fixtures_dir()?;
    let plan = fixture::FillPlan::apim(scale).context("scale")?;
    let db = TestDb::new(vendor);
    let started = Instant::now();
    let url = carbon_db::DbUrl::parse(db.url())?;
    let mut session = carbon_db::Session::read_write(&url)?;
    for rel in apim_scripts(vendor) {
        let path = dir.join(rel);
        carbon_db::schema::run_script(&mut session, &path)
            .with_context(|| format!("creating the apim schema from {}", path.display()))?;
    }
    drop(session);
    let filled = match vendor {
        Vendor::Postgres => fixture::fill_postgres_plan(&mut db.pg_client(), &plan),
        _ => fixture::fill_mysql_plan(&mut db.mysql_conn(), &plan),
    }
    .with_context(|| format!("filling the {vendor} apim source"))?;
    let size = carbon_db::inspect(&url).map(|i| i.bytes).unwrap_or(0);
    println!(
        "{vendor}: apim shape (WSO2 scripts from {}): {} rows in {} tables, {:.0} MB on disk, made in {:.1}s",
        dir.display(),
        filled.rows,
        filled.tables,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(db)
}

fn generate(vendor: Vendor, scale: &Scale) -> Result<TestDb> {
    let db = TestDb::new(vendor);
    let started = Instant::now();
    let summary = match vendor {
        Vendor::Postgres => fixture::generate_postgres(&mut db.pg_client(), scale),
        Vendor::MySql => fixture::generate_mysql(&mut db.mysql_conn(), scale),
        _ => fixture::generate_sqlite(&mut db.sqlite_conn(), scale),
    }
    .with_context(|| format!("generating the {vendor} source"))?;
    let size = carbon_db::inspect(&carbon_db::DbUrl::parse(db.url())?)
        .map(|i| i.bytes)
        .unwrap_or(0);
    println!(
        "{vendor}: generated {} rows in {} tables ({:.0} MB payload, {:.0} MB on disk) in {:.1}s",
        summary.rows,
        summary.tables.len(),
        summary.payload_bytes as f64 / 1e6,
        size as f64 / 1e6,
        started.elapsed().as_secs_f64()
    );
    Ok(db)
}

pub fn run(args: &[String]) -> Result<()> {
    if args.first().map(String::as_str) == Some("fs") {
        return bench_fs();
    }
    let o = parse(args)?;
    if o.shape == Shape::Apim {
        fixtures_dir()?;
    }
    install_peer_tools()?;
    let scale = Scale::named(&o.scale).context("scale")?;
    let root = crate::workspace_root();
    println!("==> cargo build --release -p carbon-upgrade-cli");
    let status = crate::cargo()
        .args(["build", "--release", "--quiet", "-p", "carbon-upgrade-cli"])
        .status()?;
    if !status.success() {
        bail!("release build failed");
    }
    let bin: PathBuf = root.join("target/release/carbon-upgrade");
    let work = tempfile_dir()?;
    let mut rows = Vec::new();
    let mut offline_lines = Vec::new();
    for &vendor in &o.vendors {
        let src = match o.shape {
            Shape::Apim => generate_apim(vendor, &o.scale)?,
            Shape::Synthetic => generate(vendor, &scale)?,
        };
        let mut all = tools(vendor, &bin, o.jobs);
        if let Some(baseline) = &o.baseline {
            let earlier = tools(vendor, baseline, o.jobs)
                .into_iter()
                .filter(|t| t.name.starts_with("carbon-upgrade"))
                .map(|t| Tool {
                    name: format!("baseline {}", t.name),
                    ..t
                });
            all.extend(earlier);
        }
        let all: Vec<Tool> = all
            .into_iter()
            .filter(|t| !o.only_ours || t.name.contains("carbon-upgrade"))
            .collect();
        settle(vendor, &src)?;
        // Interleaved: run 1 of every tool, then run 2 of every tool, … so that whatever the
        // shared machine does meanwhile falls on all of them alike.
        let mut samples: Vec<Samples> = all.iter().map(|_| Samples::default()).collect();
        for round in 0..o.runs {
            // Each round starts with another tool: none always runs first.
            let n = all.len().max(1);
            for k in 0..all.len() {
                let at = (round + k) % n;
                let (tool, got) = (&all[at], &mut samples[at]);
                if !got.failed.is_empty() {
                    continue;
                }
                let dst = if tool.needs_target {
                    TestDb::new(vendor)
                } else {
                    TestDb::reserve(vendor)
                };
                let cmd = (tool.command)(src.url(), &dst, &work);
                match timed(&cmd, &work) {
                    Ok(s) => {
                        got.secs.push(s.secs);
                        got.rss = got.rss.max(s.rss_kib);
                        if let Ok(report) = serde_json::from_str::<serde_json::Value>(&s.stdout) {
                            let (run_note, phases) = describe(&report);
                            got.ours.push((s.secs, run_note, phases));
                        }
                    }
                    Err(e) => got.failed = format!("failed: {e:#}"),
                }
                let _ = std::fs::remove_file(work.join("journal.jsonl"));
            }
        }
        for (tool, got) in all.iter().zip(samples) {
            let Samples {
                secs,
                rss,
                failed: mut note,
                ours: mut ours_runs,
            } = got;
            let mut phases = String::new();
            if note.is_empty() && !ours_runs.is_empty() {
                ours_runs.sort_by(|a, b| a.0.total_cmp(&b.0));
                let mid = &ours_runs[ours_runs.len() / 2];
                note = mid.1.clone();
                phases = mid.2.clone();
                if let Some(bad) = ours_runs.iter().find(|r| r.1.contains("NOT VERIFIED")) {
                    note = bad.1.clone();
                }
            }
            let row = if secs.is_empty() {
                Row {
                    vendor,
                    tool: tool.name.clone(),
                    median: f64::NAN,
                    min: f64::NAN,
                    max: f64::NAN,
                    rss_mib: 0.0,
                    note,
                }
            } else {
                let (min, max) = (
                    secs.iter().copied().fold(f64::INFINITY, f64::min),
                    secs.iter().copied().fold(0.0, f64::max),
                );
                Row {
                    vendor,
                    tool: tool.name.clone(),
                    median: median(secs),
                    min,
                    max,
                    rss_mib: rss as f64 / 1024.0,
                    note,
                }
            };
            println!(
                "  {:<8} {:<48} median {:>7.2}s  [{:.2}–{:.2}]  peak RSS {:>6.1} MiB  {}",
                row.vendor.to_string(),
                row.tool,
                row.median,
                row.min,
                row.max,
                row.rss_mib,
                row.note
            );
            if !phases.is_empty() {
                println!("{phases}");
            }
            rows.push(row);
        }
        if o.offline_run && vendor != Vendor::Sqlite {
            // This build, then the earlier one: interleaved, same source, same run.
            let mut builds = vec![("this build", bin.clone())];
            if let Some(b) = &o.baseline {
                builds.push(("baseline", b.clone()));
            }
            for (label, b) in builds {
                let line = match offline::offline_run(&b, vendor, &src, &work) {
                    Ok(r) => r.line(),
                    Err(e) => format!("failed: {e:#}"),
                };
                let line = format!("{vendor} ({label}): {line}");
                println!("  offline run {line}");
                offline_lines.push(line);
            }
        }
        if o.keep_source {
            println!("  kept source: {}", src.url());
            std::mem::forget(src);
        }
    }
    print_table(&rows, &o);
    if !offline_lines.is_empty() {
        println!();
        println!("offline `carbon-upgrade run` (small home, this source):");
        for line in &offline_lines {
            println!("- {line}");
        }
    }
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The note (method, copy + verify, verified or not) and the phase breakdown of one of our
/// runs, from its `--json` report.
fn describe(report: &serde_json::Value) -> (String, String) {
    let verify_ms = report["verify"]["elapsed_ms"].as_u64().unwrap_or(0);
    let ok = report["verify"]["mismatches"]
        .as_array()
        .is_some_and(Vec::is_empty);
    let note = format!(
        "{} copy {:.2}s + verify {:.2}s{}",
        report["method"].as_str().unwrap_or("?"),
        report["copy_ms"].as_u64().unwrap_or(0) as f64 / 1000.0,
        verify_ms as f64 / 1000.0,
        if ok { ", verified" } else { ", NOT VERIFIED" }
    );
    let Ok(phases) = serde_json::from_value::<carbon_db::Phases>(report["phases"].clone()) else {
        return (note, String::new());
    };
    let mut text = format!("           phases: {}", phases.summary());
    if !phases.tables.is_empty() {
        text.push_str("\n           slowest tables: ");
        text.push_str(
            &phases
                .tables
                .iter()
                .map(|t| {
                    format!(
                        "{} {:.2}s ({} rows, {:.0} MB)",
                        t.table,
                        t.ms as f64 / 1e3,
                        t.rows,
                        t.bytes as f64 / 1e6
                    )
                })
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    (note, text)
}

fn print_table(rows: &[Row], o: &Options) {
    println!();
    println!(
        "| vendor | tool | median of {} (s) | min–max (s) | ratio ours/peer | peak RSS (MiB) | notes |",
        o.runs
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        let ours: Vec<&Row> = rows
            .iter()
            .filter(|x| x.vendor == r.vendor && x.tool.starts_with("carbon-upgrade"))
            .collect();
        let ratio = if r.tool.starts_with("carbon-upgrade") {
            "—".to_owned()
        } else if let Some(same) = r.tool.strip_prefix("baseline ") {
            // An earlier build: compared with this build's same mode only.
            ours.iter()
                .find(|x| x.tool == same)
                .map_or("—".to_owned(), |x| format!("{:.2}×", x.median / r.median))
        } else {
            ours.iter()
                .map(|x| {
                    let label = if x.tool.contains("--logical") {
                        "logical "
                    } else {
                        ""
                    };
                    format!("{label}{:.2}×", x.median / r.median)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        println!(
            "| {} | {} | {:.2} | {:.2}–{:.2} | {} | {:.1} | {} |",
            r.vendor,
            r.tool.replace('|', "\\|"),
            r.median,
            r.min,
            r.max,
            ratio,
            r.rss_mib,
            r.note
        );
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("carbon-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}
