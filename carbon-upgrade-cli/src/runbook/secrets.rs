//! The secrets proof in the runbook (carbon_verify::secrets): in preflight on the old home
//! (every encrypted value must open with the old key, else the problem is pre-existing; a
//! different new key is announced), and in verify-home on the new home after replication
//! (a value the old key opened and the new one does not is introduced by the upgrade).
//! Keystore passwords given as vault aliases come from `CARBON_KEYSTORE_PASSWORD`
//! (`CARBON_OLD_KEYSTORE_PASSWORD` for the old home when it differs).

use std::path::Path;

use anyhow::Context as _;
use carbon_config::Secret;
use carbon_verify::secrets::{
    self, KEYSTORE_PASSWORD_ENV, OLD_KEYSTORE_PASSWORD_ENV, SecretsOptions, carry,
};

use super::preflight::{Check, Status};
use super::results::{CarryFilesResult, SecretsResult};

fn env(var: &str) -> Option<Secret> {
    std::env::var(var).ok().map(Secret::from)
}

fn old_password() -> Option<Secret> {
    env(OLD_KEYSTORE_PASSWORD_ENV).or_else(|| env(KEYSTORE_PASSWORD_ENV))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn chain(err: &dyn std::error::Error) -> String {
    carbon_fs::error_chain(err)
}

const NAME: &str = "encrypted secrets";

/// Preflight: the old home's values open with the old key (warnings otherwise: the upgrade
/// cannot fix them), and whether the new home's primary key is the old one.
pub fn preflight(old: &Path, new: &Path) -> Vec<Check> {
    let check = |status, detail: String| Check {
        name: NAME.to_owned(),
        status,
        detail,
    };
    let values = match secrets::encrypted_values(old) {
        Ok(values) => values,
        Err(err) => return vec![check(Status::Warn, format!("old home: {}", chain(&err)))],
    };
    if values.is_empty() {
        return vec![check(
            Status::Pass,
            "the old home has no encrypted values".to_owned(),
        )];
    }
    let opts = SecretsOptions {
        home: old.to_path_buf(),
        keystore_password: old_password(),
        old_home: None,
        old_keystore_password: None,
        now: now(),
    };
    let report = match secrets::verify_secrets(&opts) {
        Ok(report) => report,
        Err(err) => {
            return vec![check(
                Status::Warn,
                format!(
                    "{} encrypted value(s) in the old home cannot be checked (pre-existing): {}",
                    values.len(),
                    chain(&err)
                ),
            )];
        }
    };
    let mut checks: Vec<Check> = report
        .report
        .findings
        .iter()
        .filter(|f| f.severity != carbon_verify::Severity::Info)
        .map(|f| {
            check(
                Status::Warn,
                format!(
                    "old home (pre-existing): {} {} {}: {}",
                    f.severity, f.check, f.object, f.message
                ),
            )
        })
        .collect();
    match secrets::open_keys(new, env(KEYSTORE_PASSWORD_ENV).as_ref()) {
        Ok(keys) if keys.cert.sha256 != report.key.cert.sha256 => checks.push(check(
            Status::Warn,
            format!(
                "the new home's primary key ({}) is not the old one ({}): the {} encrypted value(s) replicated from the old home open only if the old keystore is carried",
                keys.cert.sha256,
                report.key.cert.sha256,
                values.len()
            ),
        )),
        Ok(_) => {}
        Err(err) => checks.push(check(
            Status::Warn,
            format!("the new home's primary key cannot be read: {}", chain(&err)),
        )),
    }
    if checks.is_empty() {
        checks.push(check(
            Status::Pass,
            format!(
                "{} of {} encrypted value(s) open with the old key; the new home has the same key",
                report.opening(),
                report.values.len()
            ),
        ));
    }
    checks
}

/// verify-home: every value of the new home opens with the new key. Returns the result and
/// the errors that fail the step (introduced ones; pre-existing ones too when `strict`).
pub fn verify_home(old: &Path, new: &Path, strict: bool) -> (SecretsResult, Vec<String>) {
    let mut result = SecretsResult::default();
    let mut errors = Vec::new();
    let values = match secrets::encrypted_values(new) {
        Ok(values) => values,
        Err(err) => {
            errors.push(format!("{NAME}: {}", chain(&err)));
            return (result, errors);
        }
    };
    result.values = values.len();
    if values.is_empty() {
        return (result, errors);
    }
    let old_readable = secrets::open_keys(old, old_password().as_ref()).is_ok();
    let opts = SecretsOptions {
        home: new.to_path_buf(),
        keystore_password: env(KEYSTORE_PASSWORD_ENV),
        old_home: old_readable.then(|| old.to_path_buf()),
        old_keystore_password: old_password(),
        now: now(),
    };
    let report = match secrets::verify_secrets(&opts) {
        Ok(report) => report,
        Err(err) => {
            let line = format!("{NAME}: {}", chain(&err));
            if old_readable || strict {
                errors.push(line.clone());
            }
            if old_readable {
                result.introduced.push(line);
            } else {
                result.pre_existing.push(format!(
                    "{line} (the old home's keystore cannot be read either)"
                ));
            }
            return (result, errors);
        }
    };
    result.opening = report.opening();
    result.key = Some(report.key.cert.sha256.clone());
    for value in report.values.iter().filter(|v| !v.opens) {
        let object = format!(
            "{}:{} {}",
            value.found.file.display(),
            value.found.line,
            value.found.element
        );
        let finding = report
            .report
            .findings
            .iter()
            .find(|f| f.object == object && f.severity != carbon_verify::Severity::Info);
        let line = finding.map_or_else(
            || format!("{} {}", value.found.file.display(), value.found.element),
            |f| format!("{} {}: {}", f.check, f.object, f.message),
        );
        if value.old_opens == Some(true) {
            errors.push(line.clone());
            result.introduced.push(line);
        } else {
            if strict {
                errors.push(format!("{line} (pre-existing; --strict)"));
            }
            result.pre_existing.push(line);
        }
    }
    result.warnings = report
        .report
        .findings
        .iter()
        .filter(|f| f.severity == carbon_verify::Severity::Warning)
        .map(|f| format!("{} {}: {}", f.check, f.object, f.message))
        .collect();
    // A vault alias without its entry, an unreadable trust store: shown, fatal only if strict.
    for f in report
        .report
        .findings
        .iter()
        .filter(|f| f.severity == carbon_verify::Severity::Error && f.check != "secret-opens")
    {
        let line = format!("{} {}: {}", f.check, f.object, f.message);
        if strict {
            errors.push(line.clone());
        }
        result.warnings.push(line);
    }
    (result, errors)
}

/// The file carry for the plan: keystores, vault files, `resources/security`, components.
pub fn plan_carry(settings: &super::Settings) -> anyhow::Result<carry::CarryFiles> {
    let password = old_password();
    carry::plan_carry(
        &settings.old_home,
        &settings.new_home,
        carry::CarryOptions {
            password: password.as_ref().and_then(Secret::plain),
            components: settings.carry_components,
            old_dist: settings.carry_old_dist.as_deref(),
        },
    )
    .map_err(anyhow::Error::from)
    .context("planning the keystores, secure-vault files and components to carry")
}

/// carry-over: plans again (the same answer on a resume) and copies into the new home.
pub fn carry_files(settings: &super::Settings) -> anyhow::Result<CarryFilesResult> {
    let plan = plan_carry(settings)?;
    let copied_now = carry::apply_carry(&settings.old_home, &settings.new_home, &plan)
        .context("copying keystores, secure-vault files and components")?;
    Ok(CarryFilesResult { plan, copied_now })
}

/// The carry, one line per file: action, path, size, SHA-256 (and key fingerprints).
pub fn render_carry(out: &mut String, files: &carry::CarryFiles) {
    use std::fmt::Write as _;
    let rows: Vec<_> = files
        .security
        .iter()
        .chain(&files.components)
        .filter(|f| f.action != carry::CarryAction::Same)
        .collect();
    let _ = writeln!(
        out,
        "\nFiles: keystores, secure vault, components carried from the old home ({})",
        rows.len()
    );
    for f in rows {
        let action = serde_json::to_value(f.action).unwrap_or_default();
        let _ = writeln!(
            out,
            "  [{}] {} {} bytes sha256 {}{}: {}",
            action.as_str().unwrap_or_default(),
            f.file.display(),
            f.size,
            f.sha256,
            f.fingerprint
                .as_ref()
                .map_or(String::new(), |fp| format!(" key {fp}")),
            f.reason
        );
    }
    for w in &files.warnings {
        let _ = writeln!(out, "  warning: {w}");
    }
}
