//! Hiding secrets in text shown to people: diff lines, path values, JDBC URLs, whole documents.
//!
//! The one owner of redaction in the workspace: every crate masks with [`REDACTED`] through
//! these functions (carbon-db's `redact_raw` is [`redact_url_credentials`]).

use std::ops::Range;

use crate::doc::{Part, XmlDoc};
use crate::secret::REDACTED;

/// Whether a name (element, attribute, property or URL parameter) holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    // "pass": password, passwd, passphrase, keystorePass, storepass, ConnectionPassword...
    ["pass", "pwd", "secret"]
        .iter()
        .any(|word| lower.contains(word))
}

/// Whether an attribute of this name holds a secret value (`svns:secretAlias` names a vault
/// entry, it is not one).
pub fn is_secret_attr(name: &str) -> bool {
    is_secret_name(name) && !name.to_ascii_lowercase().ends_with("secretalias")
}

/// Byte ranges of `doc` holding secret values: values of secret attributes, and the text,
/// references and CDATA of elements named like a secret or carrying a secret `name`
/// (`<Property name="password">`). Whitespace-only runs are left alone.
pub(crate) fn secret_ranges(doc: &XmlDoc) -> Vec<Range<usize>> {
    let mut ranges = Vec::new();
    for id in doc.element_ids() {
        let el = doc.element(id);
        ranges.extend(
            el.attrs
                .iter()
                .filter(|a| is_secret_attr(&a.local) && !a.value.is_empty())
                .map(|a| a.value.clone()),
        );
        let named_secret = doc.attr(id, "name").is_some_and(|n| is_secret_name(&n));
        if !(is_secret_name(&el.local) || named_secret) {
            continue;
        }
        let mut run: Option<Range<usize>> = None;
        for part in &el.content {
            let range = match part {
                Part::Text(r) | Part::Ref(r) | Part::CData(r) => r.clone(),
                Part::Comment | Part::Pi | Part::Child(_) => {
                    ranges.extend(run.take());
                    continue;
                }
            };
            run = match run {
                Some(r) if r.end == range.start => Some(r.start..range.end),
                other => {
                    ranges.extend(other);
                    Some(range)
                }
            };
        }
        ranges.extend(run);
    }
    let bytes = doc.bytes();
    ranges.retain(|r| !bytes[r.clone()].iter().all(u8::is_ascii_whitespace));
    ranges
}

/// `bytes` with each range replaced by [`REDACTED`], line by line: the line breaks inside a
/// range stay, so the result has the same lines as `bytes` (a diff of the real bytes can show
/// the masked lines by index).
pub(crate) fn mask_ranges(bytes: &[u8], ranges: &[Range<usize>]) -> Vec<u8> {
    let mut ranges = ranges.to_vec();
    ranges.sort_by_key(|r| r.start);
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    for range in ranges {
        let start = range.start.max(at);
        if start >= range.end {
            continue;
        }
        out.extend_from_slice(&bytes[at..start]);
        let value = &bytes[start..range.end];
        for (i, line) in value.split(|b| *b == b'\n').enumerate() {
            if i > 0 {
                out.push(b'\n');
            }
            for (j, piece) in line.split(|b| *b == b'\r').enumerate() {
                if j > 0 {
                    out.push(b'\r');
                }
                if !piece.is_empty() {
                    out.extend_from_slice(REDACTED.as_bytes());
                }
            }
        }
        at = range.end;
    }
    out.extend_from_slice(&bytes[at..]);
    out
}

/// Whether a path expression addresses a secret (by its last name or a `[@name='...password']`).
pub fn is_secret_path(expr: &str) -> bool {
    let tail = expr.rsplit('/').next().unwrap_or(expr);
    let name = tail
        .split('[')
        .next()
        .unwrap_or(tail)
        .trim_start_matches('@');
    is_secret_name(name) || is_secret_name(tail)
}

/// Redacts secret values in one line of XML (or of a diff of XML).
pub fn redact_line(line: &str) -> String {
    let line = redact_element_text(line);
    let line = redact_attributes(&line);
    redact_url_credentials(&line)
}

/// `<Password>x</Password>` and `<Property name="password">x</Property>` → value hidden.
fn redact_element_text(line: &str) -> String {
    let Some(open_end) = line.find('>') else {
        return line.to_owned();
    };
    let Some(open_start) = line[..open_end].rfind('<') else {
        return line.to_owned();
    };
    let tag = &line[open_start + 1..open_end];
    if tag.starts_with(['/', '!', '?']) {
        return line.to_owned();
    }
    let name = tag.split_whitespace().next().unwrap_or("");
    let name_attr = attr_value(tag, "name").unwrap_or_default();
    if !is_secret_name(name) && !is_secret_name(&name_attr) {
        return line.to_owned();
    }
    let rest = &line[open_end + 1..];
    let text_len = rest.find('<').unwrap_or(rest.len());
    if text_len == 0 || rest[..text_len].trim().is_empty() {
        return line.to_owned();
    }
    format!("{}{REDACTED}{}", &line[..open_end + 1], &rest[text_len..])
}

fn attr_value(tag: &str, name: &str) -> Option<String> {
    let at = tag.find(&format!("{name}="))? + name.len() + 1;
    let quote = tag[at..].chars().next()?;
    let rest = &tag[at + quote.len_utf8()..];
    Some(rest[..rest.find(quote)?].to_owned())
}

/// `keystorePass="x"` → `keystorePass="********"`.
fn redact_attributes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(eq) = next_assignment(rest) {
        // Past the separator, which may be multi-byte whitespace (U+00A0 from ISO-8859-1).
        let name_start = rest[..eq]
            .char_indices()
            .rev()
            .find(|(_, c)| c.is_whitespace() || *c == '<')
            .map_or(0, |(i, c)| i + c.len_utf8());
        let quote = &rest[eq + 1..eq + 2];
        let value_start = eq + 2;
        let Some(len) = rest[value_start..].find(quote) else {
            break;
        };
        out.push_str(&rest[..value_start]);
        let name = &rest[name_start..eq];
        let value = &rest[value_start..value_start + len];
        let hidden = is_secret_attr(name) && !value.is_empty();
        out.push_str(if hidden { REDACTED } else { value });
        rest = &rest[value_start + len..];
    }
    out.push_str(rest);
    out
}

/// The first `="` or `='`, whichever comes first: quotes of both kinds share a tag.
fn next_assignment(text: &str) -> Option<usize> {
    match (text.find("=\""), text.find("='")) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `password=x` parameters, `user:pass@host` credentials inside URLs and Oracle's
/// `user/pass@host`, in any text (a URL, possibly malformed, an error message, a diff line).
/// carbon-db re-exports this as `redact_raw`.
pub fn redact_url_credentials(text: &str) -> String {
    redact_oracle_userinfo(&redact_authorities(&redact_params(text)))
}

/// Characters that end a URL authority (or a credential) in running text.
const AUTHORITY_END: [char; 12] = [
    '/', '?', '#', ';', '<', '>', '"', '\'', ' ', '\n', '\r', '\t',
];

/// `scheme://user:password@host`: everything between the first `:` and the last `@` of
/// each authority.
fn redact_authorities(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(scheme) = rest.find("://") {
        let start = scheme + 3;
        let end = rest[start..]
            .find(AUTHORITY_END)
            .map_or(rest.len(), |i| start + i);
        let authority = &rest[start..end];
        out.push_str(&rest[..start]);
        match authority
            .rfind('@')
            .and_then(|at| Some((authority[..at].find(':')?, at)))
        {
            Some((colon, at)) if colon + 1 < at => {
                out.push_str(&authority[..=colon]);
                out.push_str(REDACTED);
                out.push_str(&authority[at..]);
            }
            _ => out.push_str(authority),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Oracle's `jdbc:oracle:thin:user/password@host`: between the `/` after `:user` and the `@`.
fn redact_oracle_userinfo(text: &str) -> String {
    let mut out = text.to_owned();
    let mut from = 0;
    while let Some(at) = out[from..].find('@').map(|i| from + i) {
        from = at + 1;
        let Some(slash) = out[..at]
            .rfind(['/', '@'])
            .filter(|&d| out.as_bytes()[d] == b'/')
        else {
            continue;
        };
        let secret = &out[slash + 1..at];
        let user_start = out[..slash].rfind(':').map_or(0, |c| c + 1);
        let user = &out[user_start..slash];
        let plain = |s: &str| !s.is_empty() && !s.contains(AUTHORITY_END) && !s.contains(':');
        if user_start > 0 && plain(user) && plain(secret) && secret != REDACTED {
            out.replace_range(slash + 1..at, REDACTED);
            from = slash + 1 + REDACTED.len() + 1;
        }
    }
    out
}

fn redact_params(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(eq) = rest.find('=') {
        let key_start = rest[..eq]
            .rfind(['?', '&', ';', ':', ' ', '>', '('])
            .map_or(0, |i| i + 1);
        let key = &rest[key_start..eq];
        let value_end = rest[eq + 1..]
            .find(['&', ';', '<', '"', '\'', ')', ' '])
            .map_or(rest.len(), |i| eq + 1 + i);
        out.push_str(&rest[..eq + 1]);
        let value = &rest[eq + 1..value_end];
        let url_param = !key.contains(['"', '\'', '<', ' ']);
        out.push_str(if url_param && is_secret_name(key) && !value.is_empty() {
            REDACTED
        } else {
            value
        });
        rest = &rest[value_end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_values_but_keeps_structure() {
        let cases = [
            (
                "<password>s3cret</password>",
                "<password>********</password>",
            ),
            (
                "+    <KeyPassword>abc</KeyPassword>",
                "+    <KeyPassword>********</KeyPassword>",
            ),
            (
                r#"<Property name="password">x</Property>"#,
                r#"<Property name="password">********</Property>"#,
            ),
            (
                r#"<Property encrypted="true" name="password">QUJD</Property>"#,
                r#"<Property encrypted="true" name="password">********</Property>"#,
            ),
            (r#"keystorePass="wso2carbon""#, r#"keystorePass="********""#),
            (
                r#"<Keystore password='s3cret' type="JKS"/>"#,
                r#"<Keystore password='********' type="JKS"/>"#,
            ),
            (
                r#"<password svns:secretAlias="A.B"></password>"#,
                r#"<password svns:secretAlias="A.B"></password>"#,
            ),
            (
                "<url>jdbc:mysql://h/db?user=u&amp;password=p&amp;x=1</url>",
                "<url>jdbc:mysql://h/db?user=u&amp;password=********&amp;x=1</url>",
            ),
            (
                "jdbc:postgresql://u:pw@h:5432/db",
                "jdbc:postgresql://u:********@h:5432/db",
            ),
            ("<username>wso2</username>", "<username>wso2</username>"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_line(input), expected, "{input}");
        }
    }

    #[test]
    fn url_credentials_hidden_in_any_text() {
        let cases = [
            (
                "cannot connect to postgres://u:p@ss@h:5432/db: refused",
                "cannot connect to postgres://u:********@h:5432/db: refused",
            ),
            (
                "jdbc:oracle:thin:scott/tiger@db:1521:orcl",
                "jdbc:oracle:thin:scott/********@db:1521:orcl",
            ),
            (
                "jdbc:sqlserver://h:1433;databaseName=c;Password=x;a=b",
                "jdbc:sqlserver://h:1433;databaseName=c;Password=********;a=b",
            ),
            ("PASSWORD=abc&user=u", "PASSWORD=********&user=u"),
            (
                "mysql://root@127.0.0.1:3306/",
                "mysql://root@127.0.0.1:3306/",
            ),
            ("admin@wso2.com logged in", "admin@wso2.com logged in"),
            ("see <a href=\"x/y\">@z</a>", "see <a href=\"x/y\">@z</a>"),
        ];
        for (input, expected) in cases {
            assert_eq!(redact_url_credentials(input), expected, "{input}");
        }
    }
}
