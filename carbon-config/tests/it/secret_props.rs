//! Property: a value held by an element or attribute named like a secret (password, secret,
//! pass, in any case, inside longer names) never reaches a diff, a plan's `Debug`, its changes'
//! JSON, an edit's `Debug` or an error — whatever the quote style, references, line breaks or
//! CDATA around it, and whether the edit changes the secret or something next to it.

use carbon_config::{ConfigError, Edit, XmlDoc, plan};
use proptest::prelude::*;

/// Where the secret sits in the document.
#[derive(Debug, Clone, Copy)]
enum Place {
    /// `<Keystore type="JKS" NAME=Q...Q location='x'/>`
    Attribute { quote: char },
    /// `<NAME>...</NAME>`, `&`-escaped, some characters as character references.
    Text,
    /// `<NAME><![CDATA[...]]></NAME>`
    CData,
    /// `<Property name=QNAMEQ>...</Property>`
    Property { quote: char },
}

fn place() -> impl Strategy<Value = Place> {
    let quote = prop_oneof![Just('"'), Just('\'')];
    prop_oneof![
        quote.clone().prop_map(|quote| Place::Attribute { quote }),
        Just(Place::Text),
        Just(Place::CData),
        quote.prop_map(|quote| Place::Property { quote }),
    ]
}

/// `keystorePass`, `ConnectionPassword`, `Password`, `db_SECRET_value`, `pwd`...
fn secret_name() -> impl Strategy<Value = String> {
    let prefix = prop_oneof![
        Just(""),
        Just("keystore"),
        Just("Connection"),
        Just("trust_"),
        Just("db.")
    ];
    let word = prop_oneof![
        Just("password"),
        Just("Password"),
        Just("PASSWORD"),
        Just("secret"),
        Just("Secret"),
        Just("Pass"),
        Just("pass"),
        Just("passwd"),
        Just("Pwd"),
    ];
    let suffix = prop_oneof![Just(""), Just("Value"), Just("-1")];
    (prefix, word, suffix).prop_map(|(p, w, s)| {
        let name = format!("{p}{w}{s}");
        // An XML name starts with a letter.
        if name.starts_with(|c: char| c.is_ascii_alphabetic()) {
            name
        } else {
            format!("x{name}")
        }
    })
}

/// Text XML can hold, rich in what breaks naive redactors: both quotes, `&`, `<`, `>`,
/// line breaks, `]`, `=`, non-ASCII.
fn noise() -> impl Strategy<Value = String> {
    const SPECIALS: &[char] = &['&', '<', '>', '"', '\'', ']', '=', '\n', '\r', '\t', 'é'];
    crate::support::xml_text(SPECIALS, 12)
}

/// A secret value: noise around two distinctive tokens, so any leak of any part is visible.
#[derive(Debug, Clone)]
struct Value {
    text: String,
    tokens: [String; 2],
}

fn value() -> impl Strategy<Value = Value> {
    (
        noise(),
        "[A-Za-z0-9]{10}",
        noise(),
        "[A-Za-z0-9]{10}",
        noise(),
    )
        .prop_map(|(a, t1, b, t2, c)| {
            let tokens = [format!("Qz{t1}"), format!("Qz{t2}")];
            Value {
                text: format!("{a}{}{b}{}{c}", tokens[0], tokens[1]),
                tokens,
            }
        })
}

fn escape(value: &str, quote: Option<char>, char_refs: bool) -> String {
    let mut out = String::new();
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' if char_refs => out.push_str("&#62;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c if Some(c) == quote => out.push_str(if c == '"' { "&quot;" } else { "&apos;" }),
            'z' if char_refs => out.push_str("&#x7A;"),
            c => out.push(c),
        }
    }
    out
}

/// The document, the path of the secret, and the raw bytes the value was written as.
fn document(place: Place, name: &str, value: &str, char_refs: bool) -> (String, String, String) {
    let (line, path, raw) = match place {
        Place::Attribute { quote: q } => {
            let raw = escape(value, Some(q), char_refs);
            (
                format!(r#"<Keystore type="JKS" {name}={q}{raw}{q} location='x.jks'/>"#),
                format!("Root/Keystore/@{name}"),
                raw,
            )
        }
        Place::Text => {
            let raw = escape(value, None, char_refs);
            (
                format!("<{name}>{raw}</{name}>"),
                format!("Root/{name}"),
                raw,
            )
        }
        Place::CData => {
            let raw = value.replace('\r', "").replace("]]>", "]] >");
            (
                format!("<{name}><![CDATA[{raw}]]></{name}>"),
                format!("Root/{name}"),
                raw,
            )
        }
        Place::Property { quote: q } => {
            let raw = escape(value, None, char_refs);
            (
                format!("<Property name={q}{name}{q}>{raw}</Property>"),
                format!("Root/Property[@name='{name}']"),
                raw,
            )
        }
    };
    let doc = format!(
        "<?xml version=\"1.0\"?>\n<Root>\n    <Before>one</Before>\n    {line}\n    <After>two</After>\n</Root>\n"
    );
    (doc, path, raw)
}

/// Every string people could see from planning `edits` on `doc`.
fn everything_shown(doc: &XmlDoc, edits: &[Edit]) -> String {
    let edits_shown = format!("{edits:?}");
    match plan(doc, edits) {
        Ok(plan) => format!(
            "{}\n{plan:?}\n{}\n{edits_shown}",
            plan.unified_diff(),
            serde_json::to_string(plan.changes()).unwrap()
        ),
        Err(err) => shown_error(&err, &edits_shown),
    }
}

fn shown_error(err: &ConfigError, more: &str) -> String {
    format!("{err}\n{err:?}\n{more}")
}

fn check(shown: &str, secrets: &[&str]) -> Result<(), TestCaseError> {
    for secret in secrets.iter().filter(|s| !s.trim().is_empty()) {
        prop_assert!(!shown.contains(secret), "{secret:?} shown in:\n{shown}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn secret_values_never_shown(
        place in place(),
        name in secret_name(),
        old in value(),
        new in value(),
        char_refs in any::<bool>(),
    ) {
        let (text, path, raw) = document(place, &name, &old.text, char_refs);
        let doc = XmlDoc::parse("conf/test.xml", text.clone().into_bytes())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        let decoded = doc.get_str(&path).unwrap();
        prop_assert!(decoded.contains(&old.tokens[0]), "{decoded:?} from\n{text}");
        let secrets = [
            old.tokens[0].as_str(),
            &old.tokens[1],
            &new.tokens[0],
            &new.tokens[1],
            &raw,
            &decoded,
            &new.text,
        ];

        let mut cases = vec![
            // The secret itself changes.
            vec![Edit::set(&path, &new.text)],
            // Its neighbours change: the secret is in the diff's context.
            vec![Edit::set("Root/Before", "1"), Edit::set("Root/After", "2")],
            // A character XML cannot hold: an error.
            vec![Edit::set(&path, format!("{}\u{1}", new.text))],
        ];
        if let Place::Attribute { .. } = place {
            // The same tag, another attribute.
            cases.push(vec![Edit::set("Root/Keystore/@type", "PKCS12")]);
        }
        for edits in cases {
            check(&everything_shown(&doc, &edits), &secrets)?;
        }

        // A broken document around the secret: the parse error quotes none of it.
        let broken = text.replace("<After>two</After>", "<After>two</Aftr>");
        let err = XmlDoc::parse("conf/test.xml", broken.into_bytes()).unwrap_err();
        check(&shown_error(&err, ""), &secrets)?;
    }
}
