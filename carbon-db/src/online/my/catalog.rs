//! The source database's tables as the binary log needs them: row images carry values by
//! column position only, so names, types, signedness, charsets and the primary key come from
//! `information_schema` (ORDINAL_POSITION). Also: binlog values → driver parameters, and the
//! SQL that applies one row change strictly.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use mysql::binlog::value::BinlogValue;
use mysql::{Conn, Value};

use crate::my::{cell, lit, q, strings};
use crate::{DbError, DbUrl};

/// One column of a source table.
#[derive(Debug, Clone)]
pub(super) struct Col {
    pub(super) name: String,
    /// `information_schema.COLUMNS.DATA_TYPE`, lower case.
    pub(super) data_type: String,
    pub(super) unsigned: bool,
    /// Character columns: their charset and collation.
    pub(super) charset: Option<String>,
    pub(super) collation: Option<String>,
    pub(super) precision: u32,
    pub(super) scale: u32,
    /// Generated (virtual or stored): never written.
    pub(super) generated: bool,
}

/// One source table.
#[derive(Debug, Clone)]
pub(super) struct TableMeta {
    pub(super) name: String,
    pub(super) cols: Vec<Col>,
    /// Positions of the primary key columns, in key order (empty: no primary key).
    pub(super) pk: Vec<usize>,
    pub(super) insert_sql: String,
    pub(super) update_sql: String,
    pub(super) delete_sql: String,
    /// `SELECT *` of one row by primary key (empty without a primary key).
    pub(super) select_sql: String,
}

/// Every base table of a database, by name.
pub(super) fn load(
    c: &mut Conn,
    url: &DbUrl,
    db: &str,
) -> Result<BTreeMap<String, TableMeta>, DbError> {
    let rows = strings(
        c,
        url,
        &format!(
            "SELECT c.TABLE_NAME, c.COLUMN_NAME, LOWER(c.DATA_TYPE), LOWER(c.COLUMN_TYPE), c.CHARACTER_SET_NAME, \
             c.COLLATION_NAME, COALESCE(c.NUMERIC_PRECISION, 0), COALESCE(c.NUMERIC_SCALE, 0), c.EXTRA \
             FROM information_schema.COLUMNS c JOIN information_schema.TABLES t \
             ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME \
             WHERE c.TABLE_SCHEMA = {} AND t.TABLE_TYPE = 'BASE TABLE' ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION",
            lit(db)
        ),
        "reading the columns of the followed tables",
    )?;
    let mut cols: BTreeMap<String, Vec<Col>> = BTreeMap::new();
    for r in &rows {
        let extra = cell(r, 8).to_ascii_uppercase();
        cols.entry(cell(r, 0)).or_default().push(Col {
            name: cell(r, 1),
            data_type: cell(r, 2),
            unsigned: cell(r, 3).contains("unsigned"),
            charset: r.get(4).cloned().flatten(),
            collation: r.get(5).cloned().flatten(),
            precision: cell(r, 6).parse().unwrap_or(0),
            scale: cell(r, 7).parse().unwrap_or(0),
            generated: extra.contains("GENERATED"),
        });
    }
    let keys = strings(
        c,
        url,
        &format!(
            "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
             WHERE TABLE_SCHEMA = {} AND INDEX_NAME = 'PRIMARY' ORDER BY TABLE_NAME, SEQ_IN_INDEX",
            lit(db)
        ),
        "reading the primary keys of the followed tables",
    )?;
    let mut pks: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &keys {
        pks.entry(cell(r, 0)).or_default().push(cell(r, 1));
    }
    Ok(cols
        .into_iter()
        .map(|(name, cols)| {
            let pk = pks
                .get(&name)
                .map(|k| {
                    k.iter()
                        .filter_map(|n| cols.iter().position(|c| &c.name == n))
                        .collect()
                })
                .unwrap_or_default();
            let t = TableMeta::new(name.clone(), cols, pk);
            (name, t)
        })
        .collect())
}

impl TableMeta {
    fn new(name: String, cols: Vec<Col>, pk: Vec<usize>) -> TableMeta {
        let mut t = TableMeta {
            name,
            cols,
            pk,
            insert_sql: String::new(),
            update_sql: String::new(),
            delete_sql: String::new(),
            select_sql: String::new(),
        };
        let written: Vec<usize> = t.written();
        let names: Vec<String> = written.iter().map(|&i| q(&t.cols[i].name)).collect();
        let values: Vec<String> = written.iter().map(|&i| t.cols[i].param(false)).collect();
        t.insert_sql = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            q(&t.name),
            names.join(", "),
            values.join(", ")
        );
        let set: Vec<String> = written
            .iter()
            .map(|&i| format!("{} = {}", q(&t.cols[i].name), t.cols[i].param(false)))
            .collect();
        let filter = t.filter_sql();
        t.update_sql = format!(
            "UPDATE {} SET {} WHERE {filter}",
            q(&t.name),
            set.join(", ")
        );
        t.delete_sql = format!("DELETE FROM {} WHERE {filter}", q(&t.name));
        if !t.pk.is_empty() {
            t.select_sql = format!("SELECT * FROM {} WHERE {filter}", q(&t.name));
        }
        t
    }

    /// Columns written by INSERT / UPDATE SET, by position.
    pub(super) fn written(&self) -> Vec<usize> {
        (0..self.cols.len())
            .filter(|&i| !self.cols[i].generated)
            .collect()
    }

    /// The WHERE clause: by primary key, else every column's before-image (`<=>`), one row.
    fn filter_sql(&self) -> String {
        let mut out = String::new();
        if self.pk.is_empty() {
            out = self.image_filter();
            out.push_str(" LIMIT 1");
        } else {
            for (n, &i) in self.pk.iter().enumerate() {
                let c = &self.cols[i];
                if n > 0 {
                    out.push_str(" AND ");
                }
                let _ = write!(out, "{} = {}", q(&c.name), c.param(true));
            }
        }
        out
    }

    /// Rows equal to a whole image: every written column `<=>` its value, and the same bytes
    /// (a collation may call different bytes equal). Parameters: [`Self::filter_params`].
    fn image_filter(&self) -> String {
        let mut out = String::new();
        for (n, i) in self.matched().into_iter().enumerate() {
            let c = &self.cols[i];
            if n > 0 {
                out.push_str(" AND ");
            }
            let _ = write!(out, "{} <=> {}", q(&c.name), c.param(true));
            if c.charset.is_some() {
                let _ = write!(out, " AND CAST({} AS BINARY) <=> ?", q(&c.name));
            }
        }
        out
    }

    /// How many rows equal each of `n` images, one row `(i, count)` per image: the images'
    /// [`Self::filter_params`] one after the other.
    pub(super) fn count_images_sql(&self, n: usize) -> String {
        let filter = self.image_filter();
        (0..n)
            .map(|i| format!("SELECT {i}, COUNT(*) FROM {} WHERE {filter}", q(&self.name)))
            .collect::<Vec<_>>()
            .join(" UNION ALL ")
    }

    /// Every value of `row`, for the touched-keys file (tables without a primary key).
    pub(super) fn image_of(&self, row: &[Value]) -> Vec<serde_json::Value> {
        row.iter().map(key_json).collect()
    }

    /// Columns compared in the WHERE clause of a table without a primary key.
    fn matched(&self) -> Vec<usize> {
        (0..self.cols.len())
            .filter(|&i| !self.cols[i].generated)
            .collect()
    }

    /// Parameters of the WHERE clause for the before-image `row`.
    pub(super) fn filter_params(&self, row: &[Value]) -> Vec<Value> {
        if self.pk.is_empty() {
            let mut out = Vec::new();
            for i in self.matched() {
                out.push(row[i].clone());
                if self.cols[i].charset.is_some() {
                    out.push(row[i].clone());
                }
            }
            out
        } else {
            self.pk.iter().map(|&i| row[i].clone()).collect()
        }
    }

    /// Parameters of INSERT / UPDATE SET for `row`.
    pub(super) fn written_params(&self, row: &[Value]) -> Vec<Value> {
        self.written().into_iter().map(|i| row[i].clone()).collect()
    }

    /// The key of `row` for messages: `COL=value, …` (the whole row without a primary key).
    pub(super) fn describe_key(&self, row: &[Value]) -> String {
        let idx: Vec<usize> = if self.pk.is_empty() {
            (0..self.cols.len()).collect()
        } else {
            self.pk.clone()
        };
        idx.iter()
            .map(|&i| format!("{}={}", self.cols[i].name, short(&row[i])))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The primary key values of `row`, for the touched-keys file.
    pub(super) fn key_of(&self, row: &[Value]) -> Vec<serde_json::Value> {
        self.pk.iter().map(|&i| key_json(&row[i])).collect()
    }

    /// `COL=value, …` for key values read back from the touched-keys file.
    pub(super) fn describe_key_values(&self, key: &[Value]) -> String {
        self.pk
            .iter()
            .zip(key)
            .map(|(&i, v)| format!("{}={}", self.cols[i].name, short(v)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Converts one binlog row image to driver values, by position.
    pub(super) fn values(
        &self,
        image: &mysql::binlog::row::BinlogRow,
    ) -> Result<Vec<Value>, String> {
        if image.len() != self.cols.len() {
            return Err(format!(
                "table {} has {} columns but the binary log row has {}",
                self.name,
                self.cols.len(),
                image.len()
            ));
        }
        (0..image.len())
            .map(|i| self.cols[i].value(image.as_ref(i)))
            .collect()
    }
}

impl Col {
    /// The placeholder for this column; `compare`: in a WHERE clause (collation of the column).
    fn param(&self, compare: bool) -> String {
        match (&self.charset, &self.collation) {
            (Some(cs), Some(coll)) if compare => format!("CONVERT(? USING {cs}) COLLATE {coll}"),
            (Some(cs), _) => format!("CONVERT(? USING {cs})"),
            _ if self.data_type == "decimal" => {
                format!(
                    "CAST(? AS DECIMAL({}, {}))",
                    self.precision.max(1),
                    self.scale
                )
            }
            _ => "?".to_owned(),
        }
    }

    /// A binlog value as the parameter this column's placeholder takes.
    fn value(&self, v: Option<&BinlogValue<'_>>) -> Result<Value, String> {
        let v = match v {
            None => {
                return Err(format!(
                    "column {} is missing from the row image (binlog_row_image must be FULL)",
                    self.name
                ));
            }
            Some(BinlogValue::Value(v)) => v.clone(),
            Some(other) => {
                Value::try_from(other.clone()).map_err(|e| format!("column {}: {e}", self.name))?
            }
        };
        if v == Value::NULL {
            return Ok(v);
        }
        Ok(match self.data_type.as_str() {
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint"
                if self.unsigned =>
            {
                let bits = match self.data_type.as_str() {
                    "tinyint" => 8,
                    "smallint" => 16,
                    "mediumint" => 24,
                    "bigint" => 64,
                    _ => 32,
                };
                match v {
                    Value::Int(x) => Value::UInt(if bits == 64 {
                        x as u64
                    } else {
                        (x as u64) & ((1u64 << bits) - 1)
                    }),
                    other => other,
                }
            }
            "timestamp" => {
                let text = match &v {
                    Value::Int(x) => x.to_string(),
                    Value::UInt(x) => x.to_string(),
                    Value::Bytes(b) => String::from_utf8_lossy(b).into_owned(),
                    // Already a date (older servers): as is.
                    _ => return Ok(v),
                };
                Value::Bytes(
                    epoch_to_utc(&text)
                        .ok_or_else(|| {
                            format!("column {}: TIMESTAMP {text:?} is not an epoch", self.name)
                        })?
                        .into_bytes(),
                )
            }
            "bit" => match v {
                Value::Bytes(b) => {
                    Value::UInt(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
                }
                other => other,
            },
            "set" => match v {
                Value::Bytes(b) => Value::UInt(
                    b.iter()
                        .rev()
                        .fold(0u64, |acc, &x| (acc << 8) | u64::from(x)),
                ),
                other => other,
            },
            "year" => match &v {
                Value::Bytes(b) if b.as_slice() == b"1900" => Value::Int(0),
                _ => v,
            },
            _ => v,
        })
    }
}

/// `secs[.micros]` since the epoch → `YYYY-MM-DD HH:MM:SS[.ffffff]` in UTC; 0 → the zero
/// TIMESTAMP.
pub(super) fn epoch_to_utc(text: &str) -> Option<String> {
    let (secs, frac) = match text.split_once('.') {
        Some((s, f)) => (s, Some(f)),
        None => (text, None),
    };
    let secs: i64 = secs.parse().ok()?;
    if secs == 0 && frac.is_none_or(|f| f.bytes().all(|b| b == b'0')) {
        return Some("0000-00-00 00:00:00".to_owned());
    }
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    let mut out = format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    Some(out)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A key value in the touched-keys file: null, a number, `x<hex>` (bytes), `f<bits>` /
/// `d<bits>` (FLOAT / DOUBLE, exact) or `s<text>`.
fn key_json(v: &Value) -> serde_json::Value {
    match v {
        Value::NULL => serde_json::Value::Null,
        Value::Bytes(b) => serde_json::Value::String(format!("x{}", hex::encode(b))),
        Value::Int(i) => serde_json::json!(i),
        Value::UInt(u) => serde_json::json!(u),
        Value::Float(f) => serde_json::Value::String(format!("f{}", f.to_bits())),
        Value::Double(d) => serde_json::Value::String(format!("d{}", d.to_bits())),
        other => serde_json::Value::String(format!("s{}", other.as_sql(true).trim_matches('\''))),
    }
}

/// The parameter a touched-keys value stands for.
pub(super) fn key_value(v: &serde_json::Value) -> Option<Value> {
    Some(match v {
        serde_json::Value::Null => Value::NULL,
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::UInt(n.as_u64()?),
        },
        serde_json::Value::String(s) => match s.split_at_checked(1)? {
            ("x", h) => Value::Bytes(hex::decode(h).ok()?),
            ("f", b) => Value::Float(f32::from_bits(b.parse().ok()?)),
            ("d", b) => Value::Double(f64::from_bits(b.parse().ok()?)),
            ("s", t) => Value::Bytes(t.as_bytes().to_vec()),
            _ => return None,
        },
        _ => return None,
    })
}

/// A value for an error message: short, never a whole blob.
fn short(v: &Value) -> String {
    match v {
        Value::NULL => "NULL".to_owned(),
        Value::Bytes(b) => {
            let s = String::from_utf8_lossy(b);
            if s.chars().count() > 64 {
                format!(
                    "'{}…' ({} bytes)",
                    s.chars().take(64).collect::<String>(),
                    b.len()
                )
            } else {
                format!("'{s}'")
            }
        }
        other => other.as_sql(true),
    }
}

#[cfg(test)]
mod tests {
    use super::epoch_to_utc;

    #[test]
    fn epochs_are_utc_datetimes() {
        let cases = [
            ("0", "0000-00-00 00:00:00"),
            ("1", "1970-01-01 00:00:01"),
            ("951782400", "2000-02-29 00:00:00"),
            ("1798761599.999999", "2026-12-31 23:59:59.999999"),
            ("2147483647", "2038-01-19 03:14:07"),
        ];
        for (epoch, want) in cases {
            assert_eq!(epoch_to_utc(epoch).as_deref(), Some(want), "{epoch}");
        }
        assert_eq!(epoch_to_utc("x"), None);
    }
}
