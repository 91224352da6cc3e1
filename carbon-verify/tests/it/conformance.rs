//! Every request the client can send, validated against the real WSDLs: the operation exists
//! in the SOAP 1.1 binding with `soapAction="urn:<op>"`, the body element is the operation's
//! input element (QName), children match the schema (names, namespaces, order, counts, simple
//! types), and the client treats exactly the operations without an output message as in-only.

use carbon_verify::soap::{Request, Service, TenantInfo, UserStoreDto};
use carbon_verify::xml;

use carbon_config::Secret;
use carbon_db::Vendor;
use carbon_verify::Severity;

use crate::wsdl::{self, check_request, wsdl};

/// One of each request the client builds, with awkward values.
fn every_request() -> Vec<Request> {
    let store = UserStoreDto {
        class_name: carbon_verify::soap::JDBC_USER_STORE_CLASS.into(),
        description: "verification <store> & \"quotes\"".into(),
        disabled: false,
        domain: "VERIFY-ABC123-S1".into(),
        properties: vec![
            ("driverName".into(), "org.postgresql.Driver".into()),
            (
                "url".into(),
                "jdbc:postgresql://db:5432/verify_abc123_s1?ssl=false&x=1".into(),
            ),
            ("userName".into(), "verify".into()),
            ("password".into(), "s3cr&t<".into()),
        ],
    };
    let tenant = TenantInfo {
        domain: "verify-abc123-t1.example.com".into(),
        admin: "admin".into(),
        admin_password: Secret::from("Vx0123456789ab#9a".to_owned()),
        email: "admin@verify-abc123-t1.example.com".into(),
        first_name: "Verify".into(),
        last_name: "Tenant".into(),
    };
    vec![
        Request::get_server_data(),
        Request::get_secondary_realm_configurations(),
        Request::add_user_store(&store),
        Request::delete_user_store("VERIFY-ABC123-S1"),
        Request::add_user("VERIFY-ABC123-S1/vfyabc123u1", "Vx0123456789ab#9a", &[]),
        Request::add_user("ユーザー7", "pw", &["Internal/everyone", "admin"]),
        Request::delete_user("VERIFY-ABC123-S1/vfyabc123u1"),
        Request::is_existing_user("user0"),
        Request::list_users("VERIFY-ABC123-S1/vfyabc123*", 100),
        Request::add_tenant(&tenant),
        Request::get_tenant("tenant0.example.com"),
        Request::deactivate_tenant("verify-abc123-t1.example.com"),
    ]
}

#[test]
fn every_request_matches_its_wsdl() {
    let requests = every_request();
    for request in &requests {
        let op = check_request(
            request.service,
            Some(&request.soap_action()),
            Some("text/xml; charset=UTF-8"),
            &request.envelope(),
        )
        .unwrap_or_else(|e| panic!("{request:?}: {e}"));
        assert_eq!(op, request.operation, "{request:?}");
        let wsdl_op = &wsdl(request.service).operations[request.operation];
        assert_eq!(wsdl_op.soap_action, format!("urn:{}", request.operation));
        assert_eq!(
            request.in_only,
            wsdl_op.output.is_none(),
            "{request:?}: in-only must mean no output message in the WSDL"
        );
    }
    // Every service the client talks to is covered.
    for service in Service::ALL {
        assert!(
            requests.iter().any(|r| r.service == service),
            "{service} has no request"
        );
    }
}

#[test]
fn operation_namespaces_are_the_documented_ones() {
    let cases = [
        (Request::get_server_data(), "http://org.apache.axis2/xsd"),
        (
            Request::get_secondary_realm_configurations(),
            "http://org.apache.axis2/xsd",
        ),
        (
            Request::is_existing_user("x"),
            "http://service.ws.um.carbon.wso2.org",
        ),
        (
            Request::get_tenant("x"),
            "http://services.mgt.tenant.carbon.wso2.org",
        ),
    ];
    for (request, ns) in cases {
        let body = xml::parse(&request.body).unwrap();
        assert_eq!(body.ns, ns, "{request:?}");
        assert_eq!(body.name, request.operation);
    }
}

/// The validator is not a rubber stamp: each mutation of a valid request is refused.
#[test]
fn the_validator_rejects_what_the_wsdl_does_not_allow() {
    let ok = Request::add_user("VERIFY1/alice01", "pw", &[]);
    let envelope = ok.envelope();
    let action = ok.soap_action();
    let cases: &[(&str, String, &str, &str)] = &[
        (
            "wrong operation namespace",
            envelope.replace(
                "http://service.ws.um.carbon.wso2.org",
                "http://org.apache.axis2/xsd",
            ),
            &action,
            "not the input element",
        ),
        (
            "children out of sequence order",
            envelope.replace(
                "<op:userName>VERIFY1/alice01</op:userName><op:credential>pw</op:credential>",
                "<op:credential>pw</op:credential><op:userName>VERIFY1/alice01</op:userName>",
            ),
            &action,
            "unexpected child",
        ),
        (
            "unknown child",
            envelope.replace(
                "<op:profileName>",
                "<op:nickName>x</op:nickName><op:profileName>",
            ),
            &action,
            "unexpected child",
        ),
        (
            "not a boolean",
            envelope.replace(
                ">false</op:requirePasswordChange>",
                ">no</op:requirePasswordChange>",
            ),
            &action,
            "is not an xs:boolean",
        ),
        (
            "unquoted SOAPAction",
            envelope.clone(),
            "urn:addUser",
            "SOAPAction",
        ),
        (
            "SOAPAction of another operation",
            envelope.clone(),
            "\"urn:deleteUser\"",
            "SOAPAction",
        ),
        (
            "SOAP 1.2 envelope",
            envelope.replace(
                "http://schemas.xmlsoap.org/soap/envelope/",
                "http://www.w3.org/2003/05/soap-envelope",
            ),
            &action,
            "not a SOAP 1.1 Envelope",
        ),
    ];
    for (what, envelope, action, expected) in cases {
        let err = check_request(
            Service::RemoteUserStoreManagerService,
            Some(action),
            Some("text/xml; charset=UTF-8"),
            envelope,
        )
        .expect_err(what);
        assert!(err.contains(expected), "{what}: {err}");
    }
    let err = check_request(
        Service::RemoteUserStoreManagerService,
        Some(&action),
        Some("application/soap+xml"),
        &envelope,
    )
    .unwrap_err();
    assert!(err.contains("Content-Type"), "{err}");
}

#[test]
fn nested_dto_and_bean_elements_carry_their_own_namespaces() {
    let store = UserStoreDto {
        class_name: "c".into(),
        description: String::new(),
        disabled: true,
        domain: "D".into(),
        properties: vec![("url".into(), "u".into())],
    };
    let body = xml::parse(&Request::add_user_store(&store).body).unwrap();
    let dto = body.child("userStoreDTO").unwrap();
    assert_eq!(dto.ns, "http://org.apache.axis2/xsd");
    let names: Vec<(&str, &str)> = dto
        .children
        .iter()
        .map(|c| (c.ns.as_str(), c.name.as_str()))
        .collect();
    let dto_ns = "http://dto.configuration.store.user.identity.carbon.wso2.org/xsd";
    assert_eq!(
        names,
        [
            (dto_ns, "className"),
            (dto_ns, "description"),
            (dto_ns, "disabled"),
            (dto_ns, "domainId"),
            (dto_ns, "properties")
        ]
    );
    // The WSDL agrees on the DTO namespace and order.
    let w = wsdl(Service::UserStoreConfigAdminService);
    let ty = &w.types[&(dto_ns.to_owned(), "UserStoreDTO".to_owned())];
    let wsdl::Content::Sequence(particles) = ty else {
        panic!("UserStoreDTO is a sequence")
    };
    let order: Vec<&str> = particles.iter().map(|p| p.name.1.as_str()).collect();
    assert_eq!(
        order,
        [
            "className",
            "description",
            "disabled",
            "domainId",
            "properties"
        ]
    );
}

/// The real kernel 4.4.7 `dbscripts/<vendor>.sql` (read from the fixtures into the temp
/// home, never copied into the project) initialises the user-store databases the live run
/// creates, and users are then added to and found in that real UM schema.
fn check_real_dbscript(vendor: Vendor) {
    let l = crate::live::live(vendor, |_| {});
    let script = match vendor {
        Vendor::Postgres => "postgresql.sql",
        _ => "mysql.sql",
    };
    let real = wsdl::fixtures_dir().join("4.4.7/dbscripts").join(script);
    let text = std::fs::read_to_string(&real).unwrap_or_else(|e| panic!("{}: {e}", real.display()));
    assert!(text.contains("CREATE TABLE UM_USER"), "{}", real.display());
    std::fs::write(l.home.path().join("dbscripts").join(script), text).unwrap();
    let mut opts = crate::live::options(&l);
    opts.userstores = 1;
    opts.tenants = 1;
    let report = carbon_verify::verify_server(&opts, &carbon_verify::NoProgress).unwrap();
    assert!(report.is_ok(), "{vendor}: {report}");
    let ran = format!("ran dbscripts/{script}");
    assert_eq!(
        report
            .of_check("userstore-db")
            .filter(|f| f.message.contains(&ran))
            .count(),
        2,
        "{report}"
    );
    assert_eq!(
        report
            .of_check("userstore-deploy")
            .filter(|f| f.severity == Severity::Info)
            .count(),
        2
    );
    assert_eq!(report.of_check("user-confirm").count(), 4, "{report}");
    assert_eq!(l.server.log().rejections, Vec::<String>::new());
}

#[test]
fn real_kernel_dbscript_initialises_user_stores_postgres() {
    check_real_dbscript(Vendor::Postgres);
}

#[test]
fn real_kernel_dbscript_initialises_user_stores_mariadb() {
    check_real_dbscript(Vendor::MySql);
}

/// The stock 1024-bit `wso2carbon.jks` through our JKS reader (37 entries, the fingerprints
/// keytool shows), and the real product-is `encrypted="true"` value opening with its key.
#[test]
fn secrets_stock_wso2carbon_jks_and_the_product_is_value() {
    let fixtures = carbon_db::testkit::wso2_fixtures();
    let home = fixtures.join("4.4.7");
    let keys = carbon_verify::secrets::open_keys(&home, None).unwrap();
    assert_eq!(
        keys.primary.format,
        carbon_verify::secrets::StoreFormat::Jks
    );
    assert_eq!(keys.primary.certs.len(), 37);
    assert_eq!(keys.primary.certs.iter().filter(|c| c.key_entry).count(), 1);
    assert_eq!(
        keys.cert.sha256,
        "1D:72:9F:B8:C4:68:EA:D8:20:A2:A0:BE:4A:DB:8F:BA:BE:D9:AB:1B:A1:26:C9:D2:14:66:C5:70:6E:8E:4D:30"
    );
    assert_eq!(
        keys.cert.sha1,
        "6B:F8:E1:36:EB:36:D4:A5:6E:A0:5C:7A:E4:B9:A4:5B:63:BF:97:5D"
    );
    assert_eq!(keys.cert.not_after_date, "2035-02-13");
    let trust = keys.trust.as_ref().unwrap().as_ref().unwrap();
    assert_eq!(trust.certs.len(), 94);
    assert!(trust.certs.iter().any(|c| c.sha256 == keys.cert.sha256));
    // The real product-is value (user-store style, no padding) opens with the stock key.
    let ours =
        carbon_verify::secrets::fixture::keytool_fingerprints(&keys.primary.path, "wso2carbon")
            .unwrap();
    assert_eq!(ours.len(), 37);
    let real = fixtures
        .join("products/wso2is-5.2.0-tests/IsAnalytics-Publisher-wso2event-SessionData.xml");
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp
        .path()
        .join("repository/deployment/server/eventpublishers");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(
        &real,
        copy.join("IsAnalytics-Publisher-wso2event-SessionData.xml"),
    )
    .unwrap();
    std::fs::create_dir_all(tmp.path().join("repository/conf")).unwrap();
    std::fs::copy(
        home.join("repository/conf/carbon.xml"),
        tmp.path().join("repository/conf/carbon.xml"),
    )
    .unwrap();
    let sec = tmp
        .path()
        .join(carbon_verify::secrets::fixture::SECURITY_DIR);
    std::fs::create_dir_all(&sec).unwrap();
    for f in ["wso2carbon.jks", "client-truststore.jks"] {
        std::fs::copy(
            home.join(carbon_verify::secrets::fixture::SECURITY_DIR)
                .join(f),
            sec.join(f),
        )
        .unwrap();
    }
    let report = carbon_verify::verify_secrets(&crate::secrets::options(tmp.path(), None)).unwrap();
    assert_eq!(report.values.len(), 1);
    assert!(report.values[0].opens, "{:#?}", report.report);
    assert_eq!(
        report.values[0].scheme,
        Some(carbon_verify::secrets::Scheme::RawRsa)
    );
    assert!(crate::secrets::findings(&report, Severity::Error).is_empty());
}

/// A new home with the stock `wso2carbon.jks` and an old one with its own: the old keystore is
/// planned as a copy over the stock one (not a conflict), fingerprints shown.
#[test]
fn secrets_carry_replaces_the_stock_keystore() {
    use carbon_verify::secrets::carry::{CarryAction, CarryOptions, STOCK_KEY_SHA256, plan_carry};
    use carbon_verify::secrets::fixture::{KeystoreSpec, SECURITY_DIR, make_keystore};
    let stock = carbon_db::testkit::wso2_fixtures()
        .join("4.4.7")
        .join(SECURITY_DIR);
    let dir = tempfile::tempdir().unwrap();
    let (old, new) = (dir.path().join("old"), dir.path().join("new"));
    std::fs::create_dir_all(new.join(SECURITY_DIR)).unwrap();
    std::fs::copy(
        stock.join("wso2carbon.jks"),
        new.join(SECURITY_DIR).join("wso2carbon.jks"),
    )
    .unwrap();
    let spec = KeystoreSpec::new(
        "wso2carbon.jks",
        carbon_verify::secrets::StoreFormat::Jks,
        "wso2carbon",
    );
    make_keystore(&old, &spec).unwrap();
    let plan = plan_carry(&old, &new, CarryOptions::default()).unwrap();
    assert_eq!(plan.security.len(), 1);
    assert_eq!(
        plan.security[0].action,
        CarryAction::Copy,
        "{:?}",
        plan.security[0]
    );
    let fp = plan.security[0].fingerprint.as_deref().unwrap();
    assert!(fp.ends_with(&format!(" → {STOCK_KEY_SHA256}")), "{fp}");
}
