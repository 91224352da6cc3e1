//! The steps of a run as a type. On disk (journal, report) a step is the same string as ever
//! (`preflight`, `backup-db:WSO2_CARBON_DB`, …): `Display` and `FromStr` are exact inverses,
//! so journals written by earlier versions still read.

use std::fmt;
use std::str::FromStr;

/// One step of the upgrade guide, in the order [`super::steps::names`] lists them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Step {
    Preflight,
    BackupHome,
    /// The native backup of one datasource's database.
    BackupDb(String),
    /// The copy of one datasource's database into staging.
    Copy(String),
    /// Migration scripts applied to one datasource's staging database.
    Migrate(String),
    /// Staging's schema proved against the new home's fresh-install scripts.
    SchemaProof(String),
    Connect,
    CarryOver,
    Replicate,
    ConnectUserstores,
    Start,
    VerifyHome,
    VerifyServer,
}

const BACKUP_DB: &str = "backup-db:";
const COPY: &str = "copy:";
const SCHEMA_PROOF: &str = "schema-proof:";
const MIGRATE: &str = "migrate:";

/// The steps without a datasource, with their journal names.
const FIXED: [(Step, &str); 9] = [
    (Step::Preflight, "preflight"),
    (Step::BackupHome, "backup-home"),
    (Step::Connect, "connect"),
    (Step::CarryOver, "carry-over"),
    (Step::Replicate, "replicate"),
    (Step::ConnectUserstores, "connect-userstores"),
    (Step::Start, "start"),
    (Step::VerifyHome, "verify-home"),
    (Step::VerifyServer, "verify-server"),
];

impl Step {
    /// The datasource a per-database step works on.
    pub fn datasource(&self) -> Option<&str> {
        match self {
            Step::BackupDb(name)
            | Step::Copy(name)
            | Step::Migrate(name)
            | Step::SchemaProof(name) => Some(name),
            _ => None,
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that `{:<28}` lines steps up in `status`.
        match self {
            Step::BackupDb(name) => f.pad(&format!("{BACKUP_DB}{name}")),
            Step::Copy(name) => f.pad(&format!("{COPY}{name}")),
            Step::SchemaProof(name) => f.pad(&format!("{SCHEMA_PROOF}{name}")),
            Step::Migrate(name) => f.pad(&format!("{MIGRATE}{name}")),
            fixed => f.pad(
                FIXED
                    .iter()
                    .find(|(step, _)| step == fixed)
                    .map_or("", |(_, name)| name),
            ),
        }
    }
}

/// A journal or report names a step this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown step `{0}`")]
pub struct UnknownStep(pub String);

impl FromStr for Step {
    type Err = UnknownStep;

    fn from_str(s: &str) -> Result<Step, UnknownStep> {
        if let Some(name) = s.strip_prefix(BACKUP_DB) {
            return Ok(Step::BackupDb(name.to_owned()));
        }
        if let Some(name) = s.strip_prefix(COPY) {
            return Ok(Step::Copy(name.to_owned()));
        }
        if let Some(name) = s.strip_prefix(MIGRATE) {
            return Ok(Step::Migrate(name.to_owned()));
        }
        if let Some(name) = s.strip_prefix(SCHEMA_PROOF) {
            return Ok(Step::SchemaProof(name.to_owned()));
        }
        FIXED
            .iter()
            .find(|(_, name)| *name == s)
            .map(|(step, _)| step.clone())
            .ok_or_else(|| UnknownStep(s.to_owned()))
    }
}

impl serde::Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Step {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Step, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every step, as the journals of this and earlier versions name it.
    fn names() -> Vec<(&'static str, Step)> {
        vec![
            ("preflight", Step::Preflight),
            ("backup-home", Step::BackupHome),
            (
                "backup-db:WSO2_CARBON_DB",
                Step::BackupDb("WSO2_CARBON_DB".into()),
            ),
            ("copy:WSO2_CARBON_DB", Step::Copy("WSO2_CARBON_DB".into())),
            ("copy:WSO2_AM_DB", Step::Copy("WSO2_AM_DB".into())),
            ("migrate:WSO2_AM_DB", Step::Migrate("WSO2_AM_DB".into())),
            (
                "schema-proof:WSO2_AM_DB",
                Step::SchemaProof("WSO2_AM_DB".into()),
            ),
            ("connect", Step::Connect),
            ("carry-over", Step::CarryOver),
            ("replicate", Step::Replicate),
            ("connect-userstores", Step::ConnectUserstores),
            ("start", Step::Start),
            ("verify-home", Step::VerifyHome),
            ("verify-server", Step::VerifyServer),
            // A datasource name may itself hold the separator; the prefix alone decides.
            ("copy:a:b", Step::Copy("a:b".into())),
        ]
    }

    #[test]
    fn every_step_round_trips_through_its_journal_name() {
        for (name, step) in names() {
            assert_eq!(name.parse::<Step>(), Ok(step.clone()), "{name}");
            assert_eq!(step.to_string(), name);
            let json = serde_json::to_string(&step).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<Step>(&json).unwrap(), step);
        }
    }

    #[test]
    fn every_fixed_step_is_listed_once() {
        for (step, name) in &FIXED {
            assert_eq!(step.to_string(), *name);
            assert_eq!(FIXED.iter().filter(|(s, _)| s == step).count(), 1);
        }
    }

    #[test]
    fn an_unknown_step_is_refused_by_name() {
        for bad in ["", "Preflight", "backup_home", "copy", "verify"] {
            assert_eq!(bad.parse::<Step>(), Err(UnknownStep(bad.into())), "{bad:?}");
        }
    }
}
