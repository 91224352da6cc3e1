//! Carry-over of configuration customisations, two-way and three-way.

use std::path::Path;

use carbon_config::fixture::{CarbonVersion, HomeSpec, write_home};
use carbon_config::{CarryKind, Edit, ProductHome, apply, carry_over, plan_file};

const CARBON_XML: &str = "repository/conf/carbon.xml";
const MASTER: &str = "repository/conf/datasources/master-datasources.xml";
const MAX_ACTIVE: &str = "datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration/maxActive";

fn edit(home: &Path, file: &str, edits: &[Edit]) {
    apply(&plan_file(&home.join(file), edits).unwrap()).unwrap();
}

fn homes() -> (
    tempfile::TempDir,
    std::path::PathBuf,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let dir = tempfile::tempdir().unwrap();
    let (dist, old, new) = (
        dir.path().join("dist"),
        dir.path().join("old"),
        dir.path().join("new"),
    );
    write_home(&dist, &HomeSpec::new(CarbonVersion::V4_4_6)).unwrap();
    write_home(&old, &HomeSpec::new(CarbonVersion::V4_4_6)).unwrap();
    write_home(&new, &HomeSpec::new(CarbonVersion::V4_4_7)).unwrap();
    (dir, dist, old, new)
}

fn kinds(report: &carbon_config::CarryOver) -> Vec<(CarryKind, String)> {
    report
        .actionable()
        .map(|i| (i.kind, i.key.clone()))
        .collect()
}

#[test]
fn pristine_homes_of_446_and_447_have_nothing_to_carry() {
    let (_dir, _, old, new) = homes();
    let report = carry_over(&old, &new, None).unwrap();
    assert_eq!(report.files_compared, 5);
    assert_eq!(kinds(&report), []);
}

#[test]
fn customisations_are_planned_and_applying_them_converges() {
    let (_dir, _, old, new) = homes();
    edit(
        &old,
        CARBON_XML,
        &[
            Edit::set("Server/Ports/Offset", "3"),
            Edit::insert_child("Server", "HostName", "carbon.example.com"),
        ],
    );
    edit(&old, MASTER, &[Edit::set(MAX_ACTIVE, "80")]);
    edit(
        &old,
        MASTER,
        &[Edit::set(
            MAX_ACTIVE.replace("maxActive", "url"),
            "jdbc:mysql://old-db/carbon",
        )],
    );

    let report = carry_over(&old, &new, None).unwrap();
    assert_eq!(
        kinds(&report),
        [
            (CarryKind::Customised, "Server/Ports/Offset".to_owned()),
            (CarryKind::OnlyInOld, "Server/HostName".to_owned()),
            (CarryKind::Customised, MAX_ACTIVE.to_owned()),
        ]
    );
    let connection: Vec<_> = report
        .items
        .iter()
        .filter(|i| i.kind == CarryKind::Connection)
        .map(|i| i.key.as_str())
        .collect();
    assert_eq!(
        connection.len(),
        1,
        "the datasource URL is left to connect: {connection:?}"
    );

    for plan in report.plans(&new).unwrap() {
        apply(&plan).unwrap();
    }
    let home = ProductHome::open(&new).unwrap();
    assert_eq!(home.ports.offset, 3);
    assert_eq!(
        home.datasource("WSO2_CARBON_DB").unwrap().pool[0],
        ("maxActive".to_owned(), "80".to_owned())
    );
    assert!(
        home.datasource("WSO2_CARBON_DB")
            .unwrap()
            .url
            .as_ref()
            .unwrap()
            .to_string()
            .starts_with("jdbc:h2:")
    );
    assert_eq!(
        kinds(&carry_over(&old, &new, None).unwrap()),
        [],
        "carrying again finds nothing"
    );
}

#[test]
fn three_way_carries_only_operator_changes_and_reports_conflicts() {
    let (_dir, dist, old, new) = homes();
    edit(&old, CARBON_XML, &[Edit::set("Server/Ports/Offset", "3")]);
    edit(&old, MASTER, &[Edit::set(MAX_ACTIVE, "80")]);
    // The new distribution changed maxActive itself, and the tenant idle time.
    edit(&new, MASTER, &[Edit::set(MAX_ACTIVE, "60")]);
    edit(
        &new,
        CARBON_XML,
        &[Edit::set(
            "Server/Tenant/LoadingPolicy/LazyLoading/IdleTime",
            "45",
        )],
    );

    let two_way = carry_over(&old, &new, None).unwrap();
    assert_eq!(
        two_way.actionable().count(),
        3,
        "two-way sees every difference: {:?}",
        kinds(&two_way)
    );

    let report = carry_over(&old, &new, Some(&dist)).unwrap();
    assert!(report.three_way);
    assert_eq!(
        kinds(&report),
        [
            (CarryKind::Customised, "Server/Ports/Offset".to_owned()),
            (CarryKind::Conflict, MAX_ACTIVE.to_owned())
        ]
    );
    let conflict = report.conflicts().next().unwrap();
    assert_eq!(
        (
            conflict.base.as_deref(),
            conflict.old.as_deref(),
            conflict.new.as_deref()
        ),
        (Some("50"), Some("80"), Some("60"))
    );
    assert!(
        conflict.edit.is_none(),
        "conflicts are never applied automatically"
    );
}

#[test]
fn secrets_in_carried_values_are_redacted() {
    let (_dir, _, old, new) = homes();
    edit(
        &old,
        CARBON_XML,
        &[Edit::set(
            "Server/Security/KeyStore/Password",
            "n3w-keystore-pw",
        )],
    );
    let report = carry_over(&old, &new, None).unwrap();
    let json = serde_json::to_string(&report).unwrap();
    assert!(!json.contains("n3w-keystore-pw"), "{json}");
    let item = report.actionable().next().unwrap();
    assert_eq!(item.old.as_deref(), Some("********"));
    assert!(!format!("{report:?}").contains("n3w-keystore-pw"));
}

#[test]
fn added_elements_with_attributes_are_inserted_and_whole_blocks_are_manual() {
    let (_dir, _, old, new) = homes();
    let store = "UserManager/Realm/UserStoreManager";
    let property = |name: &str, text: &str| {
        Edit::insert_element(store, "Property", vec![("name".into(), name.into())], text)
    };
    edit(
        &old,
        "repository/conf/user-mgt.xml",
        &[property("ReadTimeout", "30")],
    );
    edit(
        &old,
        "repository/conf/user-mgt.xml",
        &[property("a/b's", "x")],
    );
    edit(
        &old,
        MASTER,
        &[Edit::insert_child(
            "datasources-configuration/datasources",
            "datasource",
            "",
        )],
    );

    let report = carry_over(&old, &new, None).unwrap();
    assert_eq!(
        kinds(&report),
        [
            (
                CarryKind::Manual,
                "datasources-configuration/datasources/datasource[2]".to_owned()
            ),
            (
                CarryKind::OnlyInOld,
                format!("{store}/Property[@name='ReadTimeout']")
            ),
            (
                CarryKind::OnlyInOld,
                format!("{store}/Property[@name=\"a/b's\"]")
            ),
        ]
    );
    for plan in report.plans(&new).unwrap() {
        apply(&plan).unwrap();
    }
    let after = carry_over(&old, &new, None).unwrap();
    assert_eq!(
        kinds(&after),
        [(
            CarryKind::Manual,
            "datasources-configuration/datasources/datasource[2]".to_owned()
        )]
    );
    let user_mgt = std::fs::read_to_string(new.join("repository/conf/user-mgt.xml")).unwrap();
    assert!(
        user_mgt.contains("            <Property name=\"ReadTimeout\">30</Property>\n"),
        "{user_mgt}"
    );
}

#[test]
fn values_the_new_home_reads_from_the_secure_vault_are_never_written() {
    let (_dir, _, old, new) = homes();
    edit(
        &old,
        CARBON_XML,
        &[Edit::set("Server/Security/KeyStore/Password", "old-pw")],
    );
    let carbon = new.join(CARBON_XML);
    let text = std::fs::read(&carbon).unwrap(); // ISO-8859-1: bytes map 1:1 to chars
    let aliased = text
        .iter()
        .map(|&b| char::from(b))
        .collect::<String>()
        .replacen(
            "<Password>wso2carbon</Password>",
            "<Password svns:secretAlias=\"Carbon.Security.KeyStore.Password\">password</Password>",
            1,
        );
    let aliased = aliased.replacen(
        "<Server xmlns=",
        "<Server xmlns:svns=\"http://org.wso2.securevault/configuration\" xmlns=",
        1,
    );
    std::fs::write(
        &carbon,
        aliased.chars().map(|c| c as u8).collect::<Vec<u8>>(),
    )
    .unwrap();

    let report = carry_over(&old, &new, None).unwrap();
    assert_eq!(
        kinds(&report),
        [(
            CarryKind::Manual,
            "Server/Security/KeyStore/Password".to_owned()
        )]
    );
    assert!(report.plans(&new).unwrap().is_empty(), "nothing to write");
}
