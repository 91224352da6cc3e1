//! The product-home writer: structure, determinism, and that every XML it writes parses.

use carbon_config::fixture::{CarbonVersion, ContentScale, HomeSpec, write_home};

use crate::support::tree_bytes;

#[test]
fn writes_the_carbon_layout() {
    let dir = tempfile::tempdir().unwrap();
    let summary = write_home(dir.path(), &HomeSpec::new(CarbonVersion::V4_4_7)).unwrap();
    for rel in [
        "bin/version.txt",
        "repository/conf/carbon.xml",
        "repository/conf/datasources/master-datasources.xml",
        "repository/conf/user-mgt.xml",
        "repository/conf/registry.xml",
        "repository/conf/tomcat/catalina-server.xml",
        "repository/resources/security/wso2carbon.jks",
        "repository/deployment/server/axis2services/Version.aar",
        "repository/deployment/server/userstores/wso2_com.xml",
        "repository/tenants/1/userstores/t1_example_com.xml",
        "repository/tenants/5/webapps/t5app/WEB-INF/web.xml",
    ] {
        assert!(dir.path().join(rel).is_file(), "{rel} missing");
    }
    let files = tree_bytes(dir.path());
    assert_eq!(summary.files, files.len() as u64);
    assert_eq!(
        summary.bytes,
        files.iter().map(|(_, b)| b.len() as u64).sum::<u64>()
    );
    assert!(
        (20..100).contains(&summary.files),
        "tiny should be a few dozen files: {summary:?}"
    );
    let version = std::fs::read_to_string(dir.path().join("bin/version.txt")).unwrap();
    assert_eq!(version, "WSO2 Carbon Framework v4.4.7\n");
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let (a, b, c) = (
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
        tempfile::tempdir().unwrap(),
    );
    let spec = HomeSpec {
        content: ContentScale::Small,
        ..HomeSpec::new(CarbonVersion::V4_4_6)
    };
    write_home(a.path(), &spec).unwrap();
    write_home(b.path(), &spec).unwrap();
    write_home(
        c.path(),
        &HomeSpec {
            seed: spec.seed + 1,
            ..spec
        },
    )
    .unwrap();
    assert_eq!(tree_bytes(a.path()), tree_bytes(b.path()));
    assert_ne!(tree_bytes(a.path()), tree_bytes(c.path()));
}

#[test]
fn every_written_xml_file_is_well_formed() {
    let dir = tempfile::tempdir().unwrap();
    write_home(dir.path(), &HomeSpec::new(CarbonVersion::V4_4_7)).unwrap();
    let xml_files: Vec<_> = tree_bytes(dir.path())
        .into_iter()
        .filter(|(p, _)| p.ends_with(".xml"))
        .collect();
    assert!(xml_files.len() >= 9);
    for (rel, bytes) in xml_files {
        // carbon.xml is Latin-1 with one non-ASCII byte; map it 1:1 for this structural check.
        let text: String = bytes.iter().map(|&b| b as char).collect();
        let mut reader = quick_xml::Reader::from_str(&text);
        loop {
            match reader.read_event() {
                Ok(quick_xml::events::Event::Eof) => break,
                Ok(_) => {}
                Err(err) => panic!("{rel}: {err}"),
            }
        }
    }
}
