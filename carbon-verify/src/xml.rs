//! A small namespace-resolved element tree over quick-xml, enough for SOAP envelopes and WSDLs.

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::reader::NsReader;

/// An element with its namespace URI resolved, its attributes (local names), child elements
/// and concatenated text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Element {
    /// Namespace URI, empty when unbound.
    pub ns: String,
    pub name: String,
    /// Attributes by local name (namespace declarations excluded).
    pub attrs: Vec<(String, String)>,
    /// Namespace declarations made on this element: (prefix, URI), prefix empty for the default.
    pub ns_decls: Vec<(String, String)>,
    pub children: Vec<Element>,
    pub text: String,
}

/// Why a document could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct XmlError(pub String);

impl Element {
    /// The first child with this local name.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    /// Every child with this local name.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The trimmed text of the first child with this local name.
    pub fn child_text(&self, name: &str) -> Option<String> {
        self.child(name).map(|c| c.text.trim().to_owned())
    }

    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Depth-first search for the first descendant (or self) with this local name.
    pub fn find(&self, name: &str) -> Option<&Element> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|c| c.find(name))
    }

    /// `{ns}name`, for messages.
    pub fn qname(&self) -> String {
        format!("{{{}}}{}", self.ns, self.name)
    }
}

/// Parses a whole document and returns its root element.
pub fn parse(text: &str) -> Result<Element, XmlError> {
    let mut reader = NsReader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        let (resolved, event) = reader
            .read_resolved_event()
            .map_err(|e| XmlError(format!("malformed XML: {e}")))?;
        let ns = match resolved {
            ResolveResult::Bound(ns) => String::from_utf8_lossy(ns.0.as_bytes()).into_owned(),
            ResolveResult::Unbound => String::new(),
            ResolveResult::Unknown(prefix) => {
                return Err(XmlError(format!("undeclared namespace prefix `{prefix}`")));
            }
        };
        let (start, empty) = match &event {
            Event::Start(start) => (start, false),
            Event::Empty(start) => (start, true),
            Event::End(_) => {
                let Some(done) = stack.pop() else {
                    return Err(XmlError("unbalanced end tag".into()));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => return Ok(done),
                }
                continue;
            }
            Event::Text(text) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&text.xml10_content());
                }
                continue;
            }
            Event::CData(data) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&data.xml10_content());
                }
                continue;
            }
            Event::GeneralRef(reference) => {
                let raw = format!("&{};", reference.clone().into_inner());
                let resolved = quick_xml::escape::unescape(&raw)
                    .map_err(|e| XmlError(format!("unknown entity {raw}: {e}")))?
                    .into_owned();
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&resolved);
                }
                continue;
            }
            Event::Eof => {
                return Err(XmlError(
                    "document ends before its root element closes".into(),
                ));
            }
            _ => continue,
        };
        let mut element = Element {
            ns,
            name: String::from_utf8_lossy(start.local_name().as_ref().as_bytes()).into_owned(),
            ..Element::default()
        };
        for attr in start.attributes() {
            let attr = attr.map_err(|e| XmlError(format!("bad attribute: {e}")))?;
            let key: &str = attr.key.0;
            if key == "xmlns" || key.starts_with("xmlns:") {
                let prefix = key.strip_prefix("xmlns:").unwrap_or("").to_owned();
                element.ns_decls.push((prefix, attr.value.into_owned()));
                continue;
            }
            let local = key.rsplit(':').next().unwrap_or(key).to_owned();
            let value = attr
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|e| XmlError(format!("bad attribute value: {e}")))?
                .into_owned();
            element.attrs.push((local, value));
        }
        if empty {
            match stack.last_mut() {
                Some(parent) => parent.children.push(element),
                None => return Ok(element),
            }
        } else {
            stack.push(element);
        }
    }
}

/// Escapes text for element content and attribute values.
pub fn escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}
