//! Property tests: no panics on any input, parse∘format = identity for JDBC URLs, and a set
//! followed by a get returns the value while every other byte stays put.

use carbon_config::{Edit, JdbcUrl, XPath, XmlDoc, plan};
use proptest::prelude::*;

/// Any text XML can hold (no control characters other than tab/newline/CR).
fn xml_text() -> impl Strategy<Value = String> {
    const SPECIALS: &[char] = &[
        '&', '<', '>', '"', '\'', ']', '\n', '\r', '\t', 'é', '€', '😀',
    ];
    crate::support::xml_text(SPECIALS, 40)
}

/// (head, old value, tail, path) documents whose edited value sits between head and tail.
type Case = (&'static [u8], &'static [u8], &'static [u8], &'static str);

fn documents() -> Vec<Case> {
    vec![
        (b"<a>\n  <b>", b"old", b"</b >\n</a>\n", "a/b"),
        (
            b"\xEF\xBB\xBF<a>\r\n  <b x='",
            b"1",
            b"'/>\r\n</a>\r\n",
            "a/b/@x",
        ),
        (
            b"<a xmlns=\"urn:x\"><b y=\"",
            b"q&amp;r",
            b"\"/></a>",
            "a/b/@y",
        ),
        (
            b"<a><!--<b>no</b>--><b>",
            b"<![CDATA[SELECT 1]]>",
            b"</b></a>",
            "a/b",
        ),
        (
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- \xA9 -->\n<S><O>",
            b"0",
            b"</O></S>\n",
            "S/O",
        ),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn set_then_get_returns_the_value_and_touches_nothing_else(value in xml_text(), which in 0usize..5) {
        let (head, old, tail, path) = documents()[which];
        let input = [head, old, tail].concat();
        let doc = XmlDoc::parse("p.xml", input.clone()).unwrap();
        let plan = plan(&doc, &[Edit::set(path, value.clone())]).unwrap();
        let after = XmlDoc::parse("p.xml", plan.new_bytes().to_vec()).unwrap();
        prop_assert_eq!(after.get_str(path).unwrap(), value);
        prop_assert!(plan.new_bytes().starts_with(head));
        prop_assert!(plan.new_bytes().ends_with(tail));
    }

    #[test]
    fn parsing_any_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200), path in "[a-z/@\\[\\]='0-9]{0,20}") {
        if let (Ok(doc), Ok(path)) = (XmlDoc::parse("fuzz.xml", bytes), XPath::parse(&path)) {
            let _ = doc.select(&path);
            let _ = doc.get(&path);
            let _ = plan(&doc, &[Edit::set(path.as_str(), "v"), Edit::remove(path.as_str())]);
        }
    }

    #[test]
    fn xml_like_input_never_panics(parts in proptest::collection::vec(prop_oneof![
        Just("<a>"), Just("</a>"), Just("<b x='1'>"), Just("</b >"), Just("<c/>"), Just("&amp;"), Just("&bogus;"),
        Just("<![CDATA[x]]>"), Just("<!--c-->"), Just("text"), Just("\r\n"), Just("<?pi x?>"), Just("\u{feff}"),
    ], 0..12)) {
        let input = parts.concat();
        if let Ok(doc) = XmlDoc::parse("fuzz.xml", input.clone().into_bytes()) {
            let noop = plan(&doc, &[]).unwrap();
            prop_assert_eq!(noop.new_bytes(), input.as_bytes());
            for path in ["a", "a/b", "a/b/@x", "a/c", "a[2]"] {
                let _ = plan(&doc, &[Edit::set(path, "&<v>")]);
                let _ = plan(&doc, &[Edit::insert_child(path, "n", "t")]);
            }
        }
    }

    #[test]
    fn any_accepted_jdbc_url_formats_back_exactly(url in "jdbc:(h2|mysql|mariadb|postgresql|sqlserver|jtds:sqlserver|oracle:thin|db2|derby|x):[ -~]{0,40}") {
        if let Ok(parsed) = JdbcUrl::parse(&url) {
            prop_assert_eq!(parsed.to_string(), url.clone());
            let _ = (parsed.host(), parsed.port(), parsed.database(), parsed.redacted());
            let reparsed = JdbcUrl::parse(&parsed.to_string()).unwrap();
            prop_assert_eq!(reparsed, parsed);
        }
    }

    #[test]
    fn built_jdbc_urls_round_trip_their_components(
        vendor in prop_oneof![Just("mysql"), Just("postgresql"), Just("mariadb")],
        host in "[a-z][a-z0-9.-]{0,15}",
        port in 1u16..,
        db in "[A-Za-z_][A-Za-z0-9_]{0,15}",
        params in proptest::collection::vec(("[a-zA-Z]{1,8}", "[a-zA-Z0-9]{0,8}"), 0..4),
    ) {
        let query: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let mut url = format!("jdbc:{vendor}://{host}:{port}/{db}");
        if !query.is_empty() {
            url = format!("{url}?{}", query.join("&"));
        }
        let parsed = JdbcUrl::parse(&url).unwrap();
        prop_assert_eq!(parsed.to_string(), url);
        prop_assert_eq!(parsed.host(), Some(host.as_str()));
        prop_assert_eq!(parsed.port(), Some(port));
        prop_assert_eq!(parsed.database(), Some(db.as_str()));
        for (key, value) in &params {
            prop_assert!(parsed.params().iter().any(|p| &p.key == key && p.value.as_deref() == Some(value.as_str())));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn insert_then_get_and_remove_then_absent(text in xml_text(), attr in xml_text(), crlf in any::<bool>()) {
        let eol = if crlf { "\r\n" } else { "\n" };
        let input = format!("<r>{eol}    <keep>k</keep>{eol}</r>{eol}");
        let doc = XmlDoc::parse("p.xml", input.clone().into_bytes()).unwrap();
        let inserted = plan(&doc, &[Edit::insert_element("r", "n", vec![("a".into(), attr.clone())], text.clone())]).unwrap();
        let after = XmlDoc::parse("p.xml", inserted.new_bytes().to_vec()).unwrap();
        prop_assert_eq!(after.get_str("r/n").unwrap(), text);
        prop_assert_eq!(after.get_str("r/n/@a").unwrap(), attr);
        prop_assert_eq!(after.get_str("r/keep").unwrap(), "k");

        let removed = plan(&after, &[Edit::remove("r/n")]).unwrap();
        prop_assert_eq!(removed.new_bytes(), input.as_bytes(), "remove undoes insert byte for byte");
    }
}
