//! Staging's catalog against a fresh install's, every difference classified:
//!
//! * *cosmetic*: a name only (an index, key or constraint with the same columns);
//! * *compatible*: staging is wider or looser than fresh (a longer column, a wider integer),
//!   or a column default differs (a default changes no stored row; `align` sets it);
//! * *risky*: staging is narrower, nullability differs, a foreign key's actions differ, a
//!   type or auto-increment differs — each says what it means for the new product;
//! * *missing* / *extra*: a table, column, key, index or sequence that only fresh / only
//!   staging has.
//!
//! Where a safe statement makes staging match (rename an index, add a missing index, widen a
//! column, set a default) the difference carries it: `align` runs those and nothing else.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::catalog::{Catalog, Column, ForeignKey, Index, Key, Table};
use crate::Vendor;

/// How much a difference matters, most serious first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    Missing,
    Risky,
    Extra,
    Compatible,
    Cosmetic,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Missing => "missing",
            Class::Risky => "risky",
            Class::Extra => "extra",
            Class::Compatible => "compatible",
            Class::Cosmetic => "cosmetic",
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One difference between staging and the fresh schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Difference {
    pub class: Class,
    /// Upper-case table name (empty for a sequence).
    pub table: String,
    /// What differs: `table`, `column VALUE`, `index REG_LOG_IND_BY_REG_LOGTIME`, ….
    pub object: String,
    /// Staging against fresh, and what it means.
    pub detail: String,
    /// The statement `align` would run on staging, when one is safe.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub align: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = if self.table.is_empty() {
            self.object.clone()
        } else {
            format!("{} {}", self.table, self.object)
        };
        write!(f, "{:<10} {at}: {}", self.class.name(), self.detail)
    }
}

/// Every difference, most serious first.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchemaDiff {
    pub differences: Vec<Difference>,
}

impl SchemaDiff {
    pub fn count(&self, class: Class) -> usize {
        self.differences.iter().filter(|d| d.class == class).count()
    }

    /// `2 cosmetic, 1 risky` (or `identical`).
    pub fn summary(&self) -> String {
        let parts: Vec<String> = [
            Class::Missing,
            Class::Risky,
            Class::Extra,
            Class::Compatible,
            Class::Cosmetic,
        ]
        .into_iter()
        .filter(|c| self.count(*c) > 0)
        .map(|c| format!("{} {c}", self.count(c)))
        .collect();
        if parts.is_empty() {
            "identical".into()
        } else {
            parts.join(", ")
        }
    }

    /// The `align` statements, in order.
    pub fn align_statements(&self) -> Vec<&str> {
        self.differences
            .iter()
            .filter_map(|d| d.align.as_deref())
            .collect()
    }
}

struct Differ {
    vendor: Vendor,
    out: Vec<Difference>,
}

/// Compares `staging` with `fresh` (both read from the same vendor).
pub fn diff(vendor: Vendor, staging: &Catalog, fresh: &Catalog) -> SchemaDiff {
    let mut d = Differ {
        vendor,
        out: Vec::new(),
    };
    for (key, f) in &fresh.tables {
        match staging.tables.get(key) {
            None => d.add(
                Class::Missing,
                key,
                "table",
                "only the fresh install has it".into(),
                None,
            ),
            Some(s) => d.table(key, s, f),
        }
    }
    for key in staging
        .tables
        .keys()
        .filter(|k| !fresh.tables.contains_key(*k))
    {
        d.add(
            Class::Extra,
            key,
            "table",
            "only staging has it".into(),
            None,
        );
    }
    for seq in fresh
        .sequences
        .iter()
        .filter(|s| !staging.sequences.contains(s))
    {
        d.add(
            Class::Missing,
            "",
            &format!("sequence {seq}"),
            "only the fresh install has it".into(),
            None,
        );
    }
    for seq in staging
        .sequences
        .iter()
        .filter(|s| !fresh.sequences.contains(s))
    {
        d.add(
            Class::Extra,
            "",
            &format!("sequence {seq}"),
            "only staging has it".into(),
            None,
        );
    }
    d.out
        .sort_by(|a, b| (a.class, &a.table, &a.object).cmp(&(b.class, &b.table, &b.object)));
    SchemaDiff { differences: d.out }
}

fn cols(c: &[String]) -> String {
    format!("({})", c.join(", "))
}

/// Integer types by width (MySQL and PostgreSQL spellings).
fn int_rank(t: &str) -> Option<u8> {
    Some(match t.trim_end_matches(" unsigned") {
        "tinyint" => 1,
        "smallint" => 2,
        "mediumint" => 3,
        "int" | "integer" => 4,
        "bigint" => 5,
        _ => return None,
    })
}

fn is_text(t: &str) -> bool {
    matches!(
        t,
        "char"
            | "varchar"
            | "character"
            | "character varying"
            | "text"
            | "tinytext"
            | "mediumtext"
            | "longtext"
    )
}

impl Differ {
    fn add(
        &mut self,
        class: Class,
        table: &str,
        object: &str,
        detail: String,
        align: Option<String>,
    ) {
        self.out.push(Difference {
            class,
            table: table.to_owned(),
            object: object.to_owned(),
            detail,
            align,
        });
    }

    fn q(&self, name: &str) -> String {
        match self.vendor {
            Vendor::MySql => format!("`{}`", name.replace('`', "``")),
            _ => format!("\"{}\"", name.replace('"', "\"\"")),
        }
    }

    fn table(&mut self, key: &str, s: &Table, f: &Table) {
        for (ck, fc) in &f.columns {
            match s.columns.get(ck) {
                None => self.add(
                    Class::Missing,
                    key,
                    &format!("column {ck}"),
                    format!("only the fresh install has it ({})", fc.full_type),
                    None,
                ),
                Some(sc) => self.column(key, s, ck, sc, fc),
            }
        }
        for (ck, sc) in s
            .columns
            .iter()
            .filter(|(k, _)| !f.columns.contains_key(*k))
        {
            let note = if !sc.nullable && sc.default.is_none() && sc.extra.is_empty() {
                ": NOT NULL without a default, so the new product's inserts will fail"
            } else {
                ""
            };
            self.add(
                Class::Extra,
                key,
                &format!("column {ck}"),
                format!("only staging has it{note}"),
                None,
            );
        }
        self.primary_key(key, s.primary_key.as_ref(), f.primary_key.as_ref());
        self.uniques(key, &s.uniques, &f.uniques);
        self.foreign_keys(key, &s.foreign_keys, &f.foreign_keys);
        self.indexes(key, s, &s.indexes, &f.indexes);
    }

    fn column(&mut self, key: &str, t: &Table, ck: &str, s: &Column, f: &Column) {
        let object = format!("column {ck}");
        let (tq, cq) = (self.q(&t.name), self.q(&s.name));
        let widen = match self.vendor {
            Vendor::MySql => {
                let mut sql = format!("ALTER TABLE {tq} MODIFY COLUMN {cq} {}", f.full_type);
                if !s.nullable {
                    sql.push_str(" NOT NULL");
                }
                if let Some(d) = &s.default {
                    sql.push_str(&format!(" DEFAULT {d}"));
                }
                let extra = s.extra.replace("default_generated", "");
                if !extra.trim().is_empty() {
                    sql.push_str(&format!(" {}", extra.trim()));
                }
                sql
            }
            _ => format!("ALTER TABLE {tq} ALTER COLUMN {cq} TYPE {}", f.full_type),
        };
        let types = format!("staging {}, fresh {}", s.full_type, f.full_type);
        if s.data_type != f.data_type {
            match (int_rank(&s.data_type), int_rank(&f.data_type)) {
                (Some(a), Some(b)) if a > b => self.add(Class::Compatible, key, &object, format!("{types}: staging is wider"), None),
                (Some(_), Some(_)) => self.add(
                    Class::Risky,
                    key,
                    &object,
                    format!("{types}: staging is narrower, values the new product writes may not fit"),
                    Some(widen.clone()),
                ),
                _ if is_text(&s.data_type) && is_text(&f.data_type) && s.length.is_none() => {
                    self.add(Class::Compatible, key, &object, format!("{types}: staging is unbounded text"), None)
                }
                _ => self.add(
                    Class::Risky,
                    key,
                    &object,
                    format!("{types}: the type differs, the new product may read or write it differently"),
                    None,
                ),
            }
        } else if s.length != f.length || s.precision != f.precision || s.scale != f.scale {
            let wider = s.length >= f.length && s.precision >= f.precision && s.scale >= f.scale;
            if wider {
                self.add(
                    Class::Compatible,
                    key,
                    &object,
                    format!("{types}: staging is wider"),
                    None,
                );
            } else {
                let consequence = match (s.length, f.length) {
                    (Some(sl), Some(_)) => format!(
                        "values longer than {sl} characters that the new product accepts will be refused"
                    ),
                    _ => "values the new product writes may not fit".to_owned(),
                };
                self.add(
                    Class::Risky,
                    key,
                    &object,
                    format!("{types}: staging is narrower, {consequence}"),
                    Some(widen),
                );
            }
        }
        if s.nullable != f.nullable {
            let detail = if s.nullable {
                "staging allows NULL where the fresh install has NOT NULL: rows may hold NULLs the new product does not expect"
            } else {
                "staging has NOT NULL where the fresh install allows NULL: inserts that leave it empty will be refused"
            };
            self.add(Class::Risky, key, &object, detail.into(), None);
        }
        if s.default != f.default {
            let show = |d: &Option<String>| d.clone().unwrap_or_else(|| "none".into());
            let align = match &f.default {
                Some(d) => format!("ALTER TABLE {tq} ALTER COLUMN {cq} SET DEFAULT {d}"),
                None => format!("ALTER TABLE {tq} ALTER COLUMN {cq} DROP DEFAULT"),
            };
            self.add(
                Class::Compatible,
                key,
                &format!("{object} default"),
                format!(
                    "staging {}, fresh {}: only inserts that omit the column see it; no stored row changes",
                    show(&s.default),
                    show(&f.default)
                ),
                Some(align),
            );
        }
        if s.extra != f.extra {
            self.add(
                Class::Risky,
                key,
                &format!("{object} extra"),
                format!(
                    "staging {:?}, fresh {:?}: generated values differ",
                    s.extra, f.extra
                ),
                None,
            );
        }
    }

    fn primary_key(&mut self, key: &str, s: Option<&Key>, f: Option<&Key>) {
        match (s, f) {
            (None, None) => {}
            (None, Some(f)) => self.add(
                Class::Missing,
                key,
                "primary key",
                format!("fresh {}", cols(&f.columns)),
                None,
            ),
            (Some(s), None) => self.add(
                Class::Extra,
                key,
                "primary key",
                format!("staging {}", cols(&s.columns)),
                None,
            ),
            (Some(s), Some(f)) if s.columns != f.columns => self.add(
                Class::Risky,
                key,
                "primary key",
                format!(
                    "staging {}, fresh {}: rows unique on one may collide on the other",
                    cols(&s.columns),
                    cols(&f.columns)
                ),
                None,
            ),
            (Some(s), Some(f)) if !s.name.eq_ignore_ascii_case(&f.name) => self.add(
                Class::Cosmetic,
                key,
                "primary key",
                format!("named {} on staging, {} fresh", s.name, f.name),
                None,
            ),
            _ => {}
        }
    }

    fn uniques(&mut self, key: &str, s: &[Key], f: &[Key]) {
        let mut rest: Vec<&Key> = s.iter().collect();
        for fk in f {
            match rest.iter().position(|k| k.columns == fk.columns) {
                Some(i) => {
                    let sk = rest.remove(i);
                    if !sk.name.eq_ignore_ascii_case(&fk.name) {
                        self.add(
                            Class::Cosmetic,
                            key,
                            &format!("unique {}", cols(&fk.columns)),
                            format!("named {} on staging, {} fresh", sk.name, fk.name),
                            None,
                        );
                    }
                }
                None => self.add(
                    Class::Missing,
                    key,
                    &format!("unique {}", cols(&fk.columns)),
                    format!("fresh {}: staging accepts duplicates", fk.name),
                    None,
                ),
            }
        }
        for sk in rest {
            self.add(
                Class::Extra,
                key,
                &format!("unique {}", cols(&sk.columns)),
                format!(
                    "staging {}: refuses duplicates the new product may write",
                    sk.name
                ),
                None,
            );
        }
    }

    fn foreign_keys(&mut self, key: &str, s: &[ForeignKey], f: &[ForeignKey]) {
        let same = |a: &ForeignKey, b: &ForeignKey| {
            a.columns == b.columns && a.ref_table == b.ref_table && a.ref_columns == b.ref_columns
        };
        let mut rest: Vec<&ForeignKey> = s.iter().collect();
        for fk in f {
            let object = format!(
                "foreign key {} -> {}{}",
                cols(&fk.columns),
                fk.ref_table,
                cols(&fk.ref_columns)
            );
            let Some(i) = rest.iter().position(|k| same(k, fk)) else {
                self.add(
                    Class::Missing,
                    key,
                    &object,
                    format!("fresh {}", fk.name),
                    None,
                );
                continue;
            };
            let sk = rest.remove(i);
            if sk.on_delete != fk.on_delete || sk.on_update != fk.on_update {
                self.add(
                    Class::Risky,
                    key,
                    &object,
                    format!(
                        "staging ON DELETE {} ON UPDATE {}, fresh ON DELETE {} ON UPDATE {}: deleting or updating a {} row behaves differently",
                        sk.on_delete, sk.on_update, fk.on_delete, fk.on_update, fk.ref_table
                    ),
                    None,
                );
            } else if !sk.name.eq_ignore_ascii_case(&fk.name) {
                self.add(
                    Class::Cosmetic,
                    key,
                    &object,
                    format!("named {} on staging, {} fresh", sk.name, fk.name),
                    None,
                );
            }
        }
        for sk in rest {
            let object = format!(
                "foreign key {} -> {}{}",
                cols(&sk.columns),
                sk.ref_table,
                cols(&sk.ref_columns)
            );
            self.add(
                Class::Extra,
                key,
                &object,
                format!("staging {}", sk.name),
                None,
            );
        }
    }

    fn indexes(&mut self, key: &str, t: &Table, s: &[Index], f: &[Index]) {
        let mut rest: Vec<&Index> = s.iter().collect();
        let mut unmatched: Vec<&Index> = Vec::new();
        // The same name and shape first, then the same shape under another name.
        for fi in f {
            match rest.iter().position(|i| {
                i.name.eq_ignore_ascii_case(&fi.name)
                    && i.columns == fi.columns
                    && i.unique == fi.unique
            }) {
                Some(i) => {
                    rest.remove(i);
                }
                None => unmatched.push(fi),
            }
        }
        let shape = |i: &Index| {
            format!(
                "{}{}",
                if i.unique { "unique " } else { "" },
                cols(&i.columns)
            )
        };
        for fi in unmatched {
            let object = format!("index {}", fi.name.to_uppercase());
            if let Some(i) = rest
                .iter()
                .position(|i| i.columns == fi.columns && i.unique == fi.unique)
            {
                let si = rest.remove(i);
                let align = match self.vendor {
                    Vendor::MySql => format!(
                        "ALTER TABLE {} RENAME INDEX {} TO {}",
                        self.q(&t.name),
                        self.q(&si.name),
                        self.q(&fi.name)
                    ),
                    _ => format!(
                        "ALTER INDEX {} RENAME TO {}",
                        self.q(&si.name),
                        self.q(&fi.name)
                    ),
                };
                self.add(
                    Class::Cosmetic,
                    key,
                    &object,
                    format!(
                        "named {} on staging, same {}",
                        si.name.to_uppercase(),
                        shape(fi)
                    ),
                    Some(align),
                );
                continue;
            }
            if let Some(i) = rest
                .iter()
                .position(|i| i.name.eq_ignore_ascii_case(&fi.name))
            {
                let si = rest.remove(i);
                self.add(
                    Class::Risky,
                    key,
                    &object,
                    format!("staging {}, fresh {}", shape(si), shape(fi)),
                    None,
                );
                continue;
            }
            let create = format!(
                "CREATE {}INDEX {} ON {} ({})",
                if fi.unique { "UNIQUE " } else { "" },
                self.q(&fi.name),
                self.q(&t.name),
                fi.columns.join(", ")
            );
            self.add(
                Class::Missing,
                key,
                &object,
                format!("fresh {}: queries on it may be slow", shape(fi)),
                Some(create),
            );
        }
        for si in rest {
            self.add(
                Class::Extra,
                key,
                &format!("index {}", si.name.to_uppercase()),
                format!("staging {}", shape(si)),
                None,
            );
        }
    }
}
