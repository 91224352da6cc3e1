//! A byte-preserving index over an XML file.
//!
//! quick-xml is used only as a tokenizer: every element, attribute value and text run is
//! recorded as a byte range of the original file, and edits are spliced into those bytes, so
//! untouched bytes stay identical by construction. Values are decoded from the original bytes.
//!
//! Encodings: UTF-8 (with or without a BOM, which quick-xml would hide from its offsets, so it is
//! stripped here first) and ISO-8859-1 (bytes map 1:1 to U+0000..U+00FF). The tokenizer runs on
//! a "shadow" copy in which every non-ASCII byte is replaced by `x`: XML markup is pure ASCII, so
//! offsets are the same, and quick-xml never has to decode anything.

use std::ops::Range;
use std::path::{Path, PathBuf};

use quick_xml::events::Event;

use crate::error::{ConfigError, Result};
use crate::path::{Pred, XPath};

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How the file's bytes map to characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Utf8,
    Latin1,
}

/// One parsed XML file: its exact bytes plus an index of elements. `Debug` shows no content
/// (configuration files hold passwords).
#[derive(Clone)]
pub struct XmlDoc {
    file: PathBuf,
    bytes: Vec<u8>,
    encoding: Encoding,
    elements: Vec<Element>,
    line_starts: Vec<usize>,
}

impl std::fmt::Debug for XmlDoc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XmlDoc")
            .field("file", &self.file)
            .field("encoding", &self.encoding)
            .field("bytes", &self.bytes.len())
            .field("elements", &self.elements.len())
            .finish()
    }
}

/// Index of an element inside its [`XmlDoc`].
pub type NodeId = usize;

#[derive(Debug, Clone)]
pub(crate) struct Element {
    pub qname: String,
    pub local: String,
    pub parent: Option<NodeId>,
    /// `<name ...>` or `<name .../>`, including the angle brackets.
    pub start_tag: Range<usize>,
    /// `</name >`, or `None` for a self-closing element.
    pub end_tag: Option<Range<usize>>,
    pub attrs: Vec<Attr>,
    pub content: Vec<Part>,
}

#[derive(Debug, Clone)]
pub(crate) struct Attr {
    pub qname: String,
    pub local: String,
    /// The raw value between the quotes.
    pub value: Range<usize>,
    pub quote: u8,
}

/// Direct content of an element, in document order.
#[derive(Debug, Clone)]
pub(crate) enum Part {
    Text(Range<usize>),
    /// An entity or character reference such as `&amp;` (quick-xml reports these separately).
    Ref(Range<usize>),
    /// The inner bytes of `<![CDATA[...]]>`.
    CData(Range<usize>),
    Comment,
    Pi,
    Child(NodeId),
}

impl XmlDoc {
    /// Reads and indexes a file.
    pub fn open(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| ConfigError::io(path, e))?;
        Self::parse(path, bytes)
    }

    /// Indexes `bytes`; `file` names the document in errors.
    pub fn parse(file: impl Into<PathBuf>, bytes: Vec<u8>) -> Result<Self> {
        let file = file.into();
        let body_start = if bytes.starts_with(BOM) { BOM.len() } else { 0 };
        let encoding = detect_encoding(&file, &bytes[body_start..], body_start > 0)?;
        let shadow: Vec<u8> = bytes[body_start..]
            .iter()
            .map(|&b| if b < 0x80 { b } else { b'x' })
            .collect();
        let mut doc = XmlDoc {
            line_starts: line_starts(&bytes),
            file,
            bytes,
            encoding,
            elements: Vec::new(),
        };
        doc.index(&shadow, body_start)?;
        Ok(doc)
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// The exact bytes of the file.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// The root element.
    pub fn root(&self) -> NodeId {
        0
    }

    /// Every element, in document order.
    pub(crate) fn element_ids(&self) -> Range<NodeId> {
        0..self.elements.len()
    }

    pub(crate) fn element(&self, id: NodeId) -> &Element {
        &self.elements[id]
    }

    /// The parent element, `None` for the root.
    pub fn parent(&self, id: NodeId) -> Option<NodeId> {
        self.elements[id].parent
    }

    /// The element's name as written (with prefix, if any).
    pub fn name(&self, id: NodeId) -> &str {
        &self.elements[id].qname
    }

    /// The element's name without prefix.
    pub fn local_name(&self, id: NodeId) -> &str {
        &self.elements[id].local
    }

    /// Child elements in document order.
    pub fn children(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        self.elements[id]
            .content
            .iter()
            .filter_map(|part| match part {
                Part::Child(child) => Some(*child),
                _ => None,
            })
    }

    /// Child elements whose local name is `local`.
    pub fn children_named<'a>(
        &'a self,
        id: NodeId,
        local: &'a str,
    ) -> impl Iterator<Item = NodeId> + 'a {
        self.children(id)
            .filter(move |&c| self.elements[c].local == local)
    }

    /// 1-based line of a byte offset.
    pub fn line_of(&self, offset: usize) -> usize {
        self.line_starts.partition_point(|&start| start <= offset)
    }

    /// 1-based line where the element starts.
    pub fn line(&self, id: NodeId) -> usize {
        self.line_of(self.elements[id].start_tag.start)
    }

    /// Decoded attribute value, matched by qualified name if `name` has a prefix, else by local name.
    pub fn attr(&self, id: NodeId, name: &str) -> Option<String> {
        let attr = self.find_attr(id, name)?;
        Some(self.decode_attr_value(attr.value.clone()))
    }

    pub(crate) fn find_attr(&self, id: NodeId, name: &str) -> Option<&Attr> {
        self.elements[id]
            .attrs
            .iter()
            .find(|a| name_matches(name, &a.qname, &a.local))
    }

    /// The element's text: text runs, references and CDATA joined and decoded; comments skipped.
    /// An element with child elements has no text of its own: that is an error.
    pub fn text(&self, id: NodeId) -> Result<String> {
        let mut out = String::new();
        for part in &self.elements[id].content {
            match part {
                Part::Text(range) => out.push_str(&normalize_eol(&self.decode(range.clone()))),
                Part::CData(range) => out.push_str(&normalize_eol(&self.decode(range.clone()))),
                Part::Ref(range) => out.push(self.resolve_ref(range.clone())?),
                Part::Comment | Part::Pi => {}
                Part::Child(_) => {
                    return Err(
                        self.unsupported(id, "the element has child elements, not a text value")
                    );
                }
            }
        }
        Ok(out)
    }

    /// Text with surrounding whitespace removed, or `None` when the element has child elements.
    pub fn text_trimmed(&self, id: NodeId) -> Option<String> {
        self.text(id).ok().map(|t| t.trim().to_owned())
    }

    /// Every element matched by `path`.
    pub fn select(&self, path: &XPath) -> Result<Vec<NodeId>> {
        let mut current: Vec<NodeId> = Vec::new();
        for (i, step) in path.steps.iter().enumerate() {
            let candidates: Vec<Vec<NodeId>> = if i == 0 {
                vec![vec![self.root()]]
            } else {
                current
                    .iter()
                    .map(|&p| self.children(p).collect())
                    .collect()
            };
            current = Vec::new();
            for group in candidates {
                let mut matched: Vec<NodeId> = group
                    .into_iter()
                    .filter(|&c| {
                        step.name == "*"
                            || name_matches(
                                &step.name,
                                &self.elements[c].qname,
                                &self.elements[c].local,
                            )
                    })
                    .collect();
                for pred in &step.preds {
                    matched = self.filter(matched, pred);
                }
                current.extend(matched);
            }
            if current.is_empty() {
                return Err(ConfigError::NotFound {
                    file: self.file.clone(),
                    expr: path.expr.clone(),
                    prefix: path.prefix_text(i),
                });
            }
        }
        Ok(current)
    }

    /// Exactly one element matched by `path` (its trailing `@attr`, if any, is ignored here).
    pub fn select_one(&self, path: &XPath) -> Result<NodeId> {
        let found = self.select(path)?;
        match found.as_slice() {
            [one] => Ok(*one),
            many => Err(ConfigError::Ambiguous {
                file: self.file.clone(),
                expr: path.expr.clone(),
                count: many.len(),
                lines: many
                    .iter()
                    .map(|&n| self.line(n).to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            }),
        }
    }

    /// The value at `path`: the element's text, or the attribute for a path ending in `/@name`.
    pub fn get(&self, path: &XPath) -> Result<String> {
        let node = self.select_one(path)?;
        match &path.attr {
            None => self.text(node),
            Some(attr) => self.attr(node, attr).ok_or_else(|| ConfigError::NotFound {
                file: self.file.clone(),
                expr: path.expr.clone(),
                prefix: path.prefix_text(path.steps.len()),
            }),
        }
    }

    /// Like [`XmlDoc::get`] for a path given as text.
    pub fn get_str(&self, expr: &str) -> Result<String> {
        self.get(&XPath::parse(expr)?)
    }

    /// The first element matching `expr`, if exactly that path exists (no error when absent).
    pub fn find(&self, expr: &str) -> Option<NodeId> {
        let path = XPath::parse(expr).ok()?;
        self.select(&path).ok()?.into_iter().next()
    }

    fn filter(&self, nodes: Vec<NodeId>, pred: &Pred) -> Vec<NodeId> {
        match pred {
            Pred::Position(n) => nodes
                .into_iter()
                .nth(n.saturating_sub(1))
                .into_iter()
                .collect(),
            Pred::Attr { name, value } => nodes
                .into_iter()
                .filter(|&id| match (self.attr(id, name), value) {
                    (Some(_), None) => true,
                    (Some(actual), Some(expected)) => &actual == expected,
                    (None, _) => false,
                })
                .collect(),
            Pred::ChildText { name, value } => nodes
                .into_iter()
                .filter(|&id| {
                    self.children(id).any(|c| {
                        let el = &self.elements[c];
                        name_matches(name, &el.qname, &el.local)
                            && self.text(c).is_ok_and(|t| t.trim() == value)
                    })
                })
                .collect(),
        }
    }

    pub(crate) fn decode(&self, range: Range<usize>) -> String {
        decode_bytes(&self.bytes[range], self.encoding)
    }

    fn decode_attr_value(&self, range: Range<usize>) -> String {
        // Attribute-value normalisation: each whitespace character becomes a space, then refs resolve.
        let raw = self.decode(range);
        let raw = raw.replace("\r\n", " ").replace(['\t', '\n', '\r'], " ");
        unescape(&raw).unwrap_or(raw)
    }

    fn resolve_ref(&self, range: Range<usize>) -> Result<char> {
        let raw = self.decode(range.clone());
        resolve_entity(raw.trim_start_matches('&').trim_end_matches(';')).ok_or_else(|| {
            ConfigError::Unsupported {
                file: self.file.clone(),
                expr: format!("line {}", self.line_of(range.start)),
                // Not named: the reference may sit inside a password.
                reason: "an entity reference other than the five XML ones or a character reference"
                    .into(),
            }
        })
    }

    pub(crate) fn unsupported(&self, id: NodeId, reason: &str) -> ConfigError {
        ConfigError::Unsupported {
            file: self.file.clone(),
            expr: format!("<{}> at line {}", self.elements[id].qname, self.line(id)),
            reason: reason.to_owned(),
        }
    }

    fn malformed(&self, offset: usize, message: impl Into<String>) -> ConfigError {
        ConfigError::Malformed {
            file: self.file.clone(),
            offset: offset as u64,
            message: message.into(),
        }
    }

    fn index(&mut self, shadow: &[u8], base: usize) -> Result<()> {
        let mut reader = quick_xml::Reader::from_reader(shadow);
        reader.config_mut().check_comments = true;
        let mut stack: Vec<NodeId> = Vec::new();
        let mut root_closed = false;
        loop {
            let start = reader.buffer_position() as usize + base;
            let event = reader.read_event().map_err(|err| {
                // Escape errors quote the text around the `&`, which may be a password.
                let message = match err {
                    quick_xml::Error::Escape(_) => "bad entity or character reference".to_owned(),
                    other => other.to_string(),
                };
                self.malformed(reader.error_position() as usize + base, message)
            })?;
            let end = reader.buffer_position() as usize + base;
            match event {
                Event::Eof => break,
                Event::Start(_) | Event::Empty(_) => {
                    let self_closing = matches!(event, Event::Empty(_));
                    if root_closed || (stack.is_empty() && !self.elements.is_empty()) {
                        return Err(self.malformed(start, "more than one root element"));
                    }
                    let id = self.push_element(start..end, stack.last().copied(), self_closing)?;
                    if self_closing {
                        root_closed |= stack.is_empty();
                    } else {
                        stack.push(id);
                    }
                }
                Event::End(_) => {
                    let Some(id) = stack.pop() else {
                        return Err(self.malformed(start, "closing tag without an open element"));
                    };
                    // quick-xml compared the ASCII shadow; compare the real (non-ASCII) names too.
                    let closing =
                        decode_bytes(self.bytes[start + 2..end - 1].trim_ascii(), self.encoding);
                    if closing != self.elements[id].qname {
                        let open = self.elements[id].qname.clone();
                        return Err(
                            self.malformed(start, format!("</{closing}> does not close <{open}>"))
                        );
                    }
                    self.elements[id].end_tag = Some(start..end);
                    root_closed |= stack.is_empty();
                }
                Event::Text(_) => match stack.last() {
                    Some(&id) => self.elements[id].content.push(Part::Text(start..end)),
                    None if self.bytes[start..end].iter().all(u8::is_ascii_whitespace) => {}
                    None => return Err(self.malformed(start, "text outside the root element")),
                },
                Event::GeneralRef(_) => match stack.last() {
                    Some(&id) => self.elements[id].content.push(Part::Ref(start..end)),
                    None => return Err(self.malformed(start, "reference outside the root element")),
                },
                Event::CData(_) => match stack.last() {
                    Some(&id) => self.elements[id]
                        .content
                        .push(Part::CData(start + 9..end - 3)),
                    None => return Err(self.malformed(start, "CDATA outside the root element")),
                },
                Event::Comment(_) => self.push_part(&stack, Part::Comment),
                Event::PI(_) => self.push_part(&stack, Part::Pi),
                Event::Decl(_) | Event::DocType(_) => {}
            }
        }
        if let Some(&open) = stack.last() {
            let name = self.elements[open].qname.clone();
            return Err(self.malformed(self.bytes.len(), format!("<{name}> is never closed")));
        }
        if self.elements.is_empty() {
            return Err(self.malformed(self.bytes.len(), "no root element"));
        }
        Ok(())
    }

    fn push_part(&mut self, stack: &[NodeId], part: Part) {
        if let Some(&id) = stack.last() {
            self.elements[id].content.push(part);
        }
    }

    fn push_element(
        &mut self,
        tag: Range<usize>,
        parent: Option<NodeId>,
        self_closing: bool,
    ) -> Result<NodeId> {
        let inner_end = if self_closing {
            tag.end - 2
        } else {
            tag.end - 1
        };
        let raw = &self.bytes[tag.start + 1..inner_end];
        let name_len = raw
            .iter()
            .position(|b| b.is_ascii_whitespace())
            .unwrap_or(raw.len());
        let qname = decode_bytes(&raw[..name_len], self.encoding);
        let attrs = scan_attrs(
            &self.bytes,
            tag.start + 1 + name_len..inner_end,
            self.encoding,
        )
        .map_err(|(offset, msg)| self.malformed(offset, format!("<{qname}>: {msg}")))?;
        let id = self.elements.len();
        self.elements.push(Element {
            local: local_part(&qname).to_owned(),
            qname,
            parent,
            start_tag: tag,
            end_tag: None,
            attrs,
            content: Vec::new(),
        });
        if let Some(parent) = parent {
            self.elements[parent].content.push(Part::Child(id));
        }
        Ok(id)
    }
}

fn detect_encoding(file: &Path, body: &[u8], has_bom: bool) -> Result<Encoding> {
    let declared = declared_encoding(body).map(|e| e.to_ascii_uppercase());
    let encoding = match declared.as_deref() {
        None | Some("UTF-8" | "UTF8" | "US-ASCII" | "ASCII") => Encoding::Utf8,
        Some("ISO-8859-1" | "ISO8859-1" | "LATIN1" | "LATIN-1" | "ISO_8859-1") => {
            if has_bom {
                // A UTF-8 byte-order mark contradicts the declaration: refuse rather than guess.
                return Err(ConfigError::Encoding {
                    file: file.to_path_buf(),
                    encoding: "ISO-8859-1 (it starts with a UTF-8 byte-order mark)".into(),
                });
            }
            Encoding::Latin1
        }
        Some(other) => {
            return Err(ConfigError::UnsupportedEncoding {
                file: file.to_path_buf(),
                encoding: other.to_owned(),
            });
        }
    };
    let valid = match encoding {
        Encoding::Utf8 => std::str::from_utf8(body).is_ok(),
        // 0x80..=0x9F are C1 controls, never text in ISO-8859-1: such bytes mean another encoding.
        Encoding::Latin1 => !body.iter().any(|b| (0x80..=0x9F).contains(b)),
    };
    if valid {
        Ok(encoding)
    } else {
        let name = declared.unwrap_or_else(|| "UTF-8 (no encoding declared)".to_owned());
        Err(ConfigError::Encoding {
            file: file.to_path_buf(),
            encoding: name,
        })
    }
}

/// The `encoding="..."` of a leading `<?xml ...?>` declaration.
fn declared_encoding(body: &[u8]) -> Option<String> {
    if !body.starts_with(b"<?xml") {
        return None;
    }
    let end = body.windows(2).position(|w| w == b"?>")?;
    let decl = std::str::from_utf8(&body[..end]).ok()?;
    let after = &decl[decl.find("encoding")? + "encoding".len()..];
    let after = after.trim_start().strip_prefix('=')?.trim_start();
    let quote = after.chars().next()?;
    let rest = &after[quote.len_utf8()..];
    Some(rest[..rest.find(quote)?].to_owned())
}

fn line_starts(bytes: &[u8]) -> Vec<usize> {
    std::iter::once(0)
        .chain(
            bytes
                .iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        )
        .collect()
}

pub(crate) fn decode_bytes(bytes: &[u8], encoding: Encoding) -> String {
    match encoding {
        Encoding::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
        Encoding::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
    }
}

fn normalize_eol(text: &str) -> String {
    if text.contains('\r') {
        text.replace("\r\n", "\n").replace('\r', "\n")
    } else {
        text.to_owned()
    }
}

pub(crate) fn local_part(qname: &str) -> &str {
    qname.rsplit_once(':').map_or(qname, |(_, local)| local)
}

/// A prefixed pattern matches the qualified name; an unprefixed one matches the local name.
pub(crate) fn name_matches(pattern: &str, qname: &str, local: &str) -> bool {
    if pattern.contains(':') {
        pattern == qname
    } else {
        pattern == local
    }
}

fn resolve_entity(name: &str) -> Option<char> {
    match name {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => {
            let number = name.strip_prefix('#')?;
            let code = match number.strip_prefix('x') {
                Some(hex) => u32::from_str_radix(hex, 16).ok()?,
                None => number.parse().ok()?,
            };
            char::from_u32(code)
        }
    }
}

/// Resolves `&...;` references in attribute text; `None` on an unknown or unterminated one.
fn unescape(raw: &str) -> Option<String> {
    let mut out = String::with_capacity(raw.len());
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let semi = rest[amp..].find(';')? + amp;
        out.push(resolve_entity(&rest[amp + 1..semi])?);
        rest = &rest[semi + 1..];
    }
    out.push_str(rest);
    Some(out)
}

/// Scans `name="value"` pairs in a start tag, keeping the raw value ranges and quote characters.
fn scan_attrs(
    bytes: &[u8],
    range: Range<usize>,
    encoding: Encoding,
) -> Result<Vec<Attr>, (usize, String)> {
    let mut attrs = Vec::new();
    let mut i = range.start;
    let skip_ws = |mut i: usize| {
        while i < range.end && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    loop {
        i = skip_ws(i);
        if i >= range.end {
            return Ok(attrs);
        }
        let name_start = i;
        while i < range.end && !bytes[i].is_ascii_whitespace() && bytes[i] != b'=' {
            i += 1;
        }
        let qname = decode_bytes(&bytes[name_start..i], encoding);
        i = skip_ws(i);
        if i >= range.end || bytes[i] != b'=' {
            return Err((name_start, format!("attribute `{qname}` has no value")));
        }
        i = skip_ws(i + 1);
        let quote = match bytes.get(i) {
            Some(&q @ (b'"' | b'\'')) if i < range.end => q,
            _ => return Err((i, format!("attribute `{qname}` value is not quoted"))),
        };
        let value_start = i + 1;
        let Some(len) = bytes[value_start..range.end]
            .iter()
            .position(|&b| b == quote)
        else {
            return Err((
                value_start,
                format!("attribute `{qname}` value is not closed"),
            ));
        };
        if attrs.iter().any(|a: &Attr| a.qname == qname) {
            return Err((name_start, format!("duplicate attribute `{qname}`")));
        }
        attrs.push(Attr {
            local: local_part(&qname).to_owned(),
            qname,
            value: value_start..value_start + len,
            quote,
        });
        i = value_start + len + 1;
        if i < range.end && !bytes[i].is_ascii_whitespace() {
            return Err((i, "attributes must be separated by whitespace".to_owned()));
        }
    }
}
