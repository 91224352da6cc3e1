//! Findings: what a check found, about which object, how bad.

use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
            Severity::Info => "info",
        })
    }
}

/// Whether the old system already had a finding (offline checks of an upgrade against the old
/// home and databases): only `introduced` ones are the upgrade's doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Origin {
    PreExisting,
    Introduced,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Origin::PreExisting => "pre-existing",
            Origin::Introduced => "introduced",
        })
    }
}

/// One result of one check. `object` names the thing it is about (a tenant, a file, a
/// datasource, a user); no field ever holds a password.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    pub severity: Severity,
    /// A stable check name, e.g. `tenant-folder`, `userstore-deploy`.
    pub check: String,
    pub object: String,
    pub message: String,
    /// Set on errors and warnings once compared with the old system's findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<7} {:<22} {}: {}",
            self.severity.to_string(),
            self.check,
            self.object,
            self.message
        )?;
        match self.origin {
            Some(origin) => write!(f, " ({origin})"),
            None => Ok(()),
        }
    }
}

/// Everything one verification found, in the order it was found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Live runs: the id carried by every name the run created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub findings: Vec<Finding>,
    /// Live runs: tenants that were created and could only be deactivated.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub leftover_tenants: Vec<String>,
}

impl Report {
    pub fn push(
        &mut self,
        severity: Severity,
        check: &str,
        object: impl Into<String>,
        message: impl Into<String>,
    ) {
        let finding = Finding {
            severity,
            check: check.to_owned(),
            object: object.into(),
            message: message.into(),
            origin: None,
        };
        tracing::debug!(%finding, "finding");
        self.findings.push(finding);
    }

    pub fn error(&mut self, check: &str, object: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Error, check, object, message);
    }

    pub fn warning(&mut self, check: &str, object: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Warning, check, object, message);
    }

    pub fn info(&mut self, check: &str, object: impl Into<String>, message: impl Into<String>) {
        self.push(Severity::Info, check, object, message);
    }

    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// No errors (warnings allowed).
    pub fn is_ok(&self) -> bool {
        self.count(Severity::Error) == 0
    }

    /// Marks each error and warning `pre-existing` when `old` (the same checks on the old home
    /// and databases) has an error or warning of the same check about the same object, else
    /// `introduced`. Unless `strict`, a pre-existing error becomes a warning: the upgrade did
    /// not cause it and cannot be blamed for it.
    pub fn classify(&mut self, old: &Report, strict: bool) {
        for finding in &mut self.findings {
            if finding.severity == Severity::Info {
                continue;
            }
            let pre_existing = old.findings.iter().any(|o| {
                o.severity != Severity::Info
                    && o.check == finding.check
                    && o.object == finding.object
            });
            finding.origin = Some(if pre_existing {
                Origin::PreExisting
            } else {
                Origin::Introduced
            });
            if pre_existing && !strict {
                finding.severity = Severity::Warning;
            }
        }
    }

    /// Errors and warnings of one origin.
    pub fn of_origin(&self, origin: Origin) -> impl Iterator<Item = &Finding> + '_ {
        self.findings
            .iter()
            .filter(move |f| f.origin == Some(origin))
    }

    /// Findings of one check.
    pub fn of_check<'a>(&'a self, check: &'a str) -> impl Iterator<Item = &'a Finding> + 'a {
        self.findings.iter().filter(move |f| f.check == check)
    }

    /// `N errors, N warnings, N info`.
    pub fn summary(&self) -> String {
        format!(
            "{} errors, {} warnings, {} info",
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        )
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}")?;
        }
        write!(f, "{}", self.summary())
    }
}

/// Progress of a long verification, for a CLI spinner; the library never prints.
pub trait Progress {
    fn step(&self, what: &str);
}

/// Ignores progress.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoProgress;

impl Progress for NoProgress {
    fn step(&self, _what: &str) {}
}
