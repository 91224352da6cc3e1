//! `test_decoding` output, parsed exactly, and the copy's snapshot as a visibility test.
//!
//! A line is `BEGIN <xid>`, `COMMIT <xid> (at <timestamp>)`, or
//! `table <schema>.<table>: INSERT|UPDATE|DELETE: <tuple>` / `…: TRUNCATE: <flags>`, where a
//! tuple is `name[type]:value …`: identifiers as `quote_identifier` prints them, the type as
//! `format_type_be` prints it (`character varying`, `timestamp without time zone`, `text[]`),
//! the value `null`, `unchanged-toast-datum`, a quoted literal with `''` doubling (backslashes
//! as they are), `B'0101'`, or an unquoted number or boolean. UPDATE has `old-key: … new-tuple:
//! …` when the key changed (or with REPLICA IDENTITY FULL); DELETE of a table without a
//! replica identity is `(no-tuple-data)`.

use std::fmt::Write as _;

/// One column of a decoded tuple.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Column {
    /// As printed: a valid SQL identifier (quoted when it must be).
    pub(super) name: String,
    /// As printed by `format_type_be`: a valid SQL type name.
    pub(super) ty: String,
    pub(super) value: Value,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Value {
    Null,
    /// An unchanged TOASTed value: not in the change, leave the column as it is.
    Unchanged,
    /// A SQL string literal (`'…'` or `B'…'`), to be cast to the column's type.
    Literal(String),
}

impl Column {
    /// `literal::type`, or `NULL`.
    pub(super) fn sql(&self) -> String {
        match &self.value {
            Value::Null => format!("NULL::{}", self.ty),
            Value::Literal(l) => format!("{l}::{}", self.ty),
            Value::Unchanged => "DEFAULT".to_owned(),
        }
    }
}

/// What a row change line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Change {
    Insert {
        table: String,
        new: Vec<Column>,
    },
    /// `old` is the old key (or full old row), absent when the key did not change.
    Update {
        table: String,
        old: Option<Vec<Column>>,
        new: Vec<Column>,
    },
    /// `old` is `None` for `(no-tuple-data)`.
    Delete {
        table: String,
        old: Option<Vec<Column>>,
    },
    Truncate {
        tables: Vec<String>,
    },
}

impl Change {
    pub(super) fn tables(&self) -> Vec<&str> {
        match self {
            Change::Insert { table, .. }
            | Change::Update { table, .. }
            | Change::Delete { table, .. } => vec![table.as_str()],
            Change::Truncate { tables } => tables.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Line {
    Begin {
        xid: u32,
    },
    Commit {
        xid: u32,
        at: Option<String>,
    },
    Change(Change),
    /// `message: …` (pg_logical_emit_message): no effect on tables.
    Message,
}

/// Why a line could not be parsed (the line is quoted by the caller).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ParseError(pub(super) String);

fn err<T>(what: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError(what.into()))
}

pub(super) fn parse_line(line: &str) -> Result<Line, ParseError> {
    if let Some(rest) = line.strip_prefix("BEGIN ") {
        return Ok(Line::Begin {
            xid: parse_xid(rest)?,
        });
    }
    if let Some(rest) = line.strip_prefix("COMMIT ") {
        let (xid, at) = match rest.split_once(' ') {
            Some((xid, tail)) => {
                let at = tail
                    .strip_prefix("(at ")
                    .and_then(|t| t.strip_suffix(')'))
                    .map(str::to_owned);
                (xid, at)
            }
            None => (rest, None),
        };
        return Ok(Line::Commit {
            xid: parse_xid(xid)?,
            at,
        });
    }
    if line.starts_with("message:") {
        return Ok(Line::Message);
    }
    let Some(rest) = line.strip_prefix("table ") else {
        return err("not a BEGIN, COMMIT or table line");
    };
    // Table names, then ": ACTION:".
    let mut tables = Vec::new();
    let mut rest = rest;
    loop {
        let (name, tail) = qualified_name(rest)?;
        tables.push(name);
        if let Some(t) = tail.strip_prefix(", ") {
            rest = t;
            continue;
        }
        let Some(t) = tail.strip_prefix(": ") else {
            return err("no ': ' after the table name");
        };
        rest = t;
        break;
    }
    let Some((action, tail)) = rest.split_once(':') else {
        return err("no action");
    };
    let tail = tail.strip_prefix(' ').unwrap_or(tail);
    let one_table = || -> Result<String, ParseError> {
        match tables.as_slice() {
            [t] => Ok(t.clone()),
            _ => err("several tables outside TRUNCATE"),
        }
    };
    let change = match action {
        "INSERT" => Change::Insert {
            table: one_table()?,
            new: parse_tuple(tail)?.0,
        },
        "UPDATE" => {
            if let Some(old) = tail.strip_prefix("old-key: ") {
                let (old, after) = parse_tuple(old)?;
                let Some(new) = after.strip_prefix("new-tuple: ") else {
                    return err("old-key without new-tuple");
                };
                Change::Update {
                    table: one_table()?,
                    old: Some(old),
                    new: parse_tuple(new)?.0,
                }
            } else if tail == "(no-tuple-data)" {
                return err("UPDATE without a new tuple");
            } else {
                Change::Update {
                    table: one_table()?,
                    old: None,
                    new: parse_tuple(tail)?.0,
                }
            }
        }
        "DELETE" => Change::Delete {
            table: one_table()?,
            old: if tail == "(no-tuple-data)" {
                None
            } else {
                Some(parse_tuple(tail)?.0)
            },
        },
        "TRUNCATE" => Change::Truncate { tables },
        other => return err(format!("unknown action {other:?}")),
    };
    Ok(Line::Change(change))
}

fn parse_xid(s: &str) -> Result<u32, ParseError> {
    s.trim()
        .parse()
        .map_err(|_| ParseError(format!("bad transaction id {s:?}")))
}

/// One identifier as `quote_identifier` prints it; returns it (as printed) and the rest.
fn ident(s: &str) -> Result<(&str, &str), ParseError> {
    if let Some(body) = s.strip_prefix('"') {
        let bytes = body.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'"' {
                if bytes.get(i + 1) == Some(&b'"') {
                    i += 2;
                    continue;
                }
                return Ok((&s[..i + 2], &body[i + 1..]));
            }
            i += 1;
        }
        return err("unterminated quoted identifier");
    }
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == '$'))
        .unwrap_or(s.len());
    if end == 0 {
        return err("empty identifier");
    }
    Ok((&s[..end], &s[end..]))
}

fn qualified_name(s: &str) -> Result<(String, &str), ParseError> {
    let (schema, rest) = ident(s)?;
    let Some(rest) = rest.strip_prefix('.') else {
        return err("table name without a schema");
    };
    let (table, rest) = ident(rest)?;
    Ok((format!("{schema}.{table}"), rest))
}

/// A tuple up to its end or to ` new-tuple: ` (left in the rest, without the space).
fn parse_tuple(mut s: &str) -> Result<(Vec<Column>, &str), ParseError> {
    let mut out = Vec::new();
    loop {
        s = s.trim_start_matches(' ');
        if s.is_empty() || s.starts_with("new-tuple: ") {
            return Ok((out, s));
        }
        let (name, rest) = ident(s)?;
        let Some(rest) = rest.strip_prefix('[') else {
            return err(format!("no type after column {name}"));
        };
        let Some(end) = rest.find("]:") else {
            return err(format!("unterminated type of column {name}"));
        };
        let ty = &rest[..end];
        let rest = &rest[end + 2..];
        let (value, rest) =
            parse_value(rest).map_err(|ParseError(e)| ParseError(format!("column {name}: {e}")))?;
        out.push(Column {
            name: name.to_owned(),
            ty: ty.to_owned(),
            value,
        });
        s = rest;
    }
}

fn parse_value(s: &str) -> Result<(Value, &str), ParseError> {
    if s.starts_with('\'') || s.starts_with("B'") {
        let start = usize::from(s.starts_with('B'));
        let bytes = s.as_bytes();
        let mut i = start + 1;
        while i < bytes.len() {
            if bytes[i] == b'\'' {
                if bytes.get(i + 1) == Some(&b'\'') {
                    i += 2;
                    continue;
                }
                return Ok((Value::Literal(s[..=i].to_owned()), &s[i + 1..]));
            }
            i += 1;
        }
        return err("unterminated literal");
    }
    let end = s.find(' ').unwrap_or(s.len());
    let token = &s[..end];
    let value = match token {
        "" => return err("empty value"),
        "null" => Value::Null,
        "unchanged-toast-datum" => Value::Unchanged,
        // Numbers (NaN and Infinity too) and booleans are printed bare: quote them, the
        // cast to the column's type reads them back.
        t if t.contains('\'') => return err(format!("bad bare value {t:?}")),
        t => Value::Literal(format!("'{t}'")),
    };
    Ok((value, &s[end..]))
}

/// `pg_current_snapshot()`: `xmin:xmax:xip,…` with 64-bit (epoch-qualified) ids.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Snapshot {
    xmin: u64,
    xmax: u64,
    xip: Vec<u64>,
}

impl Snapshot {
    pub(super) fn parse(s: &str) -> Option<Snapshot> {
        let mut parts = s.trim().splitn(3, ':');
        let xmin = parts.next()?.parse().ok()?;
        let xmax = parts.next()?.parse().ok()?;
        let xip = match parts.next()? {
            "" => Vec::new(),
            list => list
                .split(',')
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?,
        };
        Some(Snapshot { xmin, xmax, xip })
    }

    /// The 64-bit id of a 32-bit one decoded near this snapshot: the one nearest `xmax`
    /// (ids within 2^31 of each other are unambiguous, which the server guarantees).
    fn full(&self, xid: u32) -> u64 {
        let base = (self.xmax & !0xFFFF_FFFF) | u64::from(xid);
        if base > self.xmax.saturating_add(1 << 31) && base >= 1 << 32 {
            base - (1 << 32)
        } else if base.saturating_add(1 << 31) < self.xmax {
            base + (1 << 32)
        } else {
            base
        }
    }

    /// Whether the transaction's effects are in the snapshot (then the copy has them).
    pub(super) fn sees(&self, xid: u32) -> bool {
        let full = self.full(xid);
        full < self.xmin || (full < self.xmax && !self.xip.contains(&full))
    }
}

/// `2026-12-02 00:33:38.952664+00` (ISO DateStyle, UTC) → milliseconds since the epoch.
pub(super) fn commit_ms(at: &str) -> Option<u64> {
    let (date, rest) = at.split_once(' ')?;
    let mut d = date.split('-').map(str::parse::<i64>);
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time_end = rest.find(['+', '-']).unwrap_or(rest.len());
    let (time, zone) = rest.split_at(time_end);
    let mut t = time.split(':');
    let (h, mi) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let secs: f64 = t.next()?.parse().ok()?;
    let offset_h: i64 = if zone.is_empty() {
        0
    } else {
        zone.split(':').next()?.parse().ok()?
    };
    // Days from civil (Howard Hinnant).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = (days * 86_400 + (h - offset_h) * 3600 + mi * 60) * 1000 + (secs * 1000.0) as i64;
    u64::try_from(ms).ok()
}

/// `col = lit::type AND …` for messages and the touched-key file.
pub(super) fn describe_key(cols: &[&Column]) -> String {
    let mut out = String::new();
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        let _ = write!(
            out,
            "{}={}",
            c.name,
            match &c.value {
                Value::Literal(l) => l.as_str(),
                Value::Null => "NULL",
                Value::Unchanged => "(unchanged)",
            }
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(name: &str, ty: &str, v: &str) -> Column {
        Column {
            name: name.into(),
            ty: ty.into(),
            value: Value::Literal(v.into()),
        }
    }

    #[test]
    fn lines_of_every_shape_parse() {
        assert_eq!(parse_line("BEGIN 728"), Ok(Line::Begin { xid: 728 }));
        assert_eq!(
            parse_line("COMMIT 728 (at 2026-12-02 00:33:38.952664+00)"),
            Ok(Line::Commit {
                xid: 728,
                at: Some("2026-12-02 00:33:38.952664+00".into())
            })
        );
        let insert = "table public.with_pk: INSERT: id[integer]:1 name[character varying]:'it''s a \\ test' data[bytea]:'\\xdeadbeef' ts[timestamp without time zone]:'2024-01-02 03:04:05' n[numeric]:null arr[text[]]:'{a,\"b c\"}' f[double precision]:NaN b[bit varying]:B'0101'";
        let Ok(Line::Change(Change::Insert { table, new })) = parse_line(insert) else {
            panic!("{:?}", parse_line(insert))
        };
        assert_eq!(table, "public.with_pk");
        assert_eq!(new[0], lit("id", "integer", "'1'"));
        assert_eq!(
            new[1],
            lit("name", "character varying", "'it''s a \\ test'")
        );
        assert_eq!(new[2], lit("data", "bytea", "'\\xdeadbeef'"));
        assert_eq!(new[3].ty, "timestamp without time zone");
        assert_eq!(new[4].value, Value::Null);
        assert_eq!(new[5], lit("arr", "text[]", "'{a,\"b c\"}'"));
        assert_eq!(new[6], lit("f", "double precision", "'NaN'"));
        assert_eq!(new[7], lit("b", "bit varying", "B'0101'"));
        assert_eq!(new.len(), 8);

        let update = "table public.with_pk: UPDATE: old-key: id[integer]:2 new-tuple: id[integer]:10 name[character varying]:'a b: c' data[bytea]:null";
        let Ok(Line::Change(Change::Update { old, new, .. })) = parse_line(update) else {
            panic!()
        };
        assert_eq!(old.unwrap(), vec![lit("id", "integer", "'2'")]);
        assert_eq!(new.len(), 3);

        let toast = "table \"My Schema\".\"Big \"\"T\"\"\": UPDATE: id[integer]:1 payload[text]:unchanged-toast-datum note[text]:'b'";
        let Ok(Line::Change(Change::Update { table, old, new })) = parse_line(toast) else {
            panic!()
        };
        assert_eq!(table, "\"My Schema\".\"Big \"\"T\"\"\"");
        assert!(old.is_none());
        assert_eq!(new[1].value, Value::Unchanged);

        assert_eq!(
            parse_line("table public.no_pk: DELETE: (no-tuple-data)"),
            Ok(Line::Change(Change::Delete {
                table: "public.no_pk".into(),
                old: None
            }))
        );
        assert_eq!(
            parse_line("table public.a, public.b: TRUNCATE: restart_seqs cascade"),
            Ok(Line::Change(Change::Truncate {
                tables: vec!["public.a".into(), "public.b".into()]
            }))
        );
        assert!(parse_line("table public.x: INSERT: a[text]:'open").is_err());
        assert!(parse_line("something else").is_err());
    }

    #[test]
    fn snapshot_visibility_with_epochs() {
        let s = Snapshot::parse("100:105:101,103").unwrap();
        assert!(s.sees(99) && s.sees(100) && s.sees(102) && s.sees(104));
        assert!(!s.sees(101) && !s.sees(103) && !s.sees(105) && !s.sees(4000));
        // Epoch 1: full ids 2^32 + 10 .. ; a 32-bit id just below the wrap is the old epoch.
        let e = Snapshot::parse("4294967306:4294967310:").unwrap();
        assert!(e.sees(9) && e.sees(4_294_967_290));
        assert!(!e.sees(10 + 4) && !e.sees(20));
        assert!(Snapshot::parse("garbage").is_none());
    }

    #[test]
    fn commit_times() {
        assert_eq!(commit_ms("1970-01-01 00:00:01.5+00"), Some(1500));
        assert_eq!(
            commit_ms("2026-12-02 00:33:38.952664+00"),
            Some(1_796_171_618_952)
        );
        assert_eq!(commit_ms("2026-12-02 02:33:38+02"), Some(1_796_171_618_000));
    }
}
