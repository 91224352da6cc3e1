//! Splitting a vendor's SQL script into statements, the way its own client would, so each
//! statement can be run, journalled and reported (`script:line`) on its own.
//!
//! Handled: `--` and `/* */` comments (MySQL also `#`; its `/*! … */` executable comments are
//! kept), semicolons inside `'…'`, `"…"` and `` `…` `` quotes (MySQL backslash escapes,
//! PostgreSQL `E'…'`), PostgreSQL `$tag$ … $tag$` bodies (`DO` blocks, functions), MySQL
//! `DELIMITER` lines, and MySQL `CREATE PROCEDURE|FUNCTION|TRIGGER|EVENT … BEGIN … END;`
//! written *without* `DELIMITER` (WSO2's IS `step1` scripts): inside such a statement a `;`
//! ends it only once every `BEGIN`/`CASE` is closed by its `END`. H2 scripts are refused.

use serde::Serialize;

use crate::Vendor;

/// One statement of a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// 1-based position in the script.
    pub number: usize,
    /// 1-based line of the statement's first character.
    pub line: usize,
    /// The statement without its delimiter and without comments.
    pub text: String,
}

impl Statement {
    /// The statement's first line, for messages.
    pub fn first_line(&self) -> &str {
        self.text.lines().next().unwrap_or("").trim()
    }
}

/// A script this crate cannot split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error(
        "{vendor} scripts are not run: no {vendor} engine is available here (apply them with the product's own tools)"
    )]
    Unsupported { vendor: Vendor },
    #[error("line {line}: unterminated {what}")]
    Unterminated { line: usize, what: &'static str },
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Dialect {
    Postgres,
    MySql,
    Sqlite,
}

/// Splits `script` into statements as `vendor`'s client would.
pub fn split(vendor: Vendor, script: &str) -> Result<Vec<Statement>, ScriptError> {
    let dialect = match vendor {
        Vendor::Postgres => Dialect::Postgres,
        Vendor::MySql => Dialect::MySql,
        Vendor::Sqlite => Dialect::Sqlite,
        _ => return Err(ScriptError::Unsupported { vendor }),
    };
    Splitter::new(dialect, script).run()
}

struct Splitter<'a> {
    dialect: Dialect,
    src: &'a str,
    pos: usize,
    line: usize,
    delimiter: String,
    current: String,
    start_line: Option<usize>,
    out: Vec<Statement>,
    // MySQL compound statements written without DELIMITER.
    words: Vec<String>,
    depth: i32,
    after_end: bool,
}

impl<'a> Splitter<'a> {
    fn new(dialect: Dialect, src: &'a str) -> Self {
        Splitter {
            dialect,
            src,
            pos: 0,
            line: 1,
            delimiter: ";".into(),
            current: String::new(),
            start_line: None,
            out: Vec::new(),
            words: Vec::new(),
            depth: 0,
            after_end: false,
        }
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, c: char) {
        if self.start_line.is_none() && !c.is_whitespace() {
            self.start_line = Some(self.line);
        }
        self.current.push(c);
    }

    fn at_line_start(&self) -> bool {
        self.src[..self.pos]
            .rsplit('\n')
            .next()
            .is_none_or(|before| before.trim().is_empty())
    }

    fn run(mut self) -> Result<Vec<Statement>, ScriptError> {
        while let Some(c) = self.peek() {
            let rest = self.rest();
            if self.dialect == Dialect::MySql
                && self.current.trim().is_empty()
                && self.at_line_start()
                && rest
                    .get(..10)
                    .is_some_and(|w| w.eq_ignore_ascii_case("DELIMITER "))
            {
                let end = rest.find('\n').unwrap_or(rest.len());
                let new = rest[10..end].trim().to_owned();
                for _ in 0..end {
                    self.bump();
                }
                if !new.is_empty() {
                    self.delimiter = new;
                }
                continue;
            }
            if rest.starts_with(self.delimiter.as_str()) && self.depth <= 0 {
                for _ in 0..self.delimiter.chars().count() {
                    self.bump();
                }
                self.finish();
                continue;
            }
            if (rest.starts_with("--") && self.line_comment_dash(rest))
                || (c == '#' && self.dialect == Dialect::MySql)
            {
                while let Some(c) = self.peek() {
                    if c == '\n' {
                        break;
                    }
                    self.bump();
                }
                continue;
            }
            if rest.starts_with("/*") {
                self.block_comment(rest.starts_with("/*!") && self.dialect == Dialect::MySql)?;
                continue;
            }
            match c {
                '\'' => {
                    let backslash = self.dialect == Dialect::MySql || self.e_string();
                    self.quoted('\'', backslash, "string")?;
                }
                '"' => self.quoted('"', self.dialect == Dialect::MySql, "quoted name")?,
                '`' if self.dialect == Dialect::MySql => self.quoted('`', false, "quoted name")?,
                '$' if self.dialect == Dialect::Postgres && self.dollar_tag().is_some() => {
                    self.dollar()?;
                }
                c if c.is_alphanumeric() || c == '_' => self.word(),
                _ => {
                    self.bump();
                    self.push(c);
                }
            }
        }
        self.finish();
        Ok(self.out)
    }

    /// `--` starts a comment; on MySQL only when followed by a space or the line's end.
    fn line_comment_dash(&self, rest: &str) -> bool {
        self.dialect != Dialect::MySql || rest[2..].chars().next().is_none_or(char::is_whitespace)
    }

    fn block_comment(&mut self, keep: bool) -> Result<(), ScriptError> {
        let line = self.line;
        let Some(end) = self.rest()[2..].find("*/") else {
            return Err(ScriptError::Unterminated {
                line,
                what: "comment",
            });
        };
        for _ in 0..self.rest()[..end + 4].chars().count() {
            let c = self.bump().unwrap_or(' ');
            if keep {
                self.push(c);
            }
        }
        if !keep {
            self.push(' ');
        }
        Ok(())
    }

    /// PostgreSQL `E'…'`: the character before the quote is a lone `E`.
    fn e_string(&self) -> bool {
        if self.dialect != Dialect::Postgres {
            return false;
        }
        let mut before = self.current.chars().rev();
        matches!(before.next(), Some('E' | 'e'))
            && before
                .next()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_'))
    }

    fn quoted(
        &mut self,
        quote: char,
        backslash: bool,
        what: &'static str,
    ) -> Result<(), ScriptError> {
        let line = self.line;
        self.bump();
        self.push(quote);
        loop {
            let Some(c) = self.bump() else {
                return Err(ScriptError::Unterminated { line, what });
            };
            self.push(c);
            if backslash && c == '\\' {
                if let Some(next) = self.bump() {
                    self.push(next);
                }
                continue;
            }
            if c == quote {
                if self.peek() == Some(quote) {
                    self.bump();
                    self.push(quote);
                    continue;
                }
                return Ok(());
            }
        }
    }

    fn dollar_tag(&self) -> Option<&'a str> {
        let prev = self.current.chars().last();
        if prev.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            return None;
        }
        let rest = self.rest();
        let end = rest[1..].find('$')? + 1;
        let tag = &rest[1..end];
        let ok = tag
            .chars()
            .enumerate()
            .all(|(i, c)| c == '_' || c.is_alphabetic() || (i > 0 && c.is_ascii_digit()));
        ok.then(|| &rest[..=end])
    }

    fn dollar(&mut self) -> Result<(), ScriptError> {
        let line = self.line;
        let tag = self.dollar_tag().unwrap_or("$$");
        let body = &self.rest()[tag.len()..];
        let Some(end) = body.find(tag) else {
            return Err(ScriptError::Unterminated {
                line,
                what: "$-quoted body",
            });
        };
        let n = self.rest()[..tag.len() + end + tag.len()].chars().count();
        for _ in 0..n {
            if let Some(c) = self.bump() {
                self.push(c);
            }
        }
        Ok(())
    }

    fn word(&mut self) {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if !(c.is_alphanumeric() || c == '_' || c == '$') {
                break;
            }
            self.bump();
            self.push(c);
        }
        if self.dialect == Dialect::MySql && self.delimiter == ";" {
            let word = self.src[start..self.pos].to_ascii_uppercase();
            self.track(word);
        }
    }

    /// Block depth of a MySQL stored-program body written without `DELIMITER`.
    fn track(&mut self, word: String) {
        if self.words.len() < 8 {
            self.words.push(word.clone());
        }
        if !self.compound() {
            return;
        }
        if self.after_end {
            self.after_end = false;
            if matches!(word.as_str(), "IF" | "LOOP" | "WHILE" | "REPEAT") {
                // `END IF` and friends close blocks that were never counted.
                self.depth += 1;
                return;
            }
            if word == "CASE" {
                return;
            }
        }
        match word.as_str() {
            "BEGIN" | "CASE" => self.depth += 1,
            "END" => {
                self.depth -= 1;
                self.after_end = true;
            }
            _ => {}
        }
    }

    /// A statement that creates a stored program (or MariaDB's `BEGIN NOT ATOMIC`).
    fn compound(&self) -> bool {
        let w = &self.words;
        match w.first().map(String::as_str) {
            Some("CREATE") => w
                .iter()
                .any(|x| matches!(x.as_str(), "PROCEDURE" | "FUNCTION" | "TRIGGER" | "EVENT")),
            Some("BEGIN") => w.get(1).is_some_and(|x| x == "NOT"),
            _ => false,
        }
    }

    fn finish(&mut self) {
        let text = self.current.trim();
        if !text.is_empty() {
            self.out.push(Statement {
                number: self.out.len() + 1,
                line: self.start_line.unwrap_or(self.line),
                text: text.to_owned(),
            });
        }
        self.current.clear();
        self.start_line = None;
        self.words.clear();
        self.depth = 0;
        self.after_end = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(vendor: Vendor, script: &str) -> Vec<(usize, String)> {
        split(vendor, script)
            .unwrap()
            .into_iter()
            .map(|s| (s.line, s.text))
            .collect()
    }

    #[test]
    fn comments_strings_and_lines() {
        let script = "-- head; not a statement\nCREATE TABLE A (X VARCHAR(5) DEFAULT ';');\n\n/* a; b */ INSERT INTO A\n VALUES ('it''s; ok'); # mysql comment;\nSELECT 1";
        assert_eq!(
            texts(Vendor::MySql, script),
            [
                (2, "CREATE TABLE A (X VARCHAR(5) DEFAULT ';')".to_owned()),
                (4, "INSERT INTO A\n VALUES ('it''s; ok')".to_owned()),
                (6, "SELECT 1".to_owned()),
            ]
        );
    }

    #[test]
    fn mysql_procedure_without_delimiter() {
        let script = "DROP PROCEDURE IF EXISTS p;\nCREATE PROCEDURE p() BEGIN IF((SELECT 1) > 0) THEN SET @s = 'x;y'; PREPARE stmt FROM @s; EXECUTE stmt; END IF; CASE WHEN 1 THEN SELECT 1; END CASE; WHILE 0 DO SELECT 2; END WHILE; END;\nCALL p();";
        let got = texts(Vendor::MySql, script);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[1].1.ends_with("END WHILE; END"), "{}", got[1].1);
        assert_eq!(got[2], (3, "CALL p()".to_owned()));
    }

    #[test]
    fn mysql_delimiter_blocks() {
        let script = "DELIMITER //\nCREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END//\nDELIMITER ;\nSELECT 'a\\';b';";
        assert_eq!(
            texts(Vendor::MySql, script),
            [
                (
                    2,
                    "CREATE TRIGGER t BEFORE INSERT ON a FOR EACH ROW BEGIN SET NEW.x = 1; END"
                        .to_owned()
                ),
                (4, "SELECT 'a\\';b'".to_owned()),
            ]
        );
    }

    #[test]
    fn postgres_dollar_bodies_and_do_blocks() {
        let script = "DO $$ BEGIN PERFORM 1; END $$;\nCREATE FUNCTION f() RETURNS int AS $body$ SELECT 1; $body$ LANGUAGE sql;\nSELECT E'\\';', 'a\\';";
        let got = texts(Vendor::Postgres, script);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert_eq!(got[0].1, "DO $$ BEGIN PERFORM 1; END $$");
        assert_eq!(got[2], (3, "SELECT E'\\';', 'a\\'".to_owned()));
    }

    /// Arbitrary text (quotes, comments, dollars, delimiters, multi-byte characters) never
    /// panics, and statements come in order with lines inside the script.
    #[test]
    fn arbitrary_text_splits_without_panicking() {
        const PIECES: [&str; 24] = [
            ";",
            "'",
            "\"",
            "`",
            "$$",
            "$a$",
            "--",
            "-- x\n",
            "#",
            "/*",
            "*/",
            "/*!",
            "\n",
            "DELIMITER //\n",
            "DELIMITER ;\n",
            "//",
            "BEGIN ",
            "END ",
            "CASE ",
            "END IF ",
            "CREATE PROCEDURE p() ",
            "E'\\'",
            "中文😀",
            "SELECT 1",
        ];
        let mut rng = fastrand::Rng::with_seed(15);
        for _ in 0..5000 {
            let text: String = (0..rng.usize(0..40))
                .map(|_| PIECES[rng.usize(0..PIECES.len())])
                .collect();
            let lines = text.lines().count().max(1) + 1;
            for vendor in [Vendor::Postgres, Vendor::MySql, Vendor::Sqlite] {
                if let Ok(statements) = split(vendor, &text) {
                    for (i, st) in statements.iter().enumerate() {
                        assert_eq!(st.number, i + 1);
                        assert!(st.line >= 1 && st.line <= lines, "{text:?}: {st:?}");
                        assert!(!st.text.is_empty());
                    }
                    let ordered = statements.windows(2).all(|w| w[0].line <= w[1].line);
                    assert!(ordered, "{text:?}");
                }
            }
        }
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            split(Vendor::H2, "SELECT 1;"),
            Err(ScriptError::Unsupported { .. })
        ));
        assert_eq!(
            split(Vendor::Postgres, "SELECT 1;\nSELECT 'x"),
            Err(ScriptError::Unterminated {
                line: 2,
                what: "string"
            })
        );
    }
}
