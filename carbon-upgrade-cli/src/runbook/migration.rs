//! The `migrate:<datasource>` step: the operator's migration scripts (`migration_scripts` in
//! upgrade.toml) applied to staging only, after the copy was verified and before `connect`,
//! by `carbon_db::migrate` (statement journal in the state directory; `resume` continues at
//! the statement that failed).

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result};
use carbon_db::Vendor;

use super::Settings;
use super::datasources::Pair;
use super::results::MigrateResult;

fn scripts<'a>(settings: &'a Settings, pair: &Pair) -> &'a [PathBuf] {
    settings
        .datasources
        .get(&pair.name)
        .map_or(&[], |c| c.migration_scripts.as_slice())
}

pub(crate) fn applies(settings: &Settings, pair: &Pair) -> bool {
    !scripts(settings, pair).is_empty()
}

fn journal(settings: &Settings, pair: &Pair) -> PathBuf {
    settings
        .state_dir
        .join(format!("migrate-{}.jsonl", pair.slug()))
}

pub(crate) fn run(settings: &Settings, pair: &Pair) -> Result<MigrateResult> {
    let journal = journal(settings, pair);
    let migration = carbon_db::migrate::migrate(&pair.staging, scripts(settings, pair), &journal)
        .with_context(|| format!("migrating {}", pair.staging))?;
    for lost in migration.lost() {
        tracing::warn!("{}: table lost rows in the migration: {lost}", pair.name);
    }
    Ok(MigrateResult {
        datasource: pair.name.clone(),
        journal,
        migration,
    })
}

/// The plan's lines: each script with its statement count (a script that cannot be read or
/// split is named now, not at run time), and what a failure leaves behind.
pub(crate) fn plan_lines(settings: &Settings, pair: &Pair) -> Vec<String> {
    let mut lines = Vec::new();
    match carbon_db::migrate::resolve(scripts(settings, pair), pair.vendor) {
        Ok(paths) => {
            for path in paths {
                match carbon_db::schema::load_script(&path, pair.vendor) {
                    Ok(statements) => lines.push(format!(
                        "{}: {} ({} statements)",
                        pair.name,
                        path.display(),
                        statements.len()
                    )),
                    Err(e) => lines.push(format!("{}: {}", pair.name, carbon_db::error_chain(&e))),
                }
            }
        }
        Err(e) => lines.push(format!("{}: {}", pair.name, carbon_db::error_chain(&e))),
    }
    lines.push(match pair.vendor {
        Vendor::Postgres => format!(
            "{}: PostgreSQL: each script in one transaction where its statements allow; a failure leaves nothing of that script applied",
            pair.name
        ),
        _ => format!(
            "{}: MySQL/MariaDB DDL is not transactional: statements before a failure stay applied; resume continues at the failed statement",
            pair.name
        ),
    });
    lines
}

pub(crate) fn render(out: &mut String, r: &MigrateResult) {
    let m = &r.migration;
    let _ = writeln!(
        out,
        "Journal `{}`, {} ms\n",
        r.journal.display(),
        m.elapsed_ms
    );
    for s in &m.scripts {
        let _ = writeln!(
            out,
            "- `{}` sha256 `{}`: {}",
            s.script.display(),
            s.sha256,
            s.summary()
        );
    }
    let lost = m.lost();
    if !lost.is_empty() {
        let _ = writeln!(out, "\n**Tables that lost rows:** {}", lost.join(", "));
    }
    let _ = writeln!(
        out,
        "\n| table | rows before | rows after |\n|---|---:|---:|"
    );
    for row in &m.rows {
        let show = |v: Option<u64>| v.map_or_else(|| "—".to_owned(), |v| v.to_string());
        let flag = if row.lost_rows() {
            " **lost rows**"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "| {}{flag} | {} | {} |",
            row.table,
            show(row.before),
            show(row.after)
        );
    }
}
