//! Carry-over: which configuration customisations of the old home the new home needs.
//!
//! Every XML file under `repository/conf` is flattened into leaves keyed by a path in the
//! [path language](crate::path) with natural identities (`datasource[name='X']`,
//! `Property[@name='Y']`, positions only among same-named siblings), so a key is directly an
//! edit target in the new home. Two-way (old vs new): every difference is a customisation.
//! Three-way (with the pristine old distribution): only what the operator changed is carried,
//! and places where the new distribution changed the same value are conflicts.
//! Datasource connection fields are left to [`connect`](crate::connect::connect): carrying them would
//! point the new product at the old database.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::doc::{NodeId, XmlDoc};
use crate::edit::{Edit, Plan, plan_file};
use crate::error::{ConfigError, Result};
use crate::path::quote;
use crate::redact::{is_secret_path, redact_url_credentials};
use crate::secret::REDACTED;

/// What kind of difference an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CarryKind {
    /// The old home differs from the new (and, three-way, from the pristine old distribution):
    /// the edit sets the old value in the new home.
    Customised,
    /// The operator and the new distribution both changed this value: decide by hand.
    Conflict,
    /// A leaf element or attribute the old home has and the new lacks: the edit adds it.
    OnlyInOld,
    /// A whole element or file only the old home has: add it by hand.
    Manual,
    /// Present only in the new home (new defaults, or removed by the operator); no edit.
    OnlyInNew,
    /// A datasource connection setting; handled by `connect`, never carried.
    Connection,
}

/// One reviewed difference. Values of secrets are shown as `********`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarryItem {
    /// Relative to the product home.
    pub file: PathBuf,
    pub key: String,
    pub kind: CarryKind,
    pub old: Option<String>,
    pub new: Option<String>,
    pub base: Option<String>,
    #[serde(skip)]
    pub edit: Option<Edit>,
}

/// The result of comparing two homes.
#[derive(Debug, Clone, Serialize)]
pub struct CarryOver {
    pub files_compared: usize,
    pub three_way: bool,
    pub items: Vec<CarryItem>,
}

impl CarryOver {
    /// The items that need a decision or an edit (everything except `OnlyInNew` and `Connection`).
    pub fn actionable(&self) -> impl Iterator<Item = &CarryItem> {
        self.items
            .iter()
            .filter(|i| !matches!(i.kind, CarryKind::OnlyInNew | CarryKind::Connection))
    }

    pub fn conflicts(&self) -> impl Iterator<Item = &CarryItem> {
        self.items.iter().filter(|i| i.kind == CarryKind::Conflict)
    }

    /// Plans the proposed edits against the files of `new_home` (one plan per file).
    pub fn plans(&self, new_home: &Path) -> Result<Vec<Plan>> {
        let mut by_file: BTreeMap<&Path, Vec<Edit>> = BTreeMap::new();
        for item in &self.items {
            if let Some(edit) = &item.edit {
                by_file.entry(&item.file).or_default().push(edit.clone());
            }
        }
        by_file
            .into_iter()
            .map(|(file, edits)| plan_file(&new_home.join(file), &edits))
            .collect()
    }
}

/// Compares the configuration of `old` and `new` homes, three-way when `old_dist` is given.
pub fn carry_over(old: &Path, new: &Path, old_dist: Option<&Path>) -> Result<CarryOver> {
    if new.join(crate::home::DEPLOYMENT_TOML).is_file() {
        return Err(ConfigError::TomlDriven {
            home: new.to_path_buf(),
        });
    }
    for home in [Some(old), Some(new), old_dist].into_iter().flatten() {
        if !home.join(crate::home::CARBON_XML).is_file() {
            return Err(ConfigError::NotAProductHome {
                home: home.to_path_buf(),
                reason: format!("no {}", crate::home::CARBON_XML),
            });
        }
    }
    let mut report = CarryOver {
        files_compared: 0,
        three_way: old_dist.is_some(),
        items: Vec::new(),
    };
    for rel in conf_xml_files(old)? {
        let new_file = new.join(&rel);
        if !new_file.is_file() {
            report.items.push(file_only_in_old(rel));
            continue;
        }
        let old_doc = Flat::of(&XmlDoc::open(&old.join(&rel))?);
        let new_doc = Flat::of(&XmlDoc::open(&new_file)?);
        let base = match old_dist.map(|d| d.join(&rel)).filter(|p| p.is_file()) {
            Some(path) => Some(Flat::of(&XmlDoc::open(&path)?)),
            None => None,
        };
        report.files_compared += 1;
        report
            .items
            .extend(compare(&rel, &old_doc, &new_doc, base.as_ref()));
    }
    Ok(report)
}

fn file_only_in_old(rel: PathBuf) -> CarryItem {
    CarryItem {
        key: String::new(),
        kind: CarryKind::Manual,
        old: None,
        new: None,
        base: None,
        edit: None,
        file: rel,
    }
}

/// `repository/conf/**/*.xml`, relative, sorted.
fn conf_xml_files(home: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![home.join("repository/conf")];
    while let Some(dir) = stack.pop() {
        let entries = std::fs::read_dir(&dir).map_err(|e| ConfigError::io(&dir, e))?;
        for entry in entries {
            let path = entry.map_err(|e| ConfigError::io(&dir, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "xml") {
                out.push(path.strip_prefix(home).unwrap_or(&path).to_path_buf());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// A flattened document: leaves (element text and attributes) and the set of element keys.
struct Flat {
    leaves: Vec<(String, String)>,
    values: HashMap<String, String>,
    elements: HashSet<String>,
}

impl Flat {
    fn of(doc: &XmlDoc) -> Self {
        let mut flat = Flat {
            leaves: Vec::new(),
            values: HashMap::new(),
            elements: HashSet::new(),
        };
        let root = doc.root();
        let key = step_key(doc, root);
        flat.walk(doc, root, key);
        flat.values = flat.leaves.iter().cloned().collect();
        flat
    }

    /// Whether the element at `key` carries a `svns:secretAlias` (any prefix).
    fn uses_secret_alias(&self, key: &str) -> bool {
        self.attrs_of(key)
            .iter()
            .any(|(name, _)| name.rsplit(':').next() == Some("secretAlias"))
    }

    /// The attributes of the element at `element`, in document order.
    fn attrs_of(&self, element: &str) -> Vec<(String, String)> {
        self.leaves
            .iter()
            .filter_map(|(key, value)| {
                let (parent, last) = split_last_step(key);
                let name = last.strip_prefix('@')?;
                (parent == element).then(|| (name.to_owned(), value.clone()))
            })
            .collect()
    }

    fn walk(&mut self, doc: &XmlDoc, node: NodeId, key: String) {
        self.elements.insert(key.clone());
        for attr in &doc.element(node).attrs {
            if attr.qname == "xmlns" || attr.qname.starts_with("xmlns:") {
                continue;
            }
            let value = doc.attr(node, &attr.qname).unwrap_or_default();
            self.leaves.push((format!("{key}/@{}", attr.qname), value));
        }
        let children: Vec<NodeId> = doc.children(node).collect();
        if children.is_empty() {
            self.leaves
                .push((key, doc.text_trimmed(node).unwrap_or_default()));
            return;
        }
        for child in children {
            let child_key = format!("{key}/{}", step_key(doc, child));
            self.walk(doc, child, child_key);
        }
    }
}

/// One path step with the element's natural identity.
fn step_key(doc: &XmlDoc, node: NodeId) -> String {
    let name = doc.name(node).to_owned();
    let expressible = |v: &str| !(v.contains('\'') && v.contains('"'));
    if let Some(child_name) = doc
        .children_named(node, "name")
        .next()
        .and_then(|c| doc.text_trimmed(c))
        && !child_name.is_empty()
        && expressible(&child_name)
        && unique_among_siblings(doc, node, |n| {
            doc.children_named(n, "name")
                .next()
                .and_then(|c| doc.text_trimmed(c))
                .as_deref()
                == Some(&child_name)
        })
    {
        return format!("{name}[name={}]", quote(&child_name));
    }
    let has_namesakes = doc
        .parent(node)
        .is_some_and(|p| doc.children(p).filter(|&c| doc.name(c) == name).count() > 1);
    for attr in ["name", "class", "id", "type"] {
        if attr != "name" && !has_namesakes {
            continue;
        }
        if let Some(value) = doc.attr(node, attr)
            && expressible(&value)
            && unique_among_siblings(doc, node, |n| doc.attr(n, attr).as_deref() == Some(&value))
        {
            return format!("{name}[@{attr}={}]", quote(&value));
        }
    }
    let Some(parent) = doc.parent(node) else {
        return name;
    };
    let same: Vec<NodeId> = doc
        .children(parent)
        .filter(|&c| doc.name(c) == name)
        .collect();
    if same.len() > 1 {
        let position = same.iter().position(|&c| c == node).map_or(1, |i| i + 1);
        return format!("{name}[{position}]");
    }
    name
}

fn unique_among_siblings(
    doc: &XmlDoc,
    node: NodeId,
    same_identity: impl Fn(NodeId) -> bool,
) -> bool {
    let Some(parent) = doc.parent(node) else {
        return true;
    };
    doc.children(parent)
        .filter(|&c| doc.name(c) == doc.name(node) && same_identity(c))
        .count()
        == 1
}

/// Keys never carried: the version string, and datasource connection settings (`connect`).
fn skipped_kind(key: &str) -> Option<CarryKind> {
    const CONNECTION: [&str; 4] = ["/url", "/username", "/password", "/driverClassName"];
    let in_datasource =
        key.starts_with("datasources-configuration/") && key.contains("/definition");
    // Attributes of a connection element too (`password/@svns:secretAlias`): connect owns them.
    let element = key.rsplit_once("/@").map_or(key, |(element, _)| element);
    if in_datasource
        && (CONNECTION.iter().any(|c| element.ends_with(c)) || key.contains("/dataSourceProps/"))
    {
        return Some(CarryKind::Connection);
    }
    (key == "Server/Version").then_some(CarryKind::OnlyInNew)
}

fn shown(key: &str, value: Option<&String>) -> Option<String> {
    value.map(|v| {
        if is_secret_path(key) && !v.is_empty() {
            REDACTED.to_owned()
        } else {
            redact_url_credentials(v)
        }
    })
}

fn compare(rel: &Path, old: &Flat, new: &Flat, base: Option<&Flat>) -> Vec<CarryItem> {
    let mut items = Vec::new();
    let mut manual_roots: HashSet<String> = HashSet::new();
    let mut inserted: HashSet<String> = HashSet::new();
    let item = |key: &str, kind, edit| CarryItem {
        file: rel.to_path_buf(),
        key: key.to_owned(),
        kind,
        old: shown(key, old.values.get(key)),
        new: shown(key, new.values.get(key)),
        base: shown(key, base.and_then(|b| b.values.get(key))),
        edit,
    };
    for (key, old_value) in &old.leaves {
        let base_value = base.map(|b| b.values.get(key));
        let new_value = new.values.get(key);
        if new_value == Some(old_value) || base_value == Some(Some(old_value)) {
            continue; // unchanged, or only the new distribution changed it
        }
        if let Some(kind) = skipped_kind(key) {
            if kind == CarryKind::Connection {
                items.push(item(key, kind, None));
            }
            continue;
        }
        match new_value {
            Some(new_value) if base_value.is_some_and(|b| b.is_some_and(|b| b != new_value)) => {
                items.push(item(key, CarryKind::Conflict, None));
            }
            // The new home reads this value from the secure vault: the text is not the value.
            Some(_) if new.uses_secret_alias(key) => items.push(item(key, CarryKind::Manual, None)),
            Some(_) => items.push(item(
                key,
                CarryKind::Customised,
                Some(Edit::set(key, old_value)),
            )),
            None => match missing(key, old, new) {
                Missing::Attribute => {
                    items.push(item(
                        key,
                        CarryKind::OnlyInOld,
                        Some(Edit::set(key, old_value)),
                    ));
                }
                Missing::Element {
                    element,
                    parent,
                    name,
                } => {
                    if inserted.insert(element.clone()) {
                        let text = old.values.get(&element).cloned().unwrap_or_default();
                        let edit = Edit::insert_element(parent, name, old.attrs_of(&element), text);
                        items.push(item(&element, CarryKind::OnlyInOld, Some(edit)));
                    }
                }
                Missing::Subtree(root) => {
                    if manual_roots.insert(root.clone()) {
                        items.push(CarryItem {
                            old: None,
                            ..item(&root, CarryKind::Manual, None)
                        });
                    }
                }
            },
        }
    }
    for (key, _) in &new.leaves {
        if !old.values.contains_key(key)
            && skipped_kind(key).is_none()
            && !manual_roots.iter().any(|r| key.starts_with(r.as_str()))
        {
            items.push(item(key, CarryKind::OnlyInNew, None));
        }
    }
    items
}

enum Missing {
    /// An attribute of an element the new home has: set it.
    Attribute,
    /// A leaf element (text and attributes) whose parent the new home has: insert it.
    Element {
        element: String,
        parent: String,
        name: String,
    },
    /// The topmost element key missing from the new home: add by hand.
    Subtree(String),
}

fn missing(key: &str, old: &Flat, new: &Flat) -> Missing {
    let (parent, last) = split_last_step(key);
    let element = if last.starts_with('@') { parent } else { key };
    if last.starts_with('@') && new.elements.contains(element) {
        return Missing::Attribute;
    }
    let (element_parent, element_last) = split_last_step(element);
    let identity_only = element_last
        .split('[')
        .skip(1)
        .all(|pred| pred.starts_with('@'));
    if new.elements.contains(element_parent) && old.values.contains_key(element) && identity_only {
        return Missing::Element {
            element: element.to_owned(),
            parent: element_parent.to_owned(),
            name: element_last
                .split('[')
                .next()
                .unwrap_or(element_last)
                .to_owned(),
        };
    }
    let mut root = element;
    loop {
        let (up, _) = split_last_step(root);
        if up.is_empty() || new.elements.contains(up) {
            break;
        }
        root = up;
    }
    Missing::Subtree(root.to_owned())
}

/// Splits `a/b[@x='p/q']/c` into (`a/b[@x='p/q']`, `c`), ignoring `/` inside predicates.
fn split_last_step(key: &str) -> (&str, &str) {
    let mut depth = 0usize;
    let mut quote: Option<char> = None;
    let mut last_slash = None;
    for (i, c) in key.char_indices() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '[') => depth += 1,
            (None, ']') => depth = depth.saturating_sub(1),
            (None, '/') if depth == 0 => last_slash = Some(i),
            _ => {}
        }
    }
    match last_slash {
        Some(i) => (&key[..i], &key[i + 1..]),
        None => ("", key),
    }
}
