//! Conformance over the real WSO2 files in `shared/carbon-fixtures` (read in place, never copied
//! into the project). Run with `cargo xtask conformance`.

use std::path::{Path, PathBuf};

use carbon_config::home::datasources_in;
use carbon_config::{
    ConfigError, Edit, ProductHome, Secret, Vendor, XPath, XmlDoc, carry_over, plan,
};

use crate::support::{files, used_datasources};

fn fixtures() -> PathBuf {
    carbon_db::testkit::wso2_fixtures()
}

fn files_with_ext(root: &Path, ext: &str) -> Vec<PathBuf> {
    let mut out = files(root);
    out.retain(|path| path.extension().is_some_and(|e| e == ext));
    out
}

fn all_xml() -> Vec<PathBuf> {
    let root = fixtures();
    let mut files = files_with_ext(&root, "xml");
    files.extend(files_with_ext(&root, "wsdl"));
    assert!(
        files.len() >= 50,
        "expected the full fixture set, found {} XML files",
        files.len()
    );
    files
}

/// Positional paths (`a[1]/b[2]`) for every element, so each is addressed uniquely.
fn positional_paths(doc: &XmlDoc) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut stack = vec![(doc.root(), format!("{}[1]", doc.name(doc.root())))];
    while let Some((node, path)) = stack.pop() {
        out.push((node, path.clone()));
        let children: Vec<_> = doc.children(node).collect();
        for &child in &children {
            let name = doc.name(child);
            let position = children
                .iter()
                .filter(|&&c| doc.name(c) == name)
                .position(|&c| c == child)
                .unwrap()
                + 1;
            stack.push((child, format!("{path}/{name}[{position}]")));
        }
    }
    out
}

fn changed_lines(before: &[u8], after: &[u8]) -> Vec<usize> {
    let a: Vec<_> = before.split(|&b| b == b'\n').collect();
    let b: Vec<_> = after.split(|&b| b == b'\n').collect();
    assert_eq!(a.len(), b.len(), "line count changed");
    (0..a.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| i + 1)
        .collect()
}

#[test]
fn every_fixture_xml_survives_a_no_op_edit_byte_for_byte() {
    let files = all_xml();
    for file in &files {
        let doc = XmlDoc::open(file).unwrap_or_else(|e| panic!("{e}"));
        let plan = plan(&doc, &[]).unwrap();
        assert_eq!(
            plan.new_bytes(),
            std::fs::read(file).unwrap(),
            "{}",
            file.display()
        );
        assert!(plan.is_noop());
    }
    println!(
        "conformance: {} real XML/WSDL files round-tripped byte-for-byte",
        files.len()
    );
}

#[test]
fn every_text_leaf_of_every_fixture_can_be_set_changing_only_its_own_bytes() {
    let (mut checked, mut refused) = (0, 0);
    for file in all_xml() {
        let doc = XmlDoc::open(&file).unwrap();
        for (node, path) in positional_paths(&doc) {
            let Ok(old) = doc.text(node) else { continue };
            if doc.children(node).next().is_some() || old.contains('\n') {
                continue;
            }
            let new_value = format!("{old}-carbon&upgrade<{checked}>");
            let plan = match plan(&doc, &[Edit::set(&path, &new_value)]) {
                Ok(plan) => plan,
                // Text interleaved with comments is refused rather than guessed at.
                Err(ConfigError::Unsupported { reason, .. }) if reason.contains("comments") => {
                    refused += 1;
                    continue;
                }
                Err(err) => panic!("{}: {path}: {err}", file.display()),
            };
            // One line changes: the text's line (for `<x .../>` spanning lines, the line of `/>`).
            let changed = changed_lines(doc.bytes(), plan.new_bytes());
            let line = doc.line(node);
            assert!(
                changed.len() == 1 && (line..line + 50).contains(&changed[0]),
                "{}: {path}: lines {changed:?}",
                file.display()
            );
            let after = XmlDoc::parse(&file, plan.new_bytes().to_vec()).unwrap();
            assert_eq!(after.get(&XPath::parse(&path).unwrap()).unwrap(), new_value);
            checked += 1;
        }
    }
    assert!(checked > 1000, "only {checked} leaves checked");
    assert!(refused < 10, "{refused} leaves refused");
    println!(
        "conformance: {checked} text leaves set, each changing exactly its own line; {refused} comment-mixed leaves refused"
    );
}

#[test]
fn setting_the_carbon_db_url_in_the_real_447_file_changes_exactly_that_line() {
    let file = fixtures().join("4.4.7/repository/conf/datasources/master-datasources.xml");
    let doc = XmlDoc::open(&file).unwrap();
    let path = "datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration/url";
    let plan = plan(
        &doc,
        &[Edit::set(
            path,
            "jdbc:postgresql://staging:5432/carbon?ssl=true&sslmode=require",
        )],
    )
    .unwrap();
    assert_eq!(changed_lines(doc.bytes(), plan.new_bytes()), [17]);
    let diff = plan.unified_diff();
    assert_eq!(
        diff.lines()
            .filter(|l| l.starts_with('-') && !l.starts_with("---"))
            .count(),
        1,
        "{diff}"
    );
    assert!(diff.contains("+                    <url>jdbc:postgresql://staging:5432/carbon?ssl=true&amp;sslmode=require</url>"), "{diff}");
}

#[test]
fn setting_the_port_offset_in_the_real_carbon_xml_changes_exactly_that_line() {
    for version in ["4.4.6", "4.4.7"] {
        let file = fixtures().join(version).join("repository/conf/carbon.xml");
        let doc = XmlDoc::open(&file).unwrap();
        assert_eq!(doc.get_str("Server/Ports/Offset").unwrap(), "0");
        let plan = plan(&doc, &[Edit::set("Server/Ports/Offset", "7")]).unwrap();
        assert_eq!(
            changed_lines(doc.bytes(), plan.new_bytes()),
            [127],
            "{version}"
        );
        // The commented-out <HostName> never matches.
        let err = doc.get_str("Server/HostName").unwrap_err().to_string();
        assert!(err.contains("matches nothing"), "{err}");
    }
}

/// Kernel 4.4.7 `repository/` plus the API Manager 2.0.0 `repository/conf` overlay, in a temp dir.
fn apim_home() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for layer in ["4.4.7", "products/wso2am-2.0.0"] {
        let src = fixtures().join(layer);
        for file in files_with_ext(&src.join("repository"), "xml")
            .into_iter()
            .chain(files_with_ext(&src.join("repository"), "properties"))
        {
            let dest = dir.path().join(file.strip_prefix(&src).unwrap());
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::copy(&file, &dest).unwrap();
        }
    }
    dir
}

#[test]
fn the_api_manager_200_home_shows_its_four_datasources() {
    let dir = apim_home();
    let home = ProductHome::open(dir.path()).unwrap();
    let names: Vec<_> = home.datasources.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "WSO2_CARBON_DB",
            "WSO2AM_DB",
            "WSO2AM_STATS_DB",
            "WSO2_MB_STORE_DB"
        ]
    );
    assert!(
        home.datasources
            .iter()
            .all(|d| d.url.as_ref().is_some_and(|u| u.vendor() == Vendor::H2))
    );
    assert_eq!(
        home.datasource("WSO2AM_DB").unwrap().jndi_name.as_deref(),
        Some("jdbc/WSO2AM_DB")
    );
    assert_eq!(home.ports.https, Some(9443));
    assert_eq!(home.ports.http, Some(9763));
    assert_eq!(
        home.user_mgt.datasource.as_deref(),
        Some("jdbc/WSO2CarbonDB")
    );
    assert_eq!(
        home.realm_and_registry_datasources()[0].name,
        "WSO2_CARBON_DB"
    );
    assert_eq!(
        home.primary_keystore().unwrap().key_alias.as_deref(),
        Some("wso2carbon")
    );
}

#[test]
fn the_446_and_447_kernel_homes_have_no_configuration_difference() {
    let root = fixtures();
    let (old, new) = (root.join("4.4.6"), root.join("4.4.7"));
    let report = carry_over(&old, &new, None).unwrap();
    assert!(report.files_compared >= 15, "{}", report.files_compared);
    assert_eq!(report.items.len(), 0, "{:?}", report.items);
    let three_way = carry_over(&old, &new, Some(&old)).unwrap();
    assert_eq!(three_way.items.len(), 0);
    println!(
        "conformance: 4.4.6 vs 4.4.7: {} configuration files compared, 0 differences",
        report.files_compared
    );
}

#[test]
fn secure_vault_aliases_in_the_real_files_are_recognised() {
    // The kernel and product files ship the alias inside a commented-out sample datasource: it
    // must not count as a datasource, and once uncommented it must read as an alias.
    let mut recognised = 0;
    for file in all_xml()
        .into_iter()
        .filter(|f| f.ends_with("master-datasources.xml"))
    {
        let bytes = std::fs::read(&file).unwrap();
        let live = datasources_in(&XmlDoc::parse(&file, bytes.clone()).unwrap(), &file).unwrap();
        assert!(
            live.iter().all(|d| d.name != "SAMPLE_DATA_SOURCE"),
            "{}",
            file.display()
        );
        let text = String::from_utf8(bytes).unwrap();
        let uncommented = text
            .replace("<!--datasource>", "<datasource>")
            .replace("</datasource-->", "</datasource>");
        let doc = XmlDoc::parse(&file, uncommented.into_bytes()).unwrap();
        let sample = datasources_in(&doc, &file)
            .unwrap()
            .into_iter()
            .find(|d| d.name == "SAMPLE_DATA_SOURCE")
            .unwrap();
        assert_eq!(
            sample.password,
            Secret::Alias("WSO2.DB.Password".into()),
            "{}",
            file.display()
        );
        assert_eq!(
            sample.url.as_ref().unwrap().to_string(),
            "jdbc:mysql://localhost:3306/Test1",
            "XA dataSourceProps url"
        );
        recognised += 1;
    }
    assert_eq!(recognised, 5);

    // cipher-tool.properties maps aliases to XPaths: each active one resolves with our path language.
    let dir = apim_home();
    let tool = std::fs::read_to_string(
        dir.path()
            .join("repository/conf/security/cipher-tool.properties"),
    )
    .unwrap();
    let mut resolved = 0;
    for line in tool
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("//"))
    {
        let (alias, target) = line.split_once('=').unwrap();
        let (file, xpath) = target.split_once("//").unwrap();
        let xpath = xpath.rsplit_once(',').map_or(xpath, |(p, _)| p);
        let doc = XmlDoc::open(&dir.path().join(file)).unwrap();
        let nodes = doc
            .select(&XPath::parse(xpath).unwrap())
            .unwrap_or_else(|e| panic!("{alias}: {e}"));
        assert!(!nodes.is_empty(), "{alias}");
        resolved += 1;
    }
    assert_eq!(resolved, 6);
    println!(
        "conformance: {recognised} secure-vault sample aliases recognised, {resolved} cipher-tool XPaths resolved"
    );
}

#[test]
fn the_real_secondary_user_store_reads_as_a_jdbc_store() {
    let file = fixtures().join("userstores/wso2_com.xml");
    let store = carbon_config::home::read_user_store(
        &XmlDoc::open(&file).unwrap(),
        Path::new("wso2_com.xml"),
        -1234,
    );
    assert_eq!(store.domain.as_deref(), Some("wso2.com"));
    assert_eq!(
        store.class.as_deref(),
        Some("org.wso2.carbon.user.core.jdbc.JDBCUserStoreManager")
    );
    assert_eq!(store.url.as_ref().unwrap().vendor(), Vendor::H2);
    assert_eq!(store.driver.as_deref(), Some("org.h2.Driver"));
    assert!(matches!(store.password, Secret::Plain(_)));
    assert!(
        format!("{store:?}").contains("password: <plain, redacted>"),
        "Debug must not show the password"
    );
}

#[test]
fn kernel_homes_open_as_product_homes() {
    for version in ["4.4.6", "4.4.7"] {
        let home = ProductHome::open(&fixtures().join(version)).unwrap();
        assert_eq!(
            home.version.as_deref(),
            Some("${product.version}"),
            "unrendered template"
        );
        assert_eq!(home.ports.offset, 0);
        assert_eq!(home.datasources.len(), 1);
        assert_eq!(home.registry.iter().filter(|r| r.current).count(), 1);
        assert_eq!(
            home.user_mgt.primary_store_class.as_deref(),
            Some("org.wso2.carbon.user.core.jdbc.JDBCUserStoreManager")
        );
        assert_eq!(used_datasources(&home), ["WSO2_CARBON_DB"]);
    }
}

#[test]
fn the_identity_server_use_case_shows_every_realm_store_and_its_datasource() {
    // Kernel 4.4.7 plus IS 5.2.0 use case 5: MySQL primary, AD, read-only LDAP and an Informix store.
    let dir = tempfile::tempdir().unwrap();
    let kernel = fixtures().join("4.4.7");
    for file in files_with_ext(&kernel.join("repository"), "xml") {
        let dest = dir.path().join(file.strip_prefix(&kernel).unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        std::fs::copy(&file, &dest).unwrap();
    }
    let uc5 = fixtures().join("products/wso2is-5.2.0-usecases/uc5");
    std::fs::copy(
        uc5.join("user-mgt.xml"),
        dir.path().join("repository/conf/user-mgt.xml"),
    )
    .unwrap();
    std::fs::copy(
        uc5.join("master-datasources.xml"),
        dir.path()
            .join("repository/conf/datasources/master-datasources.xml"),
    )
    .unwrap();

    let home = ProductHome::open(dir.path()).unwrap();
    let domains: Vec<_> = home
        .user_mgt
        .realm_stores
        .iter()
        .map(|s| s.domain.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        domains,
        ["MYSQL", "WSO2.COM", "DEVLAB.WSO2.COM", "INFORMIX"]
    );
    let carbon = home.datasource("WSO2_CARBON_DB").unwrap();
    assert_eq!(carbon.url.as_ref().unwrap().vendor(), Vendor::MySql);
    let wm = home.datasource("WM_DB").unwrap();
    assert_eq!(
        wm.url.as_ref().unwrap().vendor(),
        Vendor::Other,
        "informix-sqli is kept as written"
    );
    assert!(
        wm.url
            .as_ref()
            .unwrap()
            .to_string()
            .ends_with(":INFORMIXSERVER=ol_informix1170")
    );
    assert_eq!(used_datasources(&home), ["WSO2_CARBON_DB", "WM_DB"]);
}
