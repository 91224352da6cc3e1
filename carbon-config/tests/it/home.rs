//! `ProductHome::open` over homes written by the fixture writer.

use carbon_config::fixture::{CarbonVersion, DatasourceSpec, HomeSpec, write_home};
use carbon_config::{ConfigError, ProductHome, Secret, Vendor};

use crate::support::used_datasources;

fn written_home(spec: &HomeSpec) -> (tempfile::TempDir, ProductHome) {
    let dir = tempfile::tempdir().unwrap();
    write_home(dir.path(), spec).unwrap();
    let home = ProductHome::open(dir.path()).unwrap();
    (dir, home)
}

fn mysql_spec() -> HomeSpec {
    let mut spec = HomeSpec::new(CarbonVersion::V4_4_6);
    spec.port_offset = 3;
    spec.tenant_ids = vec![1, 7];
    spec.datasources.push(DatasourceSpec {
        name: "WSO2AM_DB".into(),
        description: "API Manager".into(),
        jndi_name: "jdbc/WSO2AM_DB".into(),
        url: "jdbc:mysql://db.example.com:3306/apimgt?autoReconnect=true&useSSL=false".into(),
        username: "apim".into(),
        password: Secret::Alias("Datasources.WSO2AM_DB.Password".into()),
        driver_class_name: "com.mysql.jdbc.Driver".into(),
        pool: vec![("maxActive".into(), "80".into())],
    });
    spec
}

#[test]
fn reads_back_what_the_writer_wrote() {
    let (_dir, home) = written_home(&mysql_spec());
    assert_eq!(home.version.as_deref(), Some("4.4.6"));
    assert_eq!(
        home.version_txt.as_deref(),
        Some("WSO2 Carbon Framework v4.4.6")
    );
    assert_eq!(home.ports.offset, 3);
    assert_eq!(
        (home.ports.http, home.ports.https),
        (Some(9763), Some(9443))
    );
    assert_eq!(home.ports.effective_https(), Some(9446));
    assert_eq!(home.tenant_ids, vec![1, 7]);

    let names: Vec<_> = home.datasources.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        ["WSO2_CARBON_DB", "WSO2AM_DB"],
        "the commented sample is not a datasource"
    );
    let carbon = home.datasource("WSO2_CARBON_DB").unwrap();
    assert_eq!(carbon.url.as_ref().unwrap().vendor(), Vendor::H2);
    assert_eq!(carbon.password, Secret::Plain("wso2carbon".into()));
    assert_eq!(carbon.pool.len(), 6);
    let am = home.datasource("WSO2AM_DB").unwrap();
    assert_eq!(
        am.password,
        Secret::Alias("Datasources.WSO2AM_DB.Password".into())
    );
    assert_eq!(am.url.as_ref().unwrap().host(), Some("db.example.com"));
    assert_eq!(am.pool, [("maxActive".to_owned(), "80".to_owned())]);

    assert_eq!(
        home.user_mgt.datasource.as_deref(),
        Some("jdbc/WSO2CarbonDB")
    );
    assert_eq!(home.registry.len(), 1);
    assert!(home.registry[0].current);
    assert_eq!(used_datasources(&home), ["WSO2_CARBON_DB"]);

    let stores: Vec<_> = home
        .user_stores
        .iter()
        .map(|s| (s.tenant_id, s.domain.clone().unwrap()))
        .collect();
    assert_eq!(
        stores,
        [
            (-1234, "wso2.com".into()),
            (1, "t1.example.com".into()),
            (7, "t7.example.com".into())
        ]
    );
    assert!(matches!(home.user_stores[1].password, Secret::Encrypted(_)));
    assert_eq!(
        home.user_stores[1].url.as_ref().unwrap().vendor(),
        Vendor::MySql
    );

    let primary = home.primary_keystore().unwrap();
    assert!(primary.exists, "{:?}", primary.path);
    assert_eq!(primary.key_alias.as_deref(), Some("wso2carbon"));
}

#[test]
fn json_and_debug_never_show_passwords() {
    let mut spec = mysql_spec();
    spec.datasources[0].password = Secret::Plain("s3cret-pw".into());
    let (dir, home) = written_home(&spec);
    let json = serde_json::to_string_pretty(&home).unwrap();
    let debug = format!("{home:?}");
    for shown in [&json, &debug] {
        assert!(
            !shown.contains("s3cret-pw"),
            "plain password leaked: {shown}"
        );
        assert!(
            !shown.contains("ZHVtbXkt"),
            "encrypted user-store password leaked"
        );
    }
    let json = json.replace(&dir.path().display().to_string(), "[HOME]");
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(
        value["keystores"][0]["password"],
        serde_json::json!({"kind": "plain", "alias": null})
    );
    insta::assert_json_snapshot!("home_datasource_am", value["datasources"][1]);
    insta::assert_json_snapshot!("home_keystore", value["keystores"][0]);
}

#[test]
fn refuses_non_homes_and_toml_driven_homes() {
    let empty = tempfile::tempdir().unwrap();
    let err = ProductHome::open(empty.path()).unwrap_err();
    assert!(matches!(err, ConfigError::NotAProductHome { .. }), "{err}");
    assert!(
        err.to_string()
            .ends_with("not a Carbon product home (no repository/conf/carbon.xml)"),
        "{err}"
    );

    let (dir, _) = written_home(&HomeSpec::new(CarbonVersion::V4_4_7));
    std::fs::write(
        dir.path().join("repository/conf/deployment.toml"),
        "[server]\noffset = 1\n",
    )
    .unwrap();
    let err = ProductHome::open(dir.path()).unwrap_err();
    assert!(matches!(err, ConfigError::TomlDriven { .. }), "{err}");
    assert!(
        err.to_string().contains("edit deployment.toml instead"),
        "{err}"
    );
    let carbon_xml = dir.path().join("repository/conf/carbon.xml");
    let edit = carbon_config::Edit::set("Server/Ports/Offset", "1");
    let err = carbon_config::plan_file(&carbon_xml, &[edit]).unwrap_err();
    assert!(
        matches!(err, ConfigError::TomlDriven { .. }),
        "editing a file of such a home is refused too: {err}"
    );
}

#[test]
fn a_broken_config_file_is_named_in_the_error() {
    let (dir, _) = written_home(&HomeSpec::new(CarbonVersion::V4_4_7));
    let file = dir
        .path()
        .join("repository/conf/datasources/master-datasources.xml");
    std::fs::write(&file, "<datasources-configuration><datasources>").unwrap();
    let err = ProductHome::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("master-datasources.xml: malformed XML"),
        "{err}"
    );
}

/// The tenants directory is decided once, as Carbon does: the start script's
/// `-Dtenants.dir.path` (uncommented, quoted or not, `$CARBON_HOME` resolved), else
/// `CARBON_TENANTS_DIR_PATH`, else `repository/tenants`; the model reads tenants from there.
#[test]
fn tenants_dir_follows_the_start_script() {
    let (dir, _) = written_home(&mysql_spec());
    let root = dir.path();
    let fallback = std::env::var_os("CARBON_TENANTS_DIR_PATH")
        .filter(|v| !v.is_empty())
        .map_or_else(|| root.join("repository/tenants"), |v| root.join(v));
    let cases: [(&str, Result<std::path::PathBuf, &str>); 6] = [
        ("", Ok(fallback.clone())),
        ("# -Dtenants.dir.path=/commented \\\n", Ok(fallback)),
        (
            "  -Dtenants.dir.path=/srv/tenants \\\n",
            Ok("/srv/tenants".into()),
        ),
        (
            "  -Dtenants.dir.path=\"$CARBON_HOME/t x\" \\\n",
            Ok(root.join("t x")),
        ),
        (
            "  -Dtenants.dir.path=${CARBON_HOME}/t \\\n",
            Ok(root.join("t")),
        ),
        (
            "  -Dtenants.dir.path=$TENANTS \\\n",
            Err("bin/wso2server.sh"),
        ),
    ];
    std::fs::create_dir_all(root.join("bin")).unwrap();
    for (line, expected) in cases {
        let script = format!(
            "#!/bin/sh\nexec java -Dcarbon.home=\"$CARBON_HOME\" \\\n{line}    Bootstrap\n"
        );
        std::fs::write(root.join("bin/wso2server.sh"), script).unwrap();
        match (carbon_config::home::tenants_dir(root), expected) {
            (Ok(got), Ok(want)) => assert_eq!(got, want, "{line}"),
            (Err(err), Err(names)) => assert!(err.to_string().contains(names), "{err}"),
            (got, want) => panic!("{line}: {got:?}, expected {want:?}"),
        }
    }
    let moved = root.join("t");
    std::fs::rename(root.join("repository/tenants"), &moved).unwrap();
    std::fs::write(
        root.join("bin/wso2server.sh"),
        "java -Dtenants.dir.path=t Bootstrap\n",
    )
    .unwrap();
    let home = ProductHome::open(root).unwrap();
    assert_eq!((home.tenants_dir, home.tenant_ids), (moved, vec![1, 7]));
}
