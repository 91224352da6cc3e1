//! `verify_home` on real homes and real databases: a consistent upgrade, then one
//! deliberate breakage per case, each expected to produce exactly its finding.

use std::path::Path;

use carbon_db::Vendor;
use carbon_db::testkit::TestDb;
use carbon_verify::{HomeOptions, Origin, Report, Severity, verify_home};

use crate::server::lit;
use crate::support::{carbon_db, db_url, exec, jdbc, redact, set_secondary_domains, upgraded_home};

/// An old database, its staging copy (same fixture, same rows) and the upgraded home.
struct Upgrade {
    old: TestDb,
    staging: TestDb,
    home: tempfile::TempDir,
    tenant_ids: Vec<i64>,
}

fn upgrade(vendor: Vendor) -> Upgrade {
    let (old, summary) = carbon_db(vendor);
    let (staging, again) = carbon_db(vendor);
    assert_eq!(
        summary.tables, again.tables,
        "the same fixture on both sides"
    );
    set_secondary_domains(&old, &summary.tenant_ids);
    set_secondary_domains(&staging, &summary.tenant_ids);
    let home = tempfile::tempdir().unwrap();
    upgraded_home(home.path(), &staging, &summary.tenant_ids);
    Upgrade {
        old,
        staging,
        home,
        tenant_ids: summary.tenant_ids,
    }
}

fn run(u: &Upgrade) -> Report {
    verify_home(&HomeOptions {
        home: u.home.path().to_path_buf(),
        db: Some(db_url(&u.staging)),
        old_db: Some(db_url(&u.old)),
        old_home: None,
        strict: false,
    })
    .unwrap()
}

fn replace_in(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "{} has no {from}", path.display());
    std::fs::write(path, text.replace(from, to)).unwrap();
}

type Breakage = fn(&Upgrade);

/// (name, breakage, expected findings as (severity, check, text in object or message)).
type Expected = Vec<(Severity, &'static str, &'static str)>;

fn cases() -> Vec<(&'static str, Breakage, Expected)> {
    vec![
        ("consistent", |_| {}, vec![]),
        (
            "missing tenant folder",
            |u| {
                let odd = u.tenant_ids.iter().find(|id| *id % 2 != 0).unwrap();
                std::fs::remove_dir_all(u.home.path().join(format!("repository/tenants/{odd}")))
                    .unwrap();
            },
            vec![(
                Severity::Error,
                "tenant-folder",
                "has a UM_TENANT row but no repository/tenants/",
            )],
        ),
        (
            "tenant folder without a row",
            |u| std::fs::create_dir_all(u.home.path().join("repository/tenants/999")).unwrap(),
            vec![(
                Severity::Error,
                "tenant-folder",
                "has no UM_TENANT row with UM_ID 999",
            )],
        ),
        (
            "user store pointing at the old database",
            |u| {
                let file = u
                    .home
                    .path()
                    .join("repository/deployment/server/userstores/wso2_com.xml");
                replace_in(&file, &jdbc(&u.staging), &jdbc(&u.old));
            },
            vec![(
                Severity::Error,
                "userstore-old-db",
                "still points at the old database",
            )],
        ),
        (
            "user store using a datasource of the old database",
            |u| {
                let store = u
                    .home
                    .path()
                    .join("repository/deployment/server/userstores/wso2_com.xml");
                replace_in(
                    &store,
                    &format!("<Property name=\"url\">{}</Property>", jdbc(&u.staging)),
                    "<Property name=\"dataSource\">jdbc/OldUserDB</Property>",
                );
                let file = u
                    .home
                    .path()
                    .join("repository/conf/datasources/master-datasources.xml");
                let old = format!(
                    "<datasource><name>OLD_USER_DB</name><jndiConfig><name>jdbc/OldUserDB</name></jndiConfig>\
                     <definition type=\"RDBMS\"><configuration><url>{}</url></configuration></definition></datasource>\n    </datasources>\n</datasources-configuration>",
                    jdbc(&u.old)
                );
                replace_in(
                    &file,
                    "    </datasources>\n</datasources-configuration>",
                    &old,
                );
            },
            vec![
                (Severity::Error, "userstore-old-db", "user store wso2.com"),
                (
                    Severity::Error,
                    "datasource-old-db",
                    "datasource OLD_USER_DB",
                ),
            ],
        ),
        (
            "datasource pointing at the old database",
            |u| {
                let file = u
                    .home
                    .path()
                    .join("repository/conf/datasources/master-datasources.xml");
                replace_in(&file, &jdbc(&u.staging), &jdbc(&u.old));
            },
            vec![(Severity::Error, "datasource-old-db", "is the old database")],
        ),
        (
            "encrypted user-store passwords without the keystore",
            |u| {
                std::fs::remove_file(
                    u.home
                        .path()
                        .join("repository/resources/security/wso2carbon.jks"),
                )
                .unwrap()
            },
            vec![(
                Severity::Error,
                "userstore-keystore",
                "its password is encrypted but the primary keystore",
            )],
        ),
        (
            "UM_DOMAIN row without a user-store file",
            |u| {
                std::fs::remove_file(
                    u.home
                        .path()
                        .join("repository/deployment/server/userstores/wso2_com.xml"),
                )
                .unwrap()
            },
            vec![(
                Severity::Error,
                "userstore-file",
                "domain WSO2.COM of tenant -1234",
            )],
        ),
        (
            "user-store file without a UM_DOMAIN row",
            |u| {
                let dir = u
                    .home
                    .path()
                    .join("repository/deployment/server/userstores");
                let text = std::fs::read_to_string(dir.join("wso2_com.xml")).unwrap();
                std::fs::write(
                    dir.join("extra_com.xml"),
                    text.replace(">wso2.com<", ">extra.com<"),
                )
                .unwrap();
            },
            vec![(
                Severity::Warning,
                "userstore-domain",
                "no UM_DOMAIN row (EXTRA.COM, tenant -1234)",
            )],
        ),
        (
            "a user missing from staging",
            |u| {
                exec(
                    &u.old,
                    &format!(
                        "INSERT INTO UM_USER (UM_ID, UM_USER_NAME, UM_USER_PASSWORD, UM_REQUIRE_CHANGE, UM_CHANGED_TIME, UM_TENANT_ID) \
                     VALUES (999999, {}, 'x', FALSE, CURRENT_TIMESTAMP, -1234)",
                        lit("late-user")
                    ),
                );
            },
            vec![(Severity::Error, "user-count", "tenant -1234")],
        ),
    ]
}

fn check(vendor: Vendor, only: &[&str]) {
    for (name, breakage, expected) in cases() {
        if !only.is_empty() && !only.contains(&name) {
            continue;
        }
        let u = upgrade(vendor);
        breakage(&u);
        let report = run(&u);
        for (severity, check, text) in &expected {
            assert!(
                report.findings.iter().any(|f| f.severity == *severity
                    && f.check == *check
                    && (f.object.contains(text) || f.message.contains(text))),
                "{vendor} / {name}: expected {severity} {check} {text:?} in\n{report}"
            );
        }
        // Nothing else is wrong: every error and warning is one of the expected ones.
        for finding in report
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
        {
            assert!(
                expected
                    .iter()
                    .any(|(s, c, _)| *s == finding.severity && *c == finding.check),
                "{vendor} / {name}: unexpected {finding}\n{report}"
            );
        }
        assert_eq!(
            report.is_ok(),
            !expected.iter().any(|(s, ..)| *s == Severity::Error),
            "{name}"
        );
        // The consistent upgrade proves every check ran.
        if expected.is_empty() {
            for check in [
                "datasource-staging",
                "tenant-folder",
                "userstore-keystore",
                "user-count",
            ] {
                assert!(
                    report.of_check(check).next().is_some(),
                    "{vendor}: no {check} finding\n{report}"
                );
            }
        }
    }
}

#[test]
fn every_breakage_is_found_postgres() {
    check(Vendor::Postgres, &[]);
}

#[test]
fn consistency_and_user_counts_mariadb() {
    check(
        Vendor::MySql,
        &[
            "consistent",
            "missing tenant folder",
            "a user missing from staging",
        ],
    );
}

#[test]
fn consistency_and_user_counts_sqlite() {
    check(
        Vendor::Sqlite,
        &[
            "consistent",
            "missing tenant folder",
            "user store pointing at the old database",
            "a user missing from staging",
        ],
    );
}

#[test]
fn the_old_database_is_not_written_postgres() {
    let u = upgrade(Vendor::Postgres);
    let before = carbon_db::read_state(&db_url(&u.old), 1, &carbon_db::NoProgress).unwrap();
    run(&u);
    let after = carbon_db::read_state(&db_url(&u.old), 1, &carbon_db::NoProgress).unwrap();
    assert_eq!(format!("{before:?}"), format!("{after:?}"));
}

/// The deliberately broken upgrade of the issue: a missing tenant folder and a user store
/// still pointing at the old database.
#[test]
fn broken_upgrade_report_postgres() {
    let u = upgrade(Vendor::Postgres);
    let odd = *u.tenant_ids.iter().find(|id| *id % 2 != 0).unwrap();
    std::fs::remove_dir_all(u.home.path().join(format!("repository/tenants/{odd}"))).unwrap();
    let store = u
        .home
        .path()
        .join("repository/deployment/server/userstores/wso2_com.xml");
    replace_in(&store, &jdbc(&u.staging), &jdbc(&u.old));
    let report = run(&u);
    assert!(!report.is_ok());
    let (old, staging) = (db_url(&u.old), db_url(&u.staging));
    let text = redact(
        &report.to_string(),
        &[
            (old.database(), "OLD_DB"),
            (staging.database(), "STAGING_DB"),
            (&format!("{}:{}", old.host(), old.port()), "HOST:PORT"),
        ],
    );
    insta::assert_snapshot!(text);
    let json = redact(
        &serde_json::to_string_pretty(&report).unwrap(),
        &[
            (old.database(), "OLD_DB"),
            (staging.database(), "STAGING_DB"),
            (&format!("{}:{}", old.host(), old.port()), "HOST:PORT"),
        ],
    );
    insta::assert_snapshot!(json);
}

#[test]
fn h2_files_are_compared_by_hash() {
    use carbon_config::fixture::{CarbonVersion, HomeSpec, write_home};
    for (name, new_bytes, expected) in [
        ("equal", b"-- H2 0.5/B -- same".as_slice(), Severity::Info),
        (
            "different",
            b"-- H2 0.5/B -- changed".as_slice(),
            Severity::Error,
        ),
    ] {
        let old_home = tempfile::tempdir().unwrap();
        let new_home = tempfile::tempdir().unwrap();
        let spec = HomeSpec::new(CarbonVersion::V4_4_7);
        write_home(old_home.path(), &spec).unwrap();
        write_home(new_home.path(), &spec).unwrap();
        let rel = "repository/database/WSO2CARBON_DB.h2.db";
        std::fs::write(old_home.path().join(rel), b"-- H2 0.5/B -- same").unwrap();
        std::fs::write(new_home.path().join(rel), new_bytes).unwrap();
        let report = verify_home(&HomeOptions {
            home: new_home.path().to_path_buf(),
            db: None,
            old_db: None,
            old_home: Some(old_home.path().to_path_buf()),
            strict: false,
        })
        .unwrap();
        let found: Vec<_> = report.of_check("h2-files").collect();
        assert_eq!(found.len(), 1, "{name}: {report}");
        assert_eq!(found[0].severity, expected, "{name}: {report}");
        assert!(
            found[0].message.contains("WSO2CARBON_DB.h2.db"),
            "{name}: {report}"
        );
        // An H2 staging database cannot be queried: said, not silently skipped.
        assert!(
            report
                .of_check("staging-db")
                .any(|f| f.severity == Severity::Warning),
            "{report}"
        );
    }
}

#[test]
fn a_home_that_is_not_one_is_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let err = verify_home(&HomeOptions {
        home: dir.path().to_path_buf(),
        ..HomeOptions::default()
    })
    .unwrap_err();
    // The message names the home; the cause (no carbon.xml) is its source, told once.
    let text = carbon_db::error_chain(&err);
    assert!(
        text.contains(&dir.path().display().to_string()) && text.matches("carbon.xml").count() == 1,
        "{text}"
    );
}

/// The old home: the same fixture wired to the old database, before any upgrade.
fn old_home(u: &Upgrade) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    upgraded_home(dir.path(), &u.old, &u.tenant_ids);
    dir
}

fn super_store(home: &Path) -> std::path::PathBuf {
    home.join("repository/deployment/server/userstores/wso2_com.xml")
}

/// (name, breakage of the old home, breakage of the new one, strict, expected findings as
/// (severity, check, origin)).
type OriginCase = (
    &'static str,
    fn(&Path),
    fn(&Path),
    bool,
    Vec<(Severity, &'static str, Origin)>,
);

fn origin_cases() -> Vec<OriginCase> {
    let remove_store: fn(&Path) = |home| std::fs::remove_file(super_store(home)).unwrap();
    let nothing: fn(&Path) = |_| {};
    vec![
        ("consistent", nothing, nothing, false, vec![]),
        (
            "UM_DOMAIN row without a file in both: pre-existing, a warning",
            remove_store,
            remove_store,
            false,
            vec![(Severity::Warning, "userstore-file", Origin::PreExisting)],
        ),
        (
            "the same, strict: still an error",
            remove_store,
            remove_store,
            true,
            vec![(Severity::Error, "userstore-file", Origin::PreExisting)],
        ),
        (
            "only the new home lost the file: introduced",
            nothing,
            remove_store,
            false,
            vec![(Severity::Error, "userstore-file", Origin::Introduced)],
        ),
    ]
}

fn check_origin(vendor: Vendor) {
    for (name, break_old, break_new, strict, expected) in origin_cases() {
        let u = upgrade(vendor);
        let old = old_home(&u);
        break_old(old.path());
        break_new(u.home.path());
        let report = verify_home(&HomeOptions {
            home: u.home.path().to_path_buf(),
            db: Some(db_url(&u.staging)),
            old_db: Some(db_url(&u.old)),
            old_home: Some(old.path().to_path_buf()),
            strict,
        })
        .unwrap();
        let found: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.severity != Severity::Info)
            .map(|f| (f.severity, f.check.as_str(), f.origin.unwrap()))
            .collect();
        assert_eq!(found, expected, "{vendor} / {name}\n{report}");
        let introduced_errors = expected
            .iter()
            .any(|(s, _, o)| *s == Severity::Error && *o == Origin::Introduced);
        assert_eq!(
            report.is_ok(),
            !introduced_errors && !strict,
            "{vendor} / {name}"
        );
    }
}

#[test]
fn findings_of_the_old_system_are_pre_existing_postgres() {
    check_origin(Vendor::Postgres);
}

#[test]
fn findings_of_the_old_system_are_pre_existing_mariadb() {
    check_origin(Vendor::MySql);
}
