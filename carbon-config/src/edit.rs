//! Edits, plans and the atomic apply.
//!
//! [`plan`] resolves edits against an [`XmlDoc`] into byte splices, checks that the result
//! re-parses and reads back the new values, and keeps the unified diff of the real bytes.
//! [`apply`] refuses if the file changed since the plan (SHA-256), keeps `FILE.bak`, and
//! replaces the file with temp + fsync + rename + directory fsync.

use std::fmt;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

use carbon_fs::sha256_hex;
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::doc::{Encoding, NodeId, Part, XmlDoc};
use crate::error::{ConfigError, Result};
use crate::path::XPath;
use crate::redact::{is_secret_path, mask_ranges, redact_line, secret_ranges};
use crate::secret::REDACTED;

/// One change to make to a configuration file.
#[derive(Clone, PartialEq, Eq)]
pub enum Edit {
    /// Sets the element's text, or for a path ending in `/@name` the attribute (added if missing).
    Set { path: String, value: String },
    /// Appends `<name attr="v"...>text</name>` as the last child of the element at `parent`.
    InsertChild {
        parent: String,
        name: String,
        attrs: Vec<(String, String)>,
        text: String,
    },
    /// Removes the element (and its line, when it is alone on it).
    Remove { path: String },
}

impl Edit {
    pub fn set(path: impl Into<String>, value: impl Into<String>) -> Self {
        Edit::Set {
            path: path.into(),
            value: value.into(),
        }
    }

    pub fn insert_child(
        parent: impl Into<String>,
        name: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Edit::InsertChild {
            parent: parent.into(),
            name: name.into(),
            attrs: Vec::new(),
            text: text.into(),
        }
    }

    /// Like [`Edit::insert_child`], with attributes (written in order, double-quoted).
    pub fn insert_element(
        parent: impl Into<String>,
        name: impl Into<String>,
        attrs: Vec<(String, String)>,
        text: impl Into<String>,
    ) -> Self {
        Edit::InsertChild {
            parent: parent.into(),
            name: name.into(),
            attrs,
            text: text.into(),
        }
    }

    pub fn remove(path: impl Into<String>) -> Self {
        Edit::Remove { path: path.into() }
    }

    /// The path expression the edit addresses.
    pub fn path(&self) -> &str {
        match self {
            Edit::Set { path, .. } | Edit::Remove { path } => path,
            Edit::InsertChild { parent, .. } => parent,
        }
    }

    fn is_secret(&self) -> bool {
        match self {
            Edit::Set { path, .. } | Edit::Remove { path } => is_secret_path(path),
            Edit::InsertChild {
                parent,
                name,
                attrs,
                ..
            } => {
                is_secret_path(&format!("{parent}/{name}"))
                    || attrs
                        .iter()
                        .any(|(k, v)| k == "name" && crate::redact::is_secret_name(v))
            }
        }
    }
}

impl fmt::Debug for Edit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |v: &str| shown(v, self.is_secret());
        match self {
            Edit::Set { path, value } => write!(f, "Set({path} = {:?})", shown(value)),
            Edit::InsertChild {
                parent,
                name,
                attrs,
                text,
            } => {
                let attrs: String = attrs.iter().map(|(k, v)| format!(" {k}={v:?}")).collect();
                write!(
                    f,
                    "InsertChild({parent} += <{name}{attrs}>{:?})",
                    shown(text)
                )
            }
            Edit::Remove { path } => write!(f, "Remove({path})"),
        }
    }
}

/// What a planned edit does, for people: secret values are already redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    pub path: String,
    pub line: usize,
    pub action: Action,
    pub old: Option<String>,
    pub new: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    SetText,
    SetAttribute,
    AddAttribute,
    InsertChild,
    Remove,
}

/// Reviewed changes to one file, ready for [`apply`].
#[derive(Clone)]
pub struct Plan {
    file: PathBuf,
    original_sha256: [u8; 32],
    original: Vec<u8>,
    new: Vec<u8>,
    encoding: Encoding,
    changes: Vec<Change>,
    /// `original` and `new` with every secret value masked, line for line: what a diff shows.
    shown_original: Vec<u8>,
    shown_new: Vec<u8>,
}

impl fmt::Debug for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Plan")
            .field("file", &self.file)
            .field("changes", &self.changes)
            .finish_non_exhaustive()
    }
}

impl Plan {
    pub fn file(&self) -> &Path {
        &self.file
    }

    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// True when applying would change no byte.
    pub fn is_noop(&self) -> bool {
        self.original == self.new
    }

    /// The bytes the file will have.
    pub fn new_bytes(&self) -> &[u8] {
        &self.new
    }

    /// SHA-256 (hex) of the bytes the plan was made from.
    pub fn sha256_before(&self) -> String {
        self.original_sha256
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// SHA-256 (hex) of the bytes the file will have.
    pub fn sha256_after(&self) -> String {
        sha256_hex(&self.new)
    }

    /// Unified diff of the real bytes, with secret values redacted; empty for a no-op.
    pub fn unified_diff(&self) -> String {
        if self.is_noop() {
            return String::new();
        }
        let old = crate::doc::decode_bytes(&self.original, self.encoding);
        let new = crate::doc::decode_bytes(&self.new, self.encoding);
        let name = self.file.display().to_string();
        // git-style a/ b/ prefixes only make sense for relative paths.
        let (a, b) = if self.file.is_absolute() {
            (name.clone(), name)
        } else {
            (format!("a/{name}"), format!("b/{name}"))
        };
        let shown_old = crate::doc::decode_bytes(&self.shown_original, self.encoding);
        let shown_new = crate::doc::decode_bytes(&self.shown_new, self.encoding);
        let diff = similar::TextDiff::from_lines(&old, &new);
        let mut unified = diff.unified_diff();
        unified.context_radius(2);
        let (old_lines, new_lines) = (lines(&shown_old), lines(&shown_new));
        let mut out = format!("--- {a}\n+++ {b}\n");
        for hunk in unified.iter_hunks() {
            out.push_str(&format!("{}\n", hunk.header()));
            for change in hunk.iter_changes() {
                out.push_str(&shown_line(&diff, &change, &old_lines, &new_lines));
            }
        }
        out
    }
}

/// The lines of `text` as the line diff splits them (terminators attached).
fn lines(text: &str) -> Vec<&str> {
    similar::DiffableStr::tokenize_lines(text)
}

/// One diff line in similar's unified format, its text taken from the masked side (the
/// diff itself runs on the real bytes, so a changed secret still shows as changed), then
/// redacted line by line for credentials inside URLs.
fn shown_line(
    diff: &similar::TextDiff<'_, '_, str>,
    change: &similar::Change<&str>,
    old: &[&str],
    new: &[&str],
) -> String {
    let masked = match (change.tag(), change.old_index(), change.new_index()) {
        (similar::ChangeTag::Insert, _, Some(i)) => new.get(i),
        (_, Some(i), _) => old.get(i),
        _ => None,
    };
    // Unreachable fallback (same line counts by construction): the whole line hidden.
    let text = masked.copied().unwrap_or(REDACTED);
    let mut line = format!("{}{}", change.tag(), redact_line(text));
    if !diff.newline_terminated() {
        line.push('\n');
    } else if change.missing_newline() {
        line.push_str("\n\\ No newline at end of file\n");
    }
    line
}

/// Resolves `edits` against `doc`. Edits that change nothing are dropped; overlapping edits,
/// zero or several matches, and results that do not re-parse are errors.
pub fn plan(doc: &XmlDoc, edits: &[Edit]) -> Result<Plan> {
    let mut splices: Vec<(Range<usize>, Vec<u8>)> = Vec::new();
    let mut changes = Vec::new();
    for edit in edits {
        let Some((range, bytes, change)) = resolve(doc, edit)? else {
            continue;
        };
        if let Some((other, _)) = splices
            .iter()
            .find(|(r, _)| r.start < range.end && range.start < r.end)
        {
            return Err(ConfigError::Unsupported {
                file: doc.file().to_path_buf(),
                expr: edit.path().to_owned(),
                reason: format!("overlaps another edit at line {}", doc.line_of(other.start)),
            });
        }
        splices.push((range, bytes));
        changes.push(change);
    }
    let mut new = doc.bytes().to_vec();
    splices.sort_by_key(|(range, _)| std::cmp::Reverse(range.start));
    for (range, bytes) in splices {
        new.splice(range, bytes);
    }
    let reparsed = check_result(doc, edits, &new)?;
    Ok(Plan {
        file: doc.file().to_path_buf(),
        original_sha256: Sha256::digest(doc.bytes()).into(),
        original: doc.bytes().to_vec(),
        shown_original: mask_ranges(doc.bytes(), &secret_ranges(doc)),
        shown_new: mask_ranges(&new, &secret_ranges(&reparsed)),
        new,
        encoding: doc.encoding(),
        changes,
    })
}

/// Plans `edits` for the file at `path`. Refuses files under `<home>/repository/conf` of a
/// Carbon 4.5+ home, where `deployment.toml` regenerates the XML at start-up.
pub fn plan_file(path: &Path, edits: &[Edit]) -> Result<Plan> {
    if let Some(home) = toml_driven_home(path) {
        return Err(ConfigError::TomlDriven { home });
    }
    plan(&XmlDoc::open(path)?, edits)
}

fn toml_driven_home(file: &Path) -> Option<PathBuf> {
    let absolute = std::path::absolute(file).ok()?;
    absolute.ancestors().find_map(|dir| {
        let is_conf = dir.ends_with("repository/conf") && dir.join("deployment.toml").is_file();
        is_conf
            .then(|| dir.parent().and_then(Path::parent).map(Path::to_path_buf))
            .flatten()
    })
}

/// The edited bytes must parse, and every `Set` must read back its value. Returns the parse.
fn check_result(doc: &XmlDoc, edits: &[Edit], new: &[u8]) -> Result<XmlDoc> {
    let reparsed =
        XmlDoc::parse(doc.file(), new.to_vec()).map_err(|err| ConfigError::BrokenEdit {
            file: doc.file().to_path_buf(),
            message: err.to_string(),
        })?;
    for edit in edits {
        if let Edit::Set { path, value } = edit {
            let read_back = reparsed.get(&XPath::parse(path)?)?;
            if read_back != *value {
                return Err(ConfigError::BrokenEdit {
                    file: doc.file().to_path_buf(),
                    message: format!("`{path}` does not read back the value that was set"),
                });
            }
        }
    }
    Ok(reparsed)
}

type Splice = (Range<usize>, Vec<u8>, Change);

fn resolve(doc: &XmlDoc, edit: &Edit) -> Result<Option<Splice>> {
    reject_control_chars(doc, edit)?;
    match edit {
        Edit::Set { path, value } => {
            let xpath = XPath::parse(path)?;
            let node = doc.select_one(&xpath)?;
            match xpath.attribute() {
                Some(attr) => set_attr(doc, node, attr, value, path, edit.is_secret()),
                None => set_text(doc, node, value, path, edit.is_secret()),
            }
        }
        Edit::InsertChild {
            parent,
            name,
            attrs,
            text,
        } => {
            let node = select_element(
                doc,
                parent,
                "insert needs an element path, not an attribute",
            )?;
            let element = NewElement { name, attrs, text };
            insert_child(doc, node, &element, parent, edit.is_secret()).map(Some)
        }
        Edit::Remove { path } => {
            let node = select_element(doc, path, "removing attributes is not supported")?;
            remove(doc, node, path).map(Some)
        }
    }
}

fn reject_control_chars(doc: &XmlDoc, edit: &Edit) -> Result<()> {
    let value = match edit {
        Edit::Set { value, .. } => value.as_str(),
        Edit::InsertChild { text, .. } => text.as_str(),
        Edit::Remove { .. } => "",
    };
    if value.chars().any(|c| {
        (c < ' ' && !matches!(c, '\t' | '\n' | '\r')) || c == '\u{FFFE}' || c == '\u{FFFF}'
    }) {
        return Err(doc_unsupported(
            doc,
            edit.path(),
            "the value contains a character XML cannot hold",
        ));
    }
    if let Edit::InsertChild { name, .. } = edit
        && (name.is_empty() || name.contains(|c: char| c.is_whitespace() || "<>&/\"'=".contains(c)))
    {
        return Err(doc_unsupported(
            doc,
            edit.path(),
            &format!("`{name}` is not an element name"),
        ));
    }
    Ok(())
}

/// The one element `path` selects; an attribute path is refused with `reason`.
fn select_element(doc: &XmlDoc, path: &str, reason: &str) -> Result<NodeId> {
    let xpath = XPath::parse(path)?;
    if xpath.attribute().is_some() {
        return Err(doc_unsupported(doc, path, reason));
    }
    doc.select_one(&xpath)
}

fn doc_unsupported(doc: &XmlDoc, expr: &str, reason: &str) -> ConfigError {
    ConfigError::Unsupported {
        file: doc.file().to_path_buf(),
        expr: expr.to_owned(),
        reason: reason.to_owned(),
    }
}

/// A value as people may see it: hidden for secret paths, URL credentials hidden everywhere.
fn shown(value: &str, secret: bool) -> String {
    if secret {
        REDACTED.to_owned()
    } else {
        crate::redact::redact_url_credentials(value)
    }
}

fn set_text(
    doc: &XmlDoc,
    node: NodeId,
    value: &str,
    path: &str,
    secret: bool,
) -> Result<Option<Splice>> {
    let old = doc.text(node)?;
    if old == value {
        return Ok(None);
    }
    if let Some(alias) = doc.attr(node, "secretAlias") {
        // The server would ignore the text and resolve the alias: writing a plain value here
        // only leaks it.
        return Err(doc.unsupported(
            node,
            &format!("the value comes from the secure-vault alias `{alias}`; update the vault, not the file"),
        ));
    }
    let el = doc.element(node);
    let content = &el.content;
    if content
        .iter()
        .any(|p| matches!(p, Part::Comment | Part::Pi))
    {
        return Err(doc.unsupported(node, "the text is mixed with comments; edit it by hand"));
    }
    let change = Change {
        path: path.to_owned(),
        line: doc.line(node),
        action: Action::SetText,
        old: Some(shown(&old, secret)),
        new: Some(shown(value, secret)),
    };
    let cdata: Vec<_> = content
        .iter()
        .filter_map(|p| {
            if let Part::CData(r) = p {
                Some(r.clone())
            } else {
                None
            }
        })
        .collect();
    let only_whitespace_besides_cdata = content.iter().all(|p| match p {
        Part::Text(r) => doc.bytes()[r.clone()].iter().all(u8::is_ascii_whitespace),
        _ => true,
    });
    if let [inner] = cdata.as_slice()
        && only_whitespace_besides_cdata
        && !value.contains("]]>")
        && !value.contains('\r')
        && (doc.encoding() == Encoding::Utf8 || value.chars().all(|c| (c as u32) < 0x100))
    {
        return Ok(Some((inner.clone(), encode(value, doc.encoding()), change)));
    }
    let escaped = encode(&escape_text(value), doc.encoding());
    match &el.end_tag {
        Some(end) => Ok(Some((el.start_tag.end..end.start, escaped, change))),
        None => {
            // `<url/>` becomes `<url>value</url>`: replace the `/>`.
            let slash = el.start_tag.end - 2;
            let mut bytes = b">".to_vec();
            bytes.extend(escaped);
            bytes.extend(encode(&format!("</{}>", el.qname), doc.encoding()));
            Ok(Some((slash..el.start_tag.end, bytes, change)))
        }
    }
}

fn set_attr(
    doc: &XmlDoc,
    node: NodeId,
    name: &str,
    value: &str,
    path: &str,
    secret: bool,
) -> Result<Option<Splice>> {
    let el = doc.element(node);
    match doc.find_attr(node, name) {
        Some(attr) => {
            let old = doc.attr(node, name).unwrap_or_default();
            if old == value {
                return Ok(None);
            }
            let change = Change {
                path: path.to_owned(),
                line: doc.line_of(attr.value.start),
                action: Action::SetAttribute,
                old: Some(shown(&old, secret)),
                new: Some(shown(value, secret)),
            };
            Ok(Some((
                attr.value.clone(),
                encode(&escape_attr(value, attr.quote), doc.encoding()),
                change,
            )))
        }
        None => {
            if name.contains(':') {
                return Err(doc.unsupported(
                    node,
                    &format!("adding the prefixed attribute `{name}` is not supported"),
                ));
            }
            let quote = el.attrs.last().map_or(b'"', |a| a.quote);
            let name_end = |tag: &[u8]| {
                tag.iter()
                    .skip(1)
                    .position(|b| b.is_ascii_whitespace() || b"/>".contains(b))
                    .map_or(1, |i| i + 1)
            };
            let insert_at = el.attrs.last().map_or(
                el.start_tag.start + name_end(&doc.bytes()[el.start_tag.clone()]),
                |a| a.value.end + 1,
            );
            let text = format!(
                " {name}={q}{}{q}",
                escape_attr(value, quote),
                q = quote as char
            );
            let change = Change {
                path: path.to_owned(),
                line: doc.line(node),
                action: Action::AddAttribute,
                old: None,
                new: Some(shown(value, secret)),
            };
            Ok(Some((
                insert_at..insert_at,
                encode(&text, doc.encoding()),
                change,
            )))
        }
    }
}

struct NewElement<'a> {
    name: &'a str,
    attrs: &'a [(String, String)],
    text: &'a str,
}

fn insert_child(
    doc: &XmlDoc,
    node: NodeId,
    new: &NewElement<'_>,
    path: &str,
    secret: bool,
) -> Result<Splice> {
    let (name, text) = (new.name, new.text);
    let attrs: String = new
        .attrs
        .iter()
        .map(|(k, v)| format!(" {k}=\"{}\"", escape_attr(v, b'"')))
        .collect();
    let el = doc.element(node);
    let Some(end_tag) = el.end_tag.clone() else {
        return Err(doc.unsupported(node, "cannot insert into a self-closing element"));
    };
    let bytes = doc.bytes();
    let last_child = doc.children(node).last();
    let (at, indent) = match last_child {
        Some(child) => {
            let child_el = doc.element(child);
            let child_end = child_el
                .end_tag
                .as_ref()
                .map_or(child_el.start_tag.end, |r| r.end);
            (
                child_end,
                line_break_and_indent(bytes, child_el.start_tag.start),
            )
        }
        None => {
            let parent_indent = line_break_and_indent(bytes, el.start_tag.start);
            (end_tag.start, format!("{parent_indent}    "))
        }
    };
    let mut snippet = format!("{indent}<{name}{attrs}>{}</{name}>", escape_text(text));
    if last_child.is_none() {
        // Inserting before `</parent>`: keep the closing tag on its own line.
        snippet.push_str(&line_break_and_indent(bytes, el.start_tag.start));
    }
    let change = Change {
        path: format!("{path}/{name}"),
        line: doc.line_of(at),
        action: Action::InsertChild,
        old: None,
        new: Some(shown(text, secret)),
    };
    Ok((at..at, encode(&snippet, doc.encoding()), change))
}

/// The line break used by the file plus the whitespace that precedes `offset` on its line.
fn line_break_and_indent(bytes: &[u8], offset: usize) -> String {
    let line_start = bytes[..offset]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let indent: String = bytes[line_start..offset]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .map(|&b| b as char)
        .collect();
    let crlf = line_start >= 2 && bytes[line_start - 2] == b'\r';
    format!("{}{indent}", if crlf { "\r\n" } else { "\n" })
}

fn remove(doc: &XmlDoc, node: NodeId, path: &str) -> Result<Splice> {
    if node == doc.root() {
        return Err(doc.unsupported(node, "cannot remove the root element"));
    }
    let el = doc.element(node);
    let bytes = doc.bytes();
    let mut start = el.start_tag.start;
    let mut end = el.end_tag.as_ref().map_or(el.start_tag.end, |r| r.end);
    let line_start = bytes[..start]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let alone_before = bytes[line_start..start]
        .iter()
        .all(|b| *b == b' ' || *b == b'\t');
    let trailing = bytes[end..]
        .iter()
        .take_while(|b| **b == b' ' || **b == b'\t')
        .count();
    let after = end + trailing;
    let eol = if bytes[after..].starts_with(b"\r\n") {
        2
    } else {
        usize::from(bytes[after..].starts_with(b"\n"))
    };
    if alone_before && eol > 0 {
        start = line_start;
        end = after + eol;
    }
    let change = Change {
        path: path.to_owned(),
        line: doc.line(node),
        action: Action::Remove,
        old: None,
        new: None,
    };
    Ok((start..end, Vec::new(), change))
}

/// Text content escaping: `&`, `<`, `>` and a bare CR (which a parser would turn into LF).
pub(crate) fn escape_text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Attribute escaping for the quote character in use; whitespace as character references so
/// attribute-value normalisation keeps it.
fn escape_attr(value: &str, quote: u8) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' if quote == b'"' => out.push_str("&quot;"),
            '\'' if quote == b'\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Encodes text for the file; in a Latin-1 file, characters above U+00FF become `&#x...;`.
fn encode(text: &str, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Utf8 => text.as_bytes().to_vec(),
        Encoding::Latin1 => {
            let mut out = Vec::with_capacity(text.len());
            for c in text.chars() {
                match u8::try_from(c as u32) {
                    Ok(byte) if !(0x80..=0x9F).contains(&byte) => out.push(byte),
                    _ => out.extend(format!("&#x{:X};", c as u32).bytes()),
                }
            }
            out
        }
    }
}

/// Writes the plan: refuses if the file changed since planning, keeps `FILE.bak`, and replaces
/// the file atomically. Returns the backup path. A no-op plan writes nothing.
pub fn apply(plan: &Plan) -> Result<Option<PathBuf>> {
    if plan.is_noop() {
        return Ok(None);
    }
    let current = read_unchanged(plan)?;
    let mut backup = plan.file.clone().into_os_string();
    backup.push(".bak");
    let backup = PathBuf::from(backup);
    write_atomic(&backup, &current, &plan.file)?;
    write_atomic(&plan.file, &plan.new, &plan.file)?;
    Ok(Some(backup))
}

/// Like [`apply`] but keeps no `FILE.bak`: for a file whose original bytes are kept elsewhere
/// (a replicated file's are the old home's, and its replication manifest records their hash),
/// so that no stray copy lands in a tree that is later verified against that manifest.
pub fn apply_without_backup(plan: &Plan) -> Result<()> {
    if plan.is_noop() {
        return Ok(());
    }
    read_unchanged(plan)?;
    write_atomic(&plan.file, &plan.new, &plan.file)
}

/// The file's bytes, refused if they are not the ones the plan was made from.
fn read_unchanged(plan: &Plan) -> Result<Vec<u8>> {
    let current = fs::read(&plan.file).map_err(|e| ConfigError::io(&plan.file, e))?;
    if <[u8; 32]>::from(Sha256::digest(&current)) != plan.original_sha256 {
        return Err(ConfigError::ChangedSincePlan {
            file: plan.file.clone(),
        });
    }
    Ok(current)
}

/// Through the workspace's one atomic write (carbon-fs), keeping `like`'s permissions.
pub(crate) fn write_atomic(target: &Path, bytes: &[u8], like: &Path) -> Result<()> {
    let permissions = fs::metadata(like).ok().map(|m| m.permissions());
    carbon_fs::write_atomic(target, bytes, permissions).map_err(|e| ConfigError::io(target, e))
}
