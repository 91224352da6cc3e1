//! A small path language for Carbon configuration files.
//!
//! ```text
//! path := "/"* step ("/" step)* ["/@" name]
//! step := name pred*                 name: local name, or prefix:name for a qualified match, or *
//! pred := "[" name "=" quoted "]"    a child element whose trimmed text equals the value
//!       | "[@" name "=" quoted "]"   an attribute equal to the value
//!       | "[@" name "]"              an attribute that exists
//!       | "[" n "]"                  the n-th (1-based) of the candidates so far
//! ```
//! The first step is the root element. Example:
//! `datasources-configuration/datasources/datasource[name='WSO2_CARBON_DB']/definition/configuration/url`.

use std::fmt;

use crate::error::{ConfigError, Result};

/// A parsed path expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XPath {
    pub(crate) expr: String,
    pub(crate) steps: Vec<Step>,
    pub(crate) attr: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Step {
    pub name: String,
    pub preds: Vec<Pred>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Pred {
    ChildText { name: String, value: String },
    Attr { name: String, value: Option<String> },
    Position(usize),
}

impl XPath {
    pub fn parse(expr: &str) -> Result<Self> {
        Parser { expr, pos: 0 }.path()
    }

    /// The expression as given.
    pub fn as_str(&self) -> &str {
        &self.expr
    }

    /// The trailing `@attr`, if the path addresses an attribute.
    pub fn attribute(&self) -> Option<&str> {
        self.attr.as_deref()
    }

    /// The same path without its trailing `@attr`.
    pub fn element_path(&self) -> XPath {
        XPath {
            expr: self.prefix_text(self.steps.len()),
            steps: self.steps.clone(),
            attr: None,
        }
    }

    /// The local name of the last step.
    pub fn last_name(&self) -> &str {
        self.steps.last().map_or("", |s| s.name.as_str())
    }

    /// The text of the first `n` steps (for "longest matching prefix" messages).
    pub(crate) fn prefix_text(&self, n: usize) -> String {
        self.steps[..n]
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("/")
    }
}

impl fmt::Display for XPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expr)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        for pred in &self.preds {
            match pred {
                Pred::ChildText { name, value } => write!(f, "[{name}={}]", quote(value))?,
                Pred::Attr {
                    name,
                    value: Some(value),
                } => write!(f, "[@{name}={}]", quote(value))?,
                Pred::Attr { name, value: None } => write!(f, "[@{name}]")?,
                Pred::Position(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Quotes a predicate value with whichever quote it does not contain.
pub(crate) fn quote(value: &str) -> String {
    if value.contains('\'') {
        format!("\"{value}\"")
    } else {
        format!("'{value}'")
    }
}

struct Parser<'a> {
    expr: &'a str,
    pos: usize,
}

impl Parser<'_> {
    fn path(mut self) -> Result<XPath> {
        while self.eat('/') {}
        let mut steps = Vec::new();
        let mut attr = None;
        loop {
            if self.eat('@') {
                attr = Some(self.name()?);
                break;
            }
            steps.push(self.step()?);
            if !self.eat('/') {
                break;
            }
        }
        if self.pos != self.expr.len() {
            return Err(self.error(format!("unexpected `{}`", &self.expr[self.pos..])));
        }
        if steps.is_empty() {
            return Err(self.error("no element step".into()));
        }
        Ok(XPath {
            expr: self.expr.to_owned(),
            steps,
            attr,
        })
    }

    fn step(&mut self) -> Result<Step> {
        let name = self.name()?;
        let mut preds = Vec::new();
        while self.eat('[') {
            preds.push(self.pred()?);
            if !self.eat(']') {
                return Err(self.error("expected `]`".into()));
            }
        }
        Ok(Step { name, preds })
    }

    fn pred(&mut self) -> Result<Pred> {
        if self.peek().is_some_and(|c| c.is_ascii_digit()) {
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.pos += 1;
            }
            let n: usize = self.expr[start..self.pos]
                .parse()
                .map_err(|_| self.error("bad position".into()))?;
            if n == 0 {
                return Err(self.error("positions start at 1".into()));
            }
            return Ok(Pred::Position(n));
        }
        let is_attr = self.eat('@');
        let name = self.name()?;
        let value = if self.eat('=') {
            Some(self.quoted()?)
        } else {
            None
        };
        match (is_attr, value) {
            (true, value) => Ok(Pred::Attr { name, value }),
            (false, Some(value)) => Ok(Pred::ChildText { name, value }),
            (false, None) => Err(self.error(format!("predicate `[{name}]` needs `='value'`"))),
        }
    }

    fn name(&mut self) -> Result<String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| !"/[]@='\" \t\n".contains(c)) {
            self.pos += self.peek().map_or(1, char::len_utf8);
        }
        if start == self.pos {
            return Err(self.error("expected a name".into()));
        }
        Ok(self.expr[start..self.pos].to_owned())
    }

    fn quoted(&mut self) -> Result<String> {
        let Some(quote @ ('\'' | '"')) = self.peek() else {
            return Err(self.error("expected a quoted value".into()));
        };
        self.pos += 1;
        let Some(len) = self.expr[self.pos..].find(quote) else {
            return Err(self.error("unterminated quoted value".into()));
        };
        let value = self.expr[self.pos..self.pos + len].to_owned();
        self.pos += len + 1;
        Ok(value)
    }

    fn peek(&self) -> Option<char> {
        self.expr[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let hit = self.peek() == Some(c);
        if hit {
            self.pos += c.len_utf8();
        }
        hit
    }

    fn error(&self, reason: String) -> ConfigError {
        ConfigError::PathSyntax {
            expr: self.expr.to_owned(),
            reason: format!("{reason} at column {}", self.pos + 1),
        }
    }
}
