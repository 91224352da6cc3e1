//! Acceptance scenarios with WSO2's real scripts: a product database (fresh-install scripts of
//! the old version, generated rows) copied to staging, WSO2's migration scripts applied to
//! staging, then proved against the new version's fresh-install scripts. The residual
//! differences are asserted exactly; the source is unchanged (pg_dump / mysqldump).

use std::path::PathBuf;

use carbon_db::schema::{self, Class, SchemaDiff};
use carbon_db::testkit::{TestDb, wso2_fixtures};
use carbon_db::{CopyOptions, Session, Vendor};

use crate::schema::lines;
use crate::support::{copy, mysqldump, pg_dump, url};

fn paths(rel: &[&str]) -> Vec<PathBuf> {
    rel.iter().map(|r| wso2_fixtures().join(r)).collect()
}

fn vendor_dir(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::Postgres => "postgresql",
        _ => "mysql",
    }
}

/// A source made by `scripts` (latin1 on MariaDB: WSO2's 2.1.0 MySQL scripts fail with error
/// 1071 under a utf8mb4 default) with generated rows, and a verified copy of it.
fn source_and_staging(vendor: Vendor, scripts: &[&str]) -> (TestDb, TestDb) {
    let src = TestDb::new(vendor);
    let mut s = Session::read_write(&url(&src)).unwrap();
    if vendor == Vendor::MySql {
        s.execute(&format!(
            "ALTER DATABASE `{}` CHARACTER SET latin1 COLLATE latin1_swedish_ci",
            src.name()
        ))
        .unwrap();
    }
    for path in paths(scripts) {
        schema::run_script(&mut s, &path)
            .unwrap_or_else(|e| panic!("{}", carbon_db::error_chain(&e)));
    }
    drop(s);
    let filled = match vendor {
        Vendor::Postgres => carbon_db::fixture::fill_postgres(&mut src.pg_client(), 5).unwrap(),
        _ => fill_ascii_mysql(&src).unwrap(),
    };
    assert!(filled > 0);
    let staging = TestDb::reserve(vendor);
    copy(&src, &staging, &CopyOptions::default());
    (src, staging)
}

/// MariaDB: the filler's CJK/emoji text does not fit latin1 tables; a tenant (and a block
/// condition on API-M) is enough to watch row counts.
fn fill_ascii_mysql(db: &TestDb) -> Result<u64, carbon_db::DbError> {
    let mut s = Session::read_write(&url(db))?;
    s.execute("INSERT INTO UM_TENANT (UM_DOMAIN_NAME, UM_EMAIL, UM_ACTIVE, UM_CREATED_DATE) VALUES ('a.com', 'a@a.com', 1, NOW())")?;
    if !schema::read_catalog(&url(db))
        .unwrap()
        .tables
        .contains_key("AM_BLOCK_CONDITIONS")
    {
        return Ok(1);
    }
    s.execute("INSERT INTO AM_BLOCK_CONDITIONS (TYPE, VALUE, ENABLED, DOMAIN) VALUES ('IP', '10.0.0.1', 'TRUE', 'carbon.super')")?;
    Ok(2)
}

fn dump(db: &TestDb) -> String {
    match db.vendor() {
        Vendor::Postgres => pg_dump(db),
        _ => mysqldump(db),
    }
}

fn prove(staging: &TestDb, fresh: &[&str]) -> SchemaDiff {
    schema::prove(&url(staging), &paths(fresh))
        .unwrap_or_else(|e| panic!("{}", carbon_db::error_chain(&e)))
        .diff
}

const APIM_200: [&str; 4] = [
    "4.4.7/dbscripts",
    "products/wso2am-2.0.0/dbscripts/apimgt",
    "products/wso2am-2.0.0/dbscripts/mb-store",
    "products/wso2am-2.0.0/dbscripts/metrics",
];

const APIM_210: [&str; 4] = [
    "kernel-4.4.11/dbscripts",
    "products/wso2am-2.1.0/dbscripts/apimgt",
    "products/wso2am-2.1.0/dbscripts/mb-store",
    "products/wso2am-2.1.0/dbscripts/metrics",
];

fn check_apim(
    vendor: Vendor,
    expected: &[&str],
    after_align: &[&str],
    missing_without_identity: (usize, usize),
) {
    let (src, staging) = source_and_staging(vendor, &APIM_200);
    let source_before = dump(&src);
    let dir = tempfile::tempdir().unwrap();
    // The API-M script alone: the identity schema of 5.3.0 is missing.
    let apim_only = carbon_db::migrate::migrate(
        &url(&staging),
        &paths(&["migration/apim-2.0.0-to-2.1.0"]),
        &dir.path().join("apim.jsonl"),
    )
    .unwrap();
    assert!(apim_only.lost().is_empty(), "{:?}", apim_only.lost());
    let diff = prove(&staging, &APIM_210);
    let count = |f: &dyn Fn(&str) -> bool| {
        diff.differences
            .iter()
            .filter(|d| d.class == Class::Missing && f(&d.object))
            .count()
    };
    assert_eq!(
        (
            count(&|o| o == "table"),
            count(&|o| o.starts_with("column "))
        ),
        missing_without_identity,
        "{}",
        lines(&diff).join("\n")
    );
    // Then the identity migration, as the API-M 2.1.0 upgrade runs it.
    let identity = format!(
        "migration/is-5.2.0-to-5.3.0/{}/v5.3.0-release",
        vendor_dir(vendor)
    );
    let report = carbon_db::migrate::migrate(
        &url(&staging),
        &paths(&[&identity]),
        &dir.path().join("identity.jsonl"),
    )
    .unwrap();
    assert!(report.lost().is_empty(), "{:?}", report.lost());
    assert!(
        report.rows.iter().any(|r| r.before.unwrap_or(0) > 0),
        "rows were counted"
    );
    let diff = prove(&staging, &APIM_210);
    assert_eq!(lines(&diff), expected, "{}", lines(&diff).join("\n"));
    let block = diff
        .differences
        .iter()
        .find(|d| d.table == "AM_BLOCK_CONDITIONS")
        .unwrap();
    assert!(
        block.detail.contains("longer than 45 characters"),
        "{}",
        block.detail
    );
    // align: widen the narrower columns, add the missing index; the rest stays for the operator.
    schema::align(&url(&staging), &diff)
        .unwrap_or_else(|e| panic!("{}", carbon_db::error_chain(&e)));
    let aligned = prove(&staging, &APIM_210);
    assert_eq!(
        lines(&aligned),
        after_align,
        "{}",
        lines(&aligned).join("\n")
    );
    assert_eq!(dump(&src), source_before, "the source is unchanged");
}

#[test]
fn postgres_apim_200_to_210_residual_differences() {
    check_apim(
        Vendor::Postgres,
        &[
            "missing UM_USER_ATTRIBUTE index UM_USER_ID_INDEX",
            "risky AM_BLOCK_CONDITIONS column VALUE",
            "risky IDN_OAUTH2_RESOURCE_SCOPE foreign key (SCOPE_ID) -> IDN_OAUTH2_SCOPE(SCOPE_ID)",
            "risky IDP_PROVISIONING_CONFIG column IS_RULES_ENABLED",
            "risky SP_INBOUND_AUTH column INBOUND_CONFIG_TYPE",
            "risky WF_BPS_PROFILE column PASSWORD",
            "compatible IDN_PASSWORD_HISTORY_DATA column USER_DOMAIN",
            "compatible IDN_RECOVERY_DATA column STEP",
            "compatible IDN_RECOVERY_DATA column USER_DOMAIN",
        ],
        &[
            "risky IDN_OAUTH2_RESOURCE_SCOPE foreign key (SCOPE_ID) -> IDN_OAUTH2_SCOPE(SCOPE_ID)",
            "risky IDP_PROVISIONING_CONFIG column IS_RULES_ENABLED",
            "risky SP_INBOUND_AUTH column INBOUND_CONFIG_TYPE",
            "compatible IDN_PASSWORD_HISTORY_DATA column USER_DOMAIN",
            "compatible IDN_RECOVERY_DATA column STEP",
            "compatible IDN_RECOVERY_DATA column USER_DOMAIN",
        ],
        (8, 6),
    );
}

#[test]
fn mariadb_apim_200_to_210_residual_differences() {
    check_apim(
        Vendor::MySql,
        &[
            "missing UM_USER_ATTRIBUTE index UM_USER_ID_INDEX",
            "risky AM_BLOCK_CONDITIONS column VALUE",
            "risky IDN_OAUTH2_RESOURCE_SCOPE foreign key (SCOPE_ID) -> IDN_OAUTH2_SCOPE(SCOPE_ID)",
            "risky IDP_PROVISIONING_CONFIG column IS_RULES_ENABLED",
            "risky WF_BPS_PROFILE column PASSWORD",
            "extra AM_API index IDX_AAI_CTX",
            "extra AM_API_URL_MAPPING index IDX_AAUM_TT",
            "extra IDN_SAML2_ASSERTION_STORE table",
            "compatible IDN_PASSWORD_HISTORY_DATA column USER_DOMAIN",
        ],
        &[
            "risky IDN_OAUTH2_RESOURCE_SCOPE foreign key (SCOPE_ID) -> IDN_OAUTH2_SCOPE(SCOPE_ID)",
            "risky IDP_PROVISIONING_CONFIG column IS_RULES_ENABLED",
            "extra AM_API index IDX_AAI_CTX",
            "extra AM_API_URL_MAPPING index IDX_AAUM_TT",
            "extra IDN_SAML2_ASSERTION_STORE table",
            "compatible IDN_PASSWORD_HISTORY_DATA column USER_DOMAIN",
        ],
        // API-M 2.1.0's MySQL script has no IDN_SAML2_ASSERTION_STORE.
        (7, 6),
    );
}

/// IS 5.2.0 -> 5.3.0 with the release scripts and with the `step1` ones (MySQL: a stored
/// procedure written without DELIMITER).
#[test]
fn identity_520_to_530_release_and_step1_scripts() {
    let release_extra = [
        "compatible IDN_PASSWORD_HISTORY_DATA column USER_DOMAIN",
        "compatible IDN_RECOVERY_DATA column STEP",
        "compatible IDN_RECOVERY_DATA column USER_DOMAIN",
    ];
    for vendor in [Vendor::Postgres, Vendor::MySql] {
        for variant in ["v5.3.0-release", "step1"] {
            let (src, staging) = source_and_staging(
                vendor,
                &[
                    "4.4.7/dbscripts",
                    "products/wso2is-5.2.0/dbscripts/identity",
                ],
            );
            let dir = tempfile::tempdir().unwrap();
            let script = format!(
                "migration/is-5.2.0-to-5.3.0/{}/{variant}",
                vendor_dir(vendor)
            );
            carbon_db::migrate::migrate(
                &url(&staging),
                &paths(&[&script]),
                &dir.path().join("j.jsonl"),
            )
            .unwrap_or_else(|e| panic!("{vendor} {variant}: {}", carbon_db::error_chain(&e)));
            let diff = prove(
                &staging,
                &[
                    "kernel-4.4.11/dbscripts",
                    "products/wso2is-5.3.0/dbscripts/identity",
                ],
            );
            let mut expected = vec![
                "missing UM_USER_ATTRIBUTE index UM_USER_ID_INDEX",
                "risky IDP_PROVISIONING_CONFIG column IS_RULES_ENABLED",
            ];
            if vendor == Vendor::Postgres {
                expected.push("risky SP_INBOUND_AUTH column INBOUND_CONFIG_TYPE");
            }
            if variant == "v5.3.0-release" {
                expected.extend(release_extra);
            }
            assert_eq!(lines(&diff), expected, "{vendor} {variant}");
            drop(src);
        }
    }
}
