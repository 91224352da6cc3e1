//! The real admin-service WSDLs, read with quick-xml (through `carbon_verify::xml`), and a
//! validator of request elements against their XML Schema: element QNames, child names,
//! namespaces, `xs:sequence` order, occurrence bounds and simple-type values.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use carbon_verify::soap::Service;
use carbon_verify::xml::{self, Element};

const WSDL_NS: &str = "http://schemas.xmlsoap.org/wsdl/";
const SOAP11_BINDING_NS: &str = "http://schemas.xmlsoap.org/wsdl/soap/";
const XS: &str = "http://www.w3.org/2001/XMLSchema";

pub type QName = (String, String);

#[derive(Debug, Clone)]
pub enum TypeRef {
    /// An XML Schema built-in (`string`, `boolean`, `int`, `dateTime`, ...).
    Builtin(String),
    Named(QName),
    Inline(Box<Content>),
}

#[derive(Debug, Clone)]
pub enum Content {
    Sequence(Vec<Particle>),
    /// Anything else (extensions, `xs:any`): children are not checked.
    Open,
}

#[derive(Debug, Clone)]
pub struct Particle {
    pub name: QName,
    pub ty: TypeRef,
    pub min: u32,
    /// `None`: unbounded.
    pub max: Option<u32>,
}

#[derive(Debug, Clone)]
pub struct Operation {
    pub name: String,
    pub soap_action: String,
    pub input: QName,
    pub output: Option<QName>,
}

#[derive(Debug)]
pub struct Wsdl {
    pub service: Service,
    pub elements: HashMap<QName, TypeRef>,
    pub types: HashMap<QName, Content>,
    /// SOAP 1.1 binding operations, by name.
    pub operations: HashMap<String, Operation>,
}

pub fn fixtures_dir() -> PathBuf {
    carbon_db::testkit::wso2_fixtures()
}

/// The parsed WSDL of a service (parsed once per test process).
pub fn wsdl(service: Service) -> &'static Wsdl {
    static ALL: OnceLock<HashMap<Service, Wsdl>> = OnceLock::new();
    let all = ALL.get_or_init(|| Service::ALL.into_iter().map(|s| (s, load(s))).collect());
    &all[&service]
}

fn load(service: Service) -> Wsdl {
    let path = fixtures_dir().join("wsdl").join(format!("{service}.wsdl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let root = xml::parse(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(
        (root.ns.as_str(), root.name.as_str()),
        (WSDL_NS, "definitions")
    );
    let scope = Scope::default().push(&root);
    let mut wsdl = Wsdl {
        service,
        elements: HashMap::new(),
        types: HashMap::new(),
        operations: HashMap::new(),
    };
    let types = root.child("types").expect("wsdl:types");
    let types_scope = scope.push(types);
    for schema in types.children_named("schema") {
        let scope = types_scope.push(schema);
        let tns = schema
            .attr("targetNamespace")
            .unwrap_or_default()
            .to_owned();
        assert_eq!(schema.attr("elementFormDefault"), Some("qualified"));
        for item in &schema.children {
            let item_scope = scope.push(item);
            let Some(name) = item.attr("name") else {
                continue;
            };
            let qname = (tns.clone(), name.to_owned());
            match item.name.as_str() {
                "element" => {
                    let ty = element_type(item, &item_scope, &tns);
                    wsdl.elements.insert(qname, ty);
                }
                "complexType" => {
                    wsdl.types.insert(qname, content(item, &item_scope, &tns));
                }
                _ => {}
            }
        }
    }
    // messages → part element
    let mut messages: HashMap<String, Option<QName>> = HashMap::new();
    for message in root.children_named("message") {
        let part = message
            .child("part")
            .and_then(|p| p.attr("element"))
            .map(|e| scope.push(message).resolve(e));
        messages.insert(message.attr("name").unwrap_or_default().to_owned(), part);
    }
    let port_type = root.child("portType").expect("wsdl:portType");
    let mut io: HashMap<String, (QName, Option<QName>)> = HashMap::new();
    for op in port_type.children_named("operation") {
        let msg = |child: &str| {
            op.child(child).and_then(|c| c.attr("message")).map(|m| {
                let local = m.rsplit(':').next().unwrap_or(m);
                messages.get(local).cloned().flatten()
            })
        };
        let input = msg("input")
            .flatten()
            .expect("input message with an element");
        // An output message without a part (deactivateTenant) is still an output.
        let output = op
            .child("output")
            .map(|_| msg("output").flatten().unwrap_or_default());
        io.insert(
            op.attr("name").unwrap_or_default().to_owned(),
            (input, output),
        );
    }
    let binding = root
        .children_named("binding")
        .find(|b| {
            b.children
                .iter()
                .any(|c| c.ns == SOAP11_BINDING_NS && c.name == "binding")
        })
        .expect("a SOAP 1.1 binding");
    for op in binding.children_named("operation") {
        let name = op.attr("name").unwrap_or_default().to_owned();
        let soap_action = op
            .children
            .iter()
            .find(|c| c.ns == SOAP11_BINDING_NS && c.name == "operation")
            .and_then(|c| c.attr("soapAction"))
            .unwrap_or_default()
            .to_owned();
        let (input, output) = io.get(&name).cloned().expect("portType operation");
        wsdl.operations.insert(
            name.clone(),
            Operation {
                name,
                soap_action,
                input,
                output,
            },
        );
    }
    wsdl
}

/// Namespace prefixes in scope (for QName-valued attributes such as `type="ax1:Foo"`).
#[derive(Debug, Clone, Default)]
struct Scope(HashMap<String, String>);

impl Scope {
    fn push(&self, element: &Element) -> Scope {
        let mut map = self.0.clone();
        for (prefix, uri) in &element.ns_decls {
            map.insert(prefix.clone(), uri.clone());
        }
        Scope(map)
    }

    fn resolve(&self, qname: &str) -> QName {
        let (prefix, local) = qname.split_once(':').unwrap_or(("", qname));
        let ns = self
            .0
            .get(prefix)
            .unwrap_or_else(|| panic!("unbound prefix in {qname}"))
            .clone();
        (ns, local.to_owned())
    }
}

fn element_type(element: &Element, scope: &Scope, tns: &str) -> TypeRef {
    if let Some(ty) = element.attr("type") {
        let (ns, local) = scope.resolve(ty);
        return if ns == XS {
            TypeRef::Builtin(local)
        } else {
            TypeRef::Named((ns, local))
        };
    }
    match element.child("complexType") {
        Some(ct) => TypeRef::Inline(Box::new(content(ct, &scope.push(ct), tns))),
        None => TypeRef::Builtin("anyType".into()),
    }
}

fn content(complex: &Element, scope: &Scope, tns: &str) -> Content {
    let Some(sequence) = complex.child("sequence") else {
        return Content::Open;
    };
    let scope = scope.push(sequence);
    let mut particles = Vec::new();
    for item in &sequence.children {
        if item.ns != XS || item.name != "element" {
            return Content::Open;
        }
        let item_scope = scope.push(item);
        let name = item.attr("name").expect("local element name").to_owned();
        let max = match item.attr("maxOccurs") {
            Some("unbounded") => None,
            Some(n) => Some(n.parse().expect("maxOccurs")),
            None => Some(1),
        };
        particles.push(Particle {
            name: (tns.to_owned(), name),
            ty: element_type(item, &item_scope, tns),
            min: item
                .attr("minOccurs")
                .map_or(1, |n| n.parse().expect("minOccurs")),
            max,
        });
    }
    Content::Sequence(particles)
}

impl Wsdl {
    /// The operation whose input element is `element`'s QName.
    pub fn operation_for(&self, element: &Element) -> Option<&Operation> {
        self.operations
            .values()
            .find(|op| op.input.0 == element.ns && op.input.1 == element.name)
    }

    /// Validates an operation's input element against the schema.
    pub fn validate(&self, element: &Element) -> Result<&Operation, String> {
        let op = self.operation_for(element).ok_or_else(|| {
            format!(
                "{} is not the input element of any {} operation",
                element.qname(),
                self.service
            )
        })?;
        let ty = self
            .elements
            .get(&(element.ns.clone(), element.name.clone()))
            .ok_or_else(|| format!("no schema element {}", element.qname()))?;
        self.check_type(element, ty, &element.name)?;
        Ok(op)
    }

    fn check_type(&self, element: &Element, ty: &TypeRef, path: &str) -> Result<(), String> {
        match ty {
            TypeRef::Builtin(name) => {
                if let Some(child) = element.children.first() {
                    return Err(format!(
                        "{path}: a {name} value has a child element {}",
                        child.qname()
                    ));
                }
                let nil = element.attr("nil") == Some("true");
                let text = element.text.trim();
                let ok = nil
                    || match name.as_str() {
                        "boolean" => matches!(text, "true" | "false" | "1" | "0"),
                        "int" => text.parse::<i32>().is_ok(),
                        "long" => text.parse::<i64>().is_ok(),
                        _ => true,
                    };
                if ok {
                    Ok(())
                } else {
                    Err(format!("{path}: {text:?} is not an xs:{name}"))
                }
            }
            TypeRef::Named(q) => {
                let content = self
                    .types
                    .get(q)
                    .ok_or_else(|| format!("{path}: unknown type {{{}}}{}", q.0, q.1))?;
                self.check_content(element, content, path)
            }
            TypeRef::Inline(content) => self.check_content(element, content, path),
        }
    }

    fn check_content(
        &self,
        element: &Element,
        content: &Content,
        path: &str,
    ) -> Result<(), String> {
        let Content::Sequence(particles) = content else {
            return Ok(());
        };
        if !element.text.trim().is_empty() {
            return Err(format!("{path}: unexpected text {:?}", element.text.trim()));
        }
        let children = &element.children;
        let mut at = 0;
        for particle in particles {
            let mut count = 0u32;
            while let Some(child) = children.get(at) {
                if child.ns != particle.name.0 || child.name != particle.name.1 {
                    break;
                }
                let child_path = format!("{path}/{}", child.name);
                self.check_type(child, &particle.ty, &child_path)?;
                count += 1;
                at += 1;
            }
            if count < particle.min {
                return Err(format!(
                    "{path}: {{{}}}{} must occur at least {} time(s)",
                    particle.name.0, particle.name.1, particle.min
                ));
            }
            if particle.max.is_some_and(|max| count > max) {
                return Err(format!(
                    "{path}: {{{}}}{} occurs {count} times, at most {:?} allowed",
                    particle.name.0, particle.name.1, particle.max
                ));
            }
        }
        if let Some(extra) = children.get(at) {
            let expected: Vec<String> = particles
                .iter()
                .map(|p| format!("{{{}}}{}", p.name.0, p.name.1))
                .collect();
            return Err(format!(
                "{path}: unexpected child {} (the sequence is {})",
                extra.qname(),
                expected.join(", ")
            ));
        }
        Ok(())
    }
}

/// Checks a whole HTTP request as a Carbon server would need it: SOAP 1.1 envelope,
/// `SOAPAction`, body element and its schema. Returns the operation's name.
pub fn check_request(
    service: Service,
    soap_action: Option<&str>,
    content_type: Option<&str>,
    envelope: &str,
) -> Result<String, String> {
    let wsdl = wsdl(service);
    if !content_type.is_some_and(|c| c.starts_with("text/xml")) {
        return Err(format!(
            "Content-Type {content_type:?} is not text/xml (SOAP 1.1)"
        ));
    }
    let root = xml::parse(envelope).map_err(|e| e.to_string())?;
    if root.ns != carbon_verify::soap::SOAP_ENV || root.name != "Envelope" {
        return Err(format!("root {} is not a SOAP 1.1 Envelope", root.qname()));
    }
    let body = root
        .children
        .iter()
        .find(|c| c.name == "Body" && c.ns == carbon_verify::soap::SOAP_ENV)
        .ok_or("no soapenv:Body")?;
    if body.children.len() != 1 {
        return Err(format!(
            "the Body has {} elements, expected 1",
            body.children.len()
        ));
    }
    let op = wsdl.validate(&body.children[0])?;
    let expected = format!("\"{}\"", op.soap_action);
    if soap_action != Some(expected.as_str()) {
        return Err(format!(
            "SOAPAction {soap_action:?} does not match {expected} of {}",
            op.name
        ));
    }
    Ok(op.name.clone())
}
