//! The lossless editor: data-driven cases over the pitfalls WSO2 files actually contain.

use carbon_config::{ConfigError, Edit, XmlDoc, apply, plan};

/// Applies `edits` to `input` in memory and compares the full output bytes.
fn check(input: &[u8], edits: &[Edit], expected: &[u8]) {
    let doc = XmlDoc::parse("test.xml", input.to_vec()).unwrap();
    let plan = plan(&doc, edits).unwrap();
    assert_eq!(
        String::from_utf8_lossy(plan.new_bytes()),
        String::from_utf8_lossy(expected),
        "edits {edits:?}"
    );
    assert_eq!(plan.new_bytes(), expected);
}

fn check_get(input: &[u8], path: &str, expected: &str) {
    let doc = XmlDoc::parse("test.xml", input.to_vec()).unwrap();
    assert_eq!(doc.get_str(path).unwrap(), expected, "{path}");
}

fn check_err(input: &[u8], edits: &[Edit], expected_message: &str) {
    let err = XmlDoc::parse("test.xml", input.to_vec())
        .and_then(|doc| plan(&doc, edits))
        .unwrap_err();
    assert_eq!(err.to_string(), expected_message);
}

const DS: &str = r#"<datasources-configuration xmlns:svns="http://org.wso2.securevault/configuration">
    <datasources>
        <datasource>
            <name>WSO2_CARBON_DB</name>
            <definition type="RDBMS">
                <configuration>
                    <url>jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE</url>
                    <password svns:secretAlias='Db.Password'></password>
                </configuration>
            </definition>
        </datasource>
        <!--datasource>
            <name>WSO2_CARBON_DB</name>
            <definition type="RDBMS"><configuration><url>jdbc:commented</url></configuration></definition>
        </datasource-->
        <datasource>
            <name >OTHER_DB</name >
            <definition type='RDBMS'>
                <configuration>
                    <url>jdbc:mysql://db:3306/x?a=1&amp;b=2</url>
                    <validationQuery><![CDATA[SELECT 1]]></validationQuery>
                </configuration>
            </definition>
        </datasource>
    </datasources>
</datasources-configuration>
"#;

const CARBON_URL: &str = "datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration/url";
const OTHER: &str =
    "datasources-configuration/datasources/datasource[name='OTHER_DB']/definition/configuration";

#[test]
fn reads_values_across_entities_cdata_namespaces_and_quotes() {
    let cases = [
        (
            CARBON_URL,
            "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE",
        ),
        (&format!("{OTHER}/url"), "jdbc:mysql://db:3306/x?a=1&b=2"),
        (&format!("{OTHER}/validationQuery"), "SELECT 1"),
        (
            "datasources-configuration/datasources/datasource[1]/definition/configuration/password/@svns:secretAlias",
            "Db.Password",
        ),
        (
            "datasources-configuration/datasources/datasource[1]/definition/configuration/password/@secretAlias",
            "Db.Password",
        ),
        (
            "/datasources-configuration/datasources/datasource[2]/definition/@type",
            "RDBMS",
        ),
        (
            "datasources-configuration/datasources/datasource/definition[@type='RDBMS']/configuration[url='jdbc:mysql://db:3306/x?a=1&b=2']/validationQuery",
            "SELECT 1",
        ),
    ];
    for (path, expected) in cases {
        check_get(DS.as_bytes(), path, expected);
    }
}

#[test]
fn set_text_changes_only_the_value_bytes() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            CARBON_URL,
            "jdbc:postgresql://pg:5432/staging?ssl=true&x=<1>",
            "jdbc:h2:repository/database/WSO2CARBON_DB;DB_CLOSE_ON_EXIT=FALSE",
            "jdbc:postgresql://pg:5432/staging?ssl=true&amp;x=&lt;1&gt;",
        ),
        (
            &format!("{OTHER}/url"),
            "jdbc:mysql://new:3306/y",
            "jdbc:mysql://db:3306/x?a=1&amp;b=2",
            "jdbc:mysql://new:3306/y",
        ),
        // CDATA stays CDATA.
        (
            &format!("{OTHER}/validationQuery"),
            "SELECT 1 FROM DUAL",
            "<![CDATA[SELECT 1]]>",
            "<![CDATA[SELECT 1 FROM DUAL]]>",
        ),
        // ... unless the value cannot live in CDATA.
        (
            &format!("{OTHER}/validationQuery"),
            "a]]>b",
            "<![CDATA[SELECT 1]]>",
            "a]]&gt;b",
        ),
        // Single-quoted attribute keeps its quotes and escapes the quote character.
        (
            "datasources-configuration/datasources/datasource[2]/definition/@type",
            "it's",
            "type='RDBMS'",
            "type='it&apos;s'",
        ),
    ];
    for (path, value, old, new) in cases {
        let expected = DS.replacen(old, new, 1);
        assert_ne!(expected, DS, "case {path} must change something");
        check(
            DS.as_bytes(),
            &[Edit::set(*path, *value)],
            expected.as_bytes(),
        );
    }
}

#[test]
fn setting_the_same_value_is_a_no_op() {
    let doc = XmlDoc::parse("test.xml", DS.as_bytes().to_vec()).unwrap();
    let plan = plan(
        &doc,
        &[Edit::set(
            format!("{OTHER}/url"),
            "jdbc:mysql://db:3306/x?a=1&b=2",
        )],
    )
    .unwrap();
    assert!(plan.is_noop());
    assert!(plan.changes().is_empty());
    assert_eq!(plan.unified_diff(), "");
}

#[test]
fn bom_crlf_latin1_and_default_namespace_survive_edits() {
    let cases: Vec<(Vec<u8>, &str, &str, Vec<u8>)> = vec![
        (
            b"\xEF\xBB\xBF<a>\r\n  <b>1</b >\r\n</a>\r\n".to_vec(),
            "a/b",
            "2",
            b"\xEF\xBB\xBF<a>\r\n  <b>2</b >\r\n</a>\r\n".to_vec(),
        ),
        (
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- \xA9 -->\n<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\"><Ports><Offset>0</Offset></Ports><Name>caf\xE9</Name></Server>\n".to_vec(),
            "Server/Ports/Offset",
            "3",
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!-- \xA9 -->\n<Server xmlns=\"http://wso2.org/projects/carbon/carbon.xml\"><Ports><Offset>3</Offset></Ports><Name>caf\xE9</Name></Server>\n".to_vec(),
        ),
        (
            b"<?xml version='1.0' encoding='iso-8859-1'?><S><Name>x</Name></S>".to_vec(),
            "S/Name",
            "\u{e9}\u{20ac}",
            b"<?xml version='1.0' encoding='iso-8859-1'?><S><Name>\xE9&#x20AC;</Name></S>".to_vec(),
        ),
    ];
    for (input, path, value, expected) in cases {
        check(&input, &[Edit::set(path, value)], &expected);
        check_get(&expected, path, value);
    }
    check_get(
        b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><S><Name>caf\xE9</Name></S>",
        "S/Name",
        "caf\u{e9}",
    );
    // A new attribute goes right after a non-ASCII (Latin-1) element name.
    check(
        b"<?xml version='1.0' encoding='ISO-8859-1'?><caf\xE9/>",
        &[Edit::set("caf\u{e9}/@n", "\u{e9}")],
        b"<?xml version='1.0' encoding='ISO-8859-1'?><caf\xE9 n=\"\xE9\"/>",
    );
}

#[test]
fn attribute_insert_and_remove() {
    let input = "<a>\n    <b x=\"1\"/>\n    <c>t</c>\n</a>\n";
    let cases = [
        (
            Edit::set("a/b/@y", "2"),
            "<a>\n    <b x=\"1\" y=\"2\"/>\n    <c>t</c>\n</a>\n",
        ),
        (
            Edit::set("a/b", "v"),
            "<a>\n    <b x=\"1\">v</b>\n    <c>t</c>\n</a>\n",
        ),
        (
            Edit::insert_child("a", "d", "x&y"),
            "<a>\n    <b x=\"1\"/>\n    <c>t</c>\n    <d>x&amp;y</d>\n</a>\n",
        ),
        (
            Edit::insert_child("a/c", "e", ""),
            "<a>\n    <b x=\"1\"/>\n    <c>t\n        <e></e>\n    </c>\n</a>\n",
        ),
        (Edit::remove("a/b"), "<a>\n    <c>t</c>\n</a>\n"),
        (Edit::remove("a/c"), "<a>\n    <b x=\"1\"/>\n</a>\n"),
    ];
    for (edit, expected) in cases {
        check(input.as_bytes(), &[edit], expected.as_bytes());
    }
    // Two edits in one plan splice independently.
    check(
        input.as_bytes(),
        &[Edit::set("a/c", "u"), Edit::set("a/b/@x", "9")],
        b"<a>\n    <b x=\"9\"/>\n    <c>u</c>\n</a>\n",
    );
}

#[test]
fn errors_name_the_file_and_the_path() {
    let input = DS.as_bytes();
    let cases = [
        (
            Edit::set(
                "datasources-configuration/datasources/datasource[name='NOPE']/definition",
                "x",
            ),
            "test.xml: `datasources-configuration/datasources/datasource[name='NOPE']/definition` matches nothing (longest matching prefix: `datasources-configuration/datasources`)",
        ),
        (
            Edit::set("datasources-configuration/datasources/datasource/name", "x"),
            "test.xml: `datasources-configuration/datasources/datasource/name` matches 2 elements (lines 4, 17); add a predicate",
        ),
        (
            Edit::set("a[", "x"),
            "bad path expression `a[`: expected a name at column 3",
        ),
        (
            Edit::set("a[name]", "x"),
            "bad path expression `a[name]`: predicate `[name]` needs `='value'` at column 7",
        ),
        (
            Edit::set("a[0]", "x"),
            "bad path expression `a[0]`: positions start at 1 at column 4",
        ),
        (
            Edit::set("datasources-configuration/datasources", "x"),
            "test.xml: `<datasources> at line 2`: the element has child elements, not a text value",
        ),
        (
            Edit::set(
                "datasources-configuration/datasources/datasource[1]/definition/configuration/password",
                "plain",
            ),
            "test.xml: `<password> at line 8`: the value comes from the secure-vault alias `Db.Password`; update the vault, not the file",
        ),
        (
            Edit::set(CARBON_URL, "bell\u{7}"),
            &format!("test.xml: `{CARBON_URL}`: the value contains a character XML cannot hold"),
        ),
    ];
    for (edit, expected) in cases {
        check_err(input, &[edit], expected);
    }
}

#[test]
fn bad_documents_are_refused_with_the_file_name() {
    let cases: &[(&[u8], &str)] = &[
        (b"<a><b></a>", "test.xml: malformed XML at byte 6: "),
        (
            b"<a>",
            "test.xml: malformed XML at byte 3: <a> is never closed",
        ),
        (
            "<é></è>".as_bytes(),
            "test.xml: malformed XML at byte 4: </è> does not close <é>",
        ),
        (
            b"<a x=1/>",
            "test.xml: malformed XML at byte 5: <a>: attribute `x` value is not quoted",
        ),
        (
            b"<a/><b/>",
            "test.xml: malformed XML at byte 4: more than one root element",
        ),
        (
            b"<a>\xff</a>",
            "test.xml: bytes are not valid UTF-8 (no encoding declared)",
        ),
        (
            b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a>\x85</a>",
            "test.xml: bytes are not valid ISO-8859-1",
        ),
        (
            b"\xEF\xBB\xBF<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?><a/>",
            "test.xml: bytes are not valid ISO-8859-1 (it starts with a UTF-8 byte-order mark)",
        ),
        (
            b"<?xml version=\"1.0\" encoding=\"Shift_JIS\"?><a/>",
            "test.xml: unsupported encoding `SHIFT_JIS` (only UTF-8 and ISO-8859-1)",
        ),
    ];
    for (input, expected) in cases {
        let err = XmlDoc::parse("test.xml", input.to_vec())
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with(expected),
            "{err:?} should start with {expected:?}"
        );
    }
}

#[test]
fn apply_writes_atomically_keeps_a_backup_and_refuses_a_changed_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("master-datasources.xml");
    std::fs::write(&file, DS).unwrap();
    let doc = XmlDoc::open(&file).unwrap();
    let plan = plan(
        &doc,
        &[Edit::set(CARBON_URL, "jdbc:postgresql://pg/staging")],
    )
    .unwrap();

    let backup = apply(&plan).unwrap().unwrap();
    assert_eq!(std::fs::read_to_string(&backup).unwrap(), DS);
    assert_eq!(
        XmlDoc::open(&file).unwrap().get_str(CARBON_URL).unwrap(),
        "jdbc:postgresql://pg/staging"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        leftovers.len(),
        2,
        "only the file and its .bak: {leftovers:?}"
    );

    // The same plan again: the file is no longer what was planned against.
    let before = std::fs::read(&file).unwrap();
    let err = apply(&plan).unwrap_err();
    assert!(matches!(err, ConfigError::ChangedSincePlan { .. }), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), before, "file untouched");
}

#[test]
fn diff_shows_exactly_the_changed_line_with_secrets_redacted() {
    let input = "<c>\n  <url>jdbc:h2:old</url>\n  <username>u</username>\n  <password>old-secret</password>\n</c>\n";
    let doc = XmlDoc::parse("conf/ds.xml", input.as_bytes().to_vec()).unwrap();
    let plan = plan(
        &doc,
        &[
            Edit::set("c/url", "jdbc:h2:new"),
            Edit::set("c/password", "new-secret"),
        ],
    )
    .unwrap();
    let diff = plan.unified_diff();
    assert!(!diff.contains("secret"), "{diff}");
    insta::assert_snapshot!(diff, @r"
    --- a/conf/ds.xml
    +++ b/conf/ds.xml
    @@ -1,5 +1,5 @@
     <c>
    -  <url>jdbc:h2:old</url>
    +  <url>jdbc:h2:new</url>
       <username>u</username>
    -  <password>********</password>
    +  <password>********</password>
     </c>
    ");
    let shown = format!("{:?} {:?}", plan, plan.changes());
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn errors_never_quote_text_that_may_be_a_secret() {
    for input in [
        "<a><password>s3cr&t</password></a>",
        "<a><password>s3cr&et;x</password></a>",
    ] {
        let err = XmlDoc::parse("test.xml", input.as_bytes().to_vec())
            .and_then(|doc| doc.get_str("a/password"))
            .unwrap_err()
            .to_string();
        assert!(!err.contains("s3cr") && !err.contains("et;"), "{err}");
        assert!(err.starts_with("test.xml: "), "{err}");
    }
}
