//! The `schema-proof:<datasource>` step: after the copy, staging is proved against the new
//! home's fresh-install scripts (`carbon_db::schema`). *Missing* stops the run unless
//! `accept_missing` in upgrade.toml accepts it; *risky* differences are warnings naming the
//! column and the consequence; `align = true` runs the safe statements and proves again.
//! The plan shows the same proof of the source (which staging will copy) before anything runs.

use std::fmt::Write as _;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use carbon_db::Vendor;
use carbon_db::schema::{self, Class, Difference, SchemaDiff};

use super::Settings;
use super::config::DatasourceConfig;
use super::datasources::Pair;
use super::results::SchemaProofResult;

fn config<'a>(settings: &'a Settings, pair: &Pair) -> Option<&'a DatasourceConfig> {
    settings.datasources.get(&pair.name)
}

/// Whether a run proves this datasource: a database on a server (not embedded) and fresh
/// scripts to prove it against (configured, or the new home's `dbscripts/`).
pub(crate) fn applies(settings: &Settings, pair: &Pair) -> bool {
    if pair.embedded || !matches!(pair.vendor, Vendor::Postgres | Vendor::MySql) {
        return false;
    }
    config(settings, pair).is_some_and(|c| !c.fresh_scripts.is_empty())
        || settings.new_home.join("dbscripts").is_dir()
}

/// The fresh-install scripts for `db`'s tables: configured ones, or those of the new home.
fn scripts(settings: &Settings, pair: &Pair, db: &carbon_db::DbUrl) -> Result<Vec<PathBuf>> {
    if let Some(configured) = config(settings, pair).filter(|c| !c.fresh_scripts.is_empty()) {
        return Ok(configured.fresh_scripts.clone());
    }
    let dir = settings.new_home.join("dbscripts");
    schema::scripts_for(db, &dir)
        .with_context(|| format!("choosing the fresh-install scripts of {}", dir.display()))
}

fn accepted(entries: &[String], d: &Difference) -> bool {
    let whole = format!("{} {}", d.table, d.object);
    entries.iter().any(|e| {
        let e = e.trim();
        e == "*" || e.eq_ignore_ascii_case(&d.table) || e.eq_ignore_ascii_case(whole.trim())
    })
}

/// The step: prove staging, align when asked, stop on unaccepted *missing*.
pub(crate) fn run(settings: &Settings, pair: &Pair) -> Result<SchemaProofResult> {
    let cfg = config(settings, pair).cloned().unwrap_or_default();
    let scripts = scripts(settings, pair, &pair.staging)?;
    if scripts.is_empty() {
        return Ok(SchemaProofResult {
            datasource: pair.name.clone(),
            scripts,
            staging_tables: 0,
            fresh_tables: 0,
            diff: SchemaDiff::default(),
            aligned: Vec::new(),
            accepted_missing: Vec::new(),
            elapsed_ms: 0,
        });
    }
    let prove = || {
        schema::prove(&pair.staging, &scripts)
            .with_context(|| format!("proving the schema of {}", pair.staging))
    };
    let mut proof = prove()?;
    let mut aligned = Vec::new();
    if cfg.align && !proof.diff.align_statements().is_empty() {
        aligned = proof
            .diff
            .align_statements()
            .into_iter()
            .map(str::to_owned)
            .collect();
        schema::align(&pair.staging, &proof.diff)
            .with_context(|| format!("aligning {}", pair.staging))?;
        proof = prove()?;
    }
    for d in proof
        .diff
        .differences
        .iter()
        .filter(|d| d.class == Class::Risky)
    {
        tracing::warn!("schema proof of {}: {d}", pair.name);
    }
    let (accepted_missing, refused): (Vec<&Difference>, Vec<&Difference>) = proof
        .diff
        .differences
        .iter()
        .filter(|d| d.class == Class::Missing)
        .partition(|d| accepted(&cfg.accept_missing, d));
    if !refused.is_empty() {
        let listed: Vec<String> = refused
            .iter()
            .take(12)
            .map(|d| format!("{} {}", d.table, d.object).trim().to_owned())
            .collect();
        let more = refused.len().saturating_sub(listed.len());
        bail!(
            "staging {} lacks {} object(s) the new product creates: {}{} (accept them with accept_missing in [datasources.{}] of upgrade.toml)",
            pair.staging,
            refused.len(),
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            },
            pair.name
        );
    }
    Ok(SchemaProofResult {
        datasource: pair.name.clone(),
        scripts: proof.scripts.clone(),
        staging_tables: proof.staging_tables,
        fresh_tables: proof.fresh_tables,
        accepted_missing: accepted_missing
            .iter()
            .map(|d| format!("{} {}", d.table, d.object).trim().to_owned())
            .collect(),
        diff: proof.diff,
        aligned,
        elapsed_ms: proof.elapsed_ms,
    })
}

/// The plan's lines: the source (what staging will hold) proved the same way, on the staging
/// server; a proof that cannot run yet is one line saying why.
pub(crate) fn plan_lines(settings: &Settings, pair: &Pair) -> Vec<String> {
    let cfg = config(settings, pair).cloned().unwrap_or_default();
    let mut lines = Vec::new();
    let preview = scripts(settings, pair, &pair.source).and_then(|scripts| {
        if scripts.is_empty() {
            return Ok(None);
        }
        schema::prove_on(&pair.source, &pair.staging, &scripts)
            .map(Some)
            .context("proving the source's schema")
    });
    match preview {
        Ok(None) => lines.push(format!(
            "{}: no fresh-install script creates one of its tables: nothing to prove",
            pair.name
        )),
        Ok(Some(proof)) => {
            let scripts: Vec<String> = proof
                .scripts
                .iter()
                .map(|s| s.display().to_string())
                .collect();
            lines.push(format!(
                "{}: against {}: {}{}",
                pair.name,
                scripts.join(", "),
                proof.diff.summary(),
                if cfg.align { " (align on)" } else { "" }
            ));
            for d in &proof.diff.differences {
                let mut line = format!("  {d}");
                if d.class == Class::Missing && accepted(&cfg.accept_missing, d) {
                    line.push_str(" [accepted]");
                }
                lines.push(line);
                if let Some(sql) = &d.align {
                    let when = if cfg.align {
                        "align"
                    } else {
                        "align (with align = true)"
                    };
                    lines.push(format!("      {when}: {sql}"));
                }
            }
        }
        Err(e) => lines.push(format!("{}: not proved yet: {e:#}", pair.name)),
    }
    if pair.vendor == Vendor::MySql && cfg.align {
        lines.push(format!(
            "{}: MySQL/MariaDB DDL is not transactional: an align statement that fails leaves the earlier ones applied",
            pair.name
        ));
    }
    lines
}

/// The report's section of one proof.
pub(crate) fn render(out: &mut String, r: &SchemaProofResult) {
    if r.scripts.is_empty() {
        let _ = writeln!(
            out,
            "No fresh-install script creates one of its tables: nothing to prove."
        );
        return;
    }
    let _ = writeln!(
        out,
        "{} staging tables, {} fresh tables, {} ms: **{}**\n",
        r.staging_tables,
        r.fresh_tables,
        r.elapsed_ms,
        r.diff.summary()
    );
    for s in &r.scripts {
        let _ = writeln!(out, "- script `{}`", s.display());
    }
    for d in &r.diff.differences {
        let _ = writeln!(out, "- {d}");
    }
    for a in &r.accepted_missing {
        let _ = writeln!(out, "- accepted missing: {a}");
    }
    for sql in &r.aligned {
        let _ = writeln!(out, "- aligned: `{sql}`");
    }
}
