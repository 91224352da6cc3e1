//! `connect`: pointing the new home at staging, refusing the old database.

use std::path::Path;

use carbon_config::fixture::{CarbonVersion, DatasourceSpec, HomeSpec, write_home};
use carbon_config::{ConfigError, ConnectTarget, JdbcUrl, ProductHome, Secret, connect};

fn spec(version: CarbonVersion) -> HomeSpec {
    let mut spec = HomeSpec::new(version);
    spec.datasources.push(DatasourceSpec {
        name: "WSO2AM_DB".into(),
        description: "API Manager".into(),
        jndi_name: "jdbc/WSO2AM_DB".into(),
        url: "jdbc:mysql://db.example.com:3306/apimgt?useSSL=false".into(),
        username: "apim".into(),
        password: Secret::Alias("Datasources.WSO2AM_DB.Password".into()),
        driver_class_name: "com.mysql.jdbc.Driver".into(),
        pool: vec![("validationQuery".into(), "SELECT 1".into())],
    });
    spec
}

struct Homes {
    _dir: tempfile::TempDir,
    old: ProductHome,
    new: ProductHome,
}

fn homes() -> Homes {
    let dir = tempfile::tempdir().unwrap();
    write_home(&dir.path().join("old"), &spec(CarbonVersion::V4_4_6)).unwrap();
    write_home(&dir.path().join("new"), &spec(CarbonVersion::V4_4_7)).unwrap();
    Homes {
        old: ProductHome::open(&dir.path().join("old")).unwrap(),
        new: ProductHome::open(&dir.path().join("new")).unwrap(),
        _dir: dir,
    }
}

fn target(name: &str, url: &str, password: Option<&str>) -> ConnectTarget {
    ConnectTarget {
        datasource: name.into(),
        url: JdbcUrl::parse(url).unwrap(),
        username: Some("staging_user".into()),
        password: password.map(Into::into),
    }
}

fn snapshot_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn connects_the_new_home_and_leaves_the_old_one_alone() {
    let homes = homes();
    let old_before = snapshot_tree(&homes.old.root);
    let targets = [
        target(
            "WSO2_CARBON_DB",
            "jdbc:postgresql://pg.example.com:5432/carbon_staging",
            Some("st4ging-pw"),
        ),
        target(
            "WSO2AM_DB",
            "jdbc:oracle:thin:@ora:1521/APIM_STAGING",
            Some("ignored-for-alias"),
        ),
    ];
    let plan = connect(&homes.new, &targets, Some(&homes.old)).unwrap();
    let diff = plan.unified_diff();
    assert!(!diff.contains("st4ging-pw"), "{diff}");
    let notices: Vec<_> = plan.notices.iter().map(|n| n.message.as_str()).collect();
    assert!(
        notices
            .iter()
            .any(|m| m.contains("secure-vault alias `Datasources.WSO2AM_DB.Password`")),
        "{notices:?}"
    );
    assert!(
        notices
            .iter()
            .any(|m| m.contains("driver set to org.postgresql.Driver")),
        "{notices:?}"
    );

    plan.apply().unwrap();
    let new = ProductHome::open(&homes.new.root).unwrap();
    let carbon = new.datasource("WSO2_CARBON_DB").unwrap();
    assert_eq!(
        carbon.url.as_ref().unwrap().to_string(),
        "jdbc:postgresql://pg.example.com:5432/carbon_staging"
    );
    assert_eq!(carbon.username.as_deref(), Some("staging_user"));
    assert_eq!(carbon.password, Secret::Plain("st4ging-pw".into()));
    assert_eq!(
        carbon.driver_class_name.as_deref(),
        Some("org.postgresql.Driver")
    );
    let am = new.datasource("WSO2AM_DB").unwrap();
    assert_eq!(
        am.password,
        Secret::Alias("Datasources.WSO2AM_DB.Password".into()),
        "alias stays an alias"
    );
    assert_eq!(
        am.driver_class_name.as_deref(),
        Some("oracle.jdbc.OracleDriver")
    );
    assert_eq!(
        am.pool,
        [(
            "validationQuery".to_owned(),
            "SELECT 1 FROM DUAL".to_owned()
        )]
    );

    assert_eq!(
        snapshot_tree(&homes.old.root),
        old_before,
        "the old home is never written"
    );
}

#[test]
fn refuses_to_connect_the_new_product_to_the_old_database() {
    let homes = homes();
    let old_h2 = format!(
        "jdbc:h2:{}/repository/database/WSO2CARBON_DB;AUTO_SERVER=TRUE",
        homes.old.root.display()
    );
    let cases = [
        target("WSO2AM_DB", "jdbc:mysql://DB.example.com/apimgt", None),
        target("WSO2_CARBON_DB", &old_h2, None),
    ];
    let new_before = snapshot_tree(&homes.new.root);
    for case in cases {
        let err = connect(&homes.new, &[case], Some(&homes.old)).unwrap_err();
        assert!(matches!(err, ConfigError::Refused { .. }), "{err}");
        assert!(
            err.to_string().contains("is the old product's database"),
            "{err}"
        );
    }
    assert_eq!(snapshot_tree(&homes.new.root), new_before);
}

#[test]
fn unknown_datasource_is_an_error_naming_it() {
    let homes = homes();
    let err = connect(
        &homes.new,
        &[target("NOPE_DB", "jdbc:mysql://h/x", None)],
        None,
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "datasource `NOPE_DB` not found in {}",
            homes.new.root.display()
        )
    );
}

#[test]
fn warns_about_user_stores_that_use_the_old_database() {
    let homes = homes();
    let targets = [target(
        "WSO2_CARBON_DB",
        "jdbc:mysql://staging/carbon",
        None,
    )];
    let plan = connect(&homes.new, &targets, Some(&homes.old)).unwrap();
    assert!(
        plan.notices.iter().any(|n| n
            .message
            .contains("userstores/wso2_com.xml (wso2.com) uses the old database")),
        "{:?}",
        plan.notices
    );
}

#[test]
fn missing_username_and_password_elements_are_inserted() {
    let homes = homes();
    let config = "datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration";
    let file = homes
        .new
        .root
        .join("repository/conf/datasources/master-datasources.xml");
    let strip = [
        carbon_config::Edit::remove(format!("{config}/username")),
        carbon_config::Edit::remove(format!("{config}/password")),
    ];
    carbon_config::apply(&carbon_config::plan_file(&file, &strip).unwrap()).unwrap();
    let stripped = ProductHome::open(&homes.new.root).unwrap();
    assert_eq!(
        stripped.datasource("WSO2_CARBON_DB").unwrap().username,
        None
    );

    let targets = [target(
        "WSO2_CARBON_DB",
        "jdbc:mysql://staging:3306/carbon",
        Some("pw-123456"),
    )];
    connect(&stripped, &targets, Some(&homes.old))
        .unwrap()
        .apply()
        .unwrap();
    let home = ProductHome::open(&homes.new.root).unwrap();
    let ds = home.datasource("WSO2_CARBON_DB").unwrap();
    assert_eq!(ds.username.as_deref(), Some("staging_user"));
    assert_eq!(ds.password, Secret::Plain("pw-123456".into()));
    assert_eq!(
        ds.driver_class_name.as_deref(),
        Some("com.mysql.jdbc.Driver")
    );
}
