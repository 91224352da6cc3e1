//! `connect`: pointing the new home at staging, refusing the old database.

use carbon_config::fixture::{CarbonVersion, DatasourceSpec, HomeSpec, write_home};
use carbon_config::{ConfigError, ConnectTarget, JdbcUrl, ProductHome, Secret, connect};

use crate::support::tree_bytes;

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

#[test]
fn connects_the_new_home_and_leaves_the_old_one_alone() {
    let homes = homes();
    let old_before = tree_bytes(&homes.old.root);
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
        tree_bytes(&homes.old.root),
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
    let new_before = tree_bytes(&homes.new.root);
    for case in cases {
        let err = connect(&homes.new, &[case], Some(&homes.old)).unwrap_err();
        assert!(matches!(err, ConfigError::Refused { .. }), "{err}");
        assert!(
            err.to_string().contains("is the old product's database"),
            "{err}"
        );
    }
    assert_eq!(tree_bytes(&homes.new.root), new_before);
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

/// An old home whose secondary stores (super tenant: plain password; tenants 1 and 2:
/// encrypted) all use the old datasource's database, and a new home with no store yet.
fn homes_with_stores(url: &str, password: Secret) -> (tempfile::TempDir, ProductHome, ProductHome) {
    let dir = tempfile::tempdir().unwrap();
    let mut old = HomeSpec::new(CarbonVersion::V4_4_6);
    old.tenant_ids = vec![1, 2];
    old.stores_on_first_datasource = true;
    old.datasources[0].url = url.into();
    old.datasources[0].username = "carbon".into();
    old.datasources[0].password = password;
    write_home(&dir.path().join("old"), &old).unwrap();
    let mut new = HomeSpec::new(CarbonVersion::V4_4_7);
    new.tenant_ids = Vec::new();
    write_home(&dir.path().join("new"), &new).unwrap();
    // A fresh product has no secondary store of its own.
    std::fs::remove_dir_all(
        dir.path()
            .join("new/repository/deployment/server/userstores"),
    )
    .unwrap();
    let old = ProductHome::open(&dir.path().join("old")).unwrap();
    let new = ProductHome::open(&dir.path().join("new")).unwrap();
    (dir, old, new)
}

/// What replication does to the stores: copies them unchanged.
fn replicate_stores(old: &ProductHome, new: &ProductHome) -> ProductHome {
    for store in &old.user_stores {
        let to = new.root.join(&store.file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(old.root.join(&store.file), to).unwrap();
    }
    ProductHome::open(&new.root).unwrap()
}

/// Plans the store edits before replication (shown) and after (applied), and checks the result.
fn check_user_stores(name: &str, url: &str, password: Secret, staging: &str, expect: Secret) {
    let (_dir, old, new) = homes_with_stores(url, password);
    let old_before = tree_bytes(&old.root);
    let targets = [target("WSO2_CARBON_DB", staging, Some("st4ging-pw"))];

    let shown = carbon_config::user_stores(&old, &new, &targets).unwrap();
    let files: Vec<_> = shown.plans.iter().map(|p| p.file().to_path_buf()).collect();
    assert_eq!(files.len(), 3, "{name}: {files:?}");
    assert!(
        files.iter().all(|f| f.starts_with(&new.root)),
        "{name}: {files:?}"
    );
    let diff = shown.unified_diff();
    assert!(diff.contains(staging), "{name}: {diff}");
    assert!(
        !diff.contains("st4ging-pw") && !diff.contains("0ld-pw"),
        "{name}: {diff}"
    );
    let encrypted_notices = shown
        .notices
        .iter()
        .filter(|n| n.message.contains("encrypted with the keystore and left as it is; the staging database must accept it"))
        .count();
    assert_eq!(encrypted_notices, 2, "{name}: {:?}", shown.notices);

    let new = replicate_stores(&old, &new);
    let plan = carbon_config::user_stores(&old, &new, &targets).unwrap();
    assert_eq!(
        plan.unified_diff(),
        diff,
        "{name}: the shown plan is the applied one"
    );
    for file_plan in &plan.plans {
        carbon_config::apply_without_backup(file_plan).unwrap();
    }
    let new = ProductHome::open(&new.root).unwrap();
    let staging_url = JdbcUrl::parse(staging).unwrap();
    assert_eq!(new.user_stores.len(), 3);
    for store in &new.user_stores {
        let file = new.root.join(&store.file);
        assert!(!file.with_extension("xml.bak").exists(), "{name}: no .bak");
        assert!(
            store.url.as_ref().unwrap().same_database(&staging_url),
            "{name}: {} still on {:?}",
            store.file.display(),
            store.url
        );
        assert_eq!(store.username.as_deref(), Some("staging_user"), "{name}");
        if store.tenant_id == -1234 {
            assert_eq!(store.password, expect, "{name}");
        } else {
            assert!(
                matches!(store.password, Secret::Encrypted(_)),
                "{name}: encrypted stays"
            );
        }
    }
    let again = carbon_config::user_stores(&old, &new, &targets).unwrap();
    assert!(again.plans.is_empty(), "{name}: applied once, nothing left");
    assert_eq!(
        tree_bytes(&old.root),
        old_before,
        "{name}: old home untouched"
    );
}

#[test]
fn user_stores_on_the_old_database_are_pointed_at_staging() {
    let cases = [
        (
            "postgres, plain password of the datasource",
            "jdbc:postgresql://pg.example.com:5432/carbon",
            Secret::Plain("0ld-pw".into()),
            "jdbc:postgresql://pg.example.com:5432/carbon_staging",
            Secret::Plain("st4ging-pw".into()),
        ),
        (
            "mariadb, empty password",
            "jdbc:mysql://db.example.com:3306/carbon?useSSL=false",
            Secret::Empty,
            "jdbc:mysql://db.example.com:3306/carbon_staging?useSSL=false",
            Secret::Empty,
        ),
    ];
    for (name, url, password, staging, expect) in cases {
        check_user_stores(name, url, password, staging, expect);
    }
}

#[test]
fn user_stores_on_other_databases_or_credentials_are_left_alone() {
    let (_dir, old, new) = homes_with_stores(
        "jdbc:postgresql://pg.example.com:5432/carbon",
        Secret::Plain("0ld-pw".into()),
    );
    // The super tenant's store: same database, its own user and password.
    let file = old
        .root
        .join("repository/deployment/server/userstores/wso2_com.xml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace(">carbon<", ">store_user<")
        .replace(">0ld-pw<", ">store-pw<");
    std::fs::write(&file, text).unwrap();
    // Tenant 2's store: another database.
    let file = old
        .root
        .join("repository/tenants/2/userstores/t2_example_com.xml");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("5432/carbon<", "5432/elsewhere<");
    std::fs::write(&file, text).unwrap();
    let old = ProductHome::open(&old.root).unwrap();
    let new = replicate_stores(&old, &new);
    let targets = [target(
        "WSO2_CARBON_DB",
        "jdbc:postgresql://pg.example.com:5432/carbon_staging",
        Some("st4ging-pw"),
    )];
    let plan = carbon_config::user_stores(&old, &new, &targets).unwrap();
    let files: Vec<_> = plan.plans.iter().map(|p| p.file().to_path_buf()).collect();
    assert_eq!(files.len(), 2, "{files:?}");
    let super_plan = &plan.plans[0];
    let paths: Vec<_> = super_plan
        .changes()
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    assert_eq!(
        paths,
        ["UserStoreManager/Property[@name='url']"],
        "only the URL"
    );
    // Without a staging database for that datasource, the store is left and said so.
    let plan = carbon_config::user_stores(&old, &new, &[]).unwrap();
    assert!(plan.plans.is_empty());
    assert!(
        plan.notices
            .iter()
            .any(|n| n.message.contains("no staging database replaces it")),
        "{:?}",
        plan.notices
    );
}
