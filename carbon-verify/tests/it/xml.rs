//! The small namespace-resolving reader used for envelopes and WSDLs.

use carbon_verify::soap::{self, Response};
use carbon_verify::xml::parse;

#[test]
fn resolves_prefixes_defaults_entities_and_cdata() {
    let doc = parse(
        r#"<?xml version="1.0"?><a:root xmlns:a="urn:a" xmlns="urn:d"><child k="v&amp;w">x &lt; y<![CDATA[ & z]]></child><a:e/></a:root>"#,
    )
    .unwrap();
    assert_eq!((doc.ns.as_str(), doc.name.as_str()), ("urn:a", "root"));
    let child = doc.child("child").unwrap();
    assert_eq!(child.ns, "urn:d");
    assert_eq!(child.attr("k"), Some("v&w"));
    assert_eq!(child.text, "x < y & z");
    assert_eq!(doc.child("e").unwrap().ns, "urn:a");
}

#[test]
fn refuses_broken_documents() {
    for bad in ["<a><b></a>", "<p:a/>", "<a>", ""] {
        assert!(parse(bad).is_err(), "{bad:?} must not parse");
    }
}

#[test]
fn reads_faults_elements_and_empty_bodies() {
    let fault = soap::fault_envelope("soapenv:Server", "Access Denied & more");
    assert_eq!(
        soap::parse_response(&fault).unwrap(),
        Response::Fault(soap::Fault {
            code: "soapenv:Server".into(),
            string: "Access Denied & more".into()
        })
    );
    let empty = format!(
        r#"<e:Envelope xmlns:e="{}"><e:Body/></e:Envelope>"#,
        soap::SOAP_ENV
    );
    assert_eq!(soap::parse_response(&empty).unwrap(), Response::Empty);
    let not_soap = "<Envelope><Body/></Envelope>";
    assert!(
        soap::parse_response(not_soap)
            .unwrap_err()
            .contains("not a SOAP 1.1 envelope")
    );
}
