//! What a copy did and what verification proved, as data (serialisable for `--json`).

use std::collections::BTreeMap;

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::Vendor;

/// Order-independent content digest of a table: the wrapping sum of a 128-bit hash
/// (truncated SHA-256) of each row's text form, plus the row count. Duplicates add up,
/// unlike XOR, so a doubled row changes the digest.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RowDigest {
    pub rows: u64,
    pub sum: u128,
}

impl RowDigest {
    pub fn add_row(&mut self, row: &[u8]) {
        self.add_hash(Sha256::digest(row).as_slice());
    }

    pub(crate) fn add_hash(&mut self, hash: &[u8]) {
        let mut first = [0u8; 16];
        first.copy_from_slice(&hash[..16]);
        self.sum = self.sum.wrapping_add(u128::from_le_bytes(first));
        self.rows += 1;
    }

    pub fn hex(&self) -> String {
        format!("{:032x}", self.sum)
    }
}

/// Everything verification compares, read from one side.
#[derive(Debug, Clone, Default)]
pub struct DbState {
    /// Object key (e.g. `column public.um_user.um_id`) → normalised definition.
    pub inventory: BTreeMap<String, String>,
    /// Table → content digest and exact row count.
    pub tables: BTreeMap<String, RowDigest>,
    /// Sequence / auto-increment counter → the next value it will hand out.
    pub counters: BTreeMap<String, i128>,
}

/// One difference found by verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mismatch {
    /// The table, sequence or object concerned.
    pub object: String,
    /// `missing`, `extra`, `definition`, `rows`, `content`, `counter`.
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableCheck {
    pub table: String,
    pub rows: u64,
    pub digest: String,
    pub ok: bool,
}

/// The proof (or not) that the target equals the source.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub vendor: Vendor,
    pub objects: usize,
    pub tables: Vec<TableCheck>,
    pub rows: u64,
    pub counters: usize,
    /// For H2: the files compared by SHA-256.
    pub files: Vec<FileCheck>,
    pub mismatches: Vec<Mismatch>,
    pub elapsed_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct FileCheck {
    pub file: String,
    pub bytes: u64,
    pub sha256: String,
    pub ok: bool,
}

impl VerifyReport {
    pub fn is_ok(&self) -> bool {
        self.mismatches.is_empty()
    }

    /// One line naming the first differing object, for error messages.
    pub fn summary(&self) -> String {
        match self.mismatches.first() {
            None => format!(
                "verified: {} objects, {} tables, {} rows, {} counters equal",
                self.objects,
                self.tables.len(),
                self.rows,
                self.counters
            ),
            Some(m) => {
                let more = self.mismatches.len() - 1;
                let tail = if more > 0 {
                    format!(" (and {more} more differences)")
                } else {
                    String::new()
                };
                format!(
                    "verification failed: {} {}: {}{tail}",
                    m.object, m.kind, m.detail
                )
            }
        }
    }

    pub(crate) fn compare(vendor: Vendor, source: &DbState, target: &DbState) -> VerifyReport {
        let mut mismatches = Vec::new();
        let mut push = |object: &str, kind: &str, detail: String| {
            mismatches.push(Mismatch {
                object: object.to_owned(),
                kind: kind.to_owned(),
                detail,
            });
        };
        for (key, def) in &source.inventory {
            match target.inventory.get(key) {
                None => push(key, "missing", "absent from the target".to_owned()),
                Some(t) if t != def => {
                    push(key, "definition", format!("source {def:?} vs target {t:?}"))
                }
                Some(_) => {}
            }
        }
        for key in target.inventory.keys() {
            if !source.inventory.contains_key(key) {
                push(key, "extra", "present in the target only".to_owned());
            }
        }
        let mut tables = Vec::new();
        let mut rows = 0;
        for (table, s) in &source.tables {
            rows += s.rows;
            let ok = match target.tables.get(table) {
                None => {
                    push(table, "missing", "table absent from the target".to_owned());
                    false
                }
                Some(t) if t.rows != s.rows => {
                    push(
                        table,
                        "rows",
                        format!("source has {} rows, target {}", s.rows, t.rows),
                    );
                    false
                }
                Some(t) if t.sum != s.sum => {
                    push(
                        table,
                        "content",
                        format!("{} rows each, but content digests differ", s.rows),
                    );
                    false
                }
                Some(_) => true,
            };
            tables.push(TableCheck {
                table: table.clone(),
                rows: s.rows,
                digest: s.hex(),
                ok,
            });
        }
        for table in target.tables.keys() {
            if !source.tables.contains_key(table) {
                push(
                    table,
                    "extra",
                    "table present in the target only".to_owned(),
                );
            }
        }
        for (counter, s) in &source.counters {
            match target.counters.get(counter) {
                None => push(
                    counter,
                    "missing",
                    "counter absent from the target".to_owned(),
                ),
                Some(t) if t < s => push(
                    counter,
                    "counter",
                    format!("target would hand out {t} next, behind the source's {s}"),
                ),
                Some(_) => {}
            }
        }
        VerifyReport {
            vendor,
            objects: source.inventory.len(),
            tables,
            rows,
            counters: source.counters.len(),
            files: Vec::new(),
            mismatches,
            elapsed_ms: 0,
        }
    }
}

/// How a copy was done, what it moved, and the verification of the result.
#[derive(Debug, Clone, Serialize)]
pub struct CopyReport {
    pub vendor: Vendor,
    pub source: String,
    pub target: String,
    /// `template`, `logical`, `backup` or `files`.
    pub method: String,
    pub tables: usize,
    pub rows: u64,
    pub bytes: u64,
    pub counters: usize,
    /// True when this run continued an interrupted one from its journal.
    pub resumed: bool,
    /// False when the rows were not all read from one snapshot (resumed runs, MySQL without
    /// FLUSH TABLES privilege): then only verification proves the copy.
    pub snapshot_consistent: bool,
    pub warnings: Vec<String>,
    pub copy_ms: u64,
    pub verify: Option<VerifyReport>,
    /// Per-table digests of the rows as streamed from the source snapshot, when every table
    /// was streamed by this run: verification then re-reads only the target.
    #[serde(skip)]
    pub(crate) stream_digests: Option<BTreeMap<String, RowDigest>>,
}

impl CopyReport {
    /// Complete and verified (or verification explicitly skipped and the copy finished).
    pub fn is_ok(&self) -> bool {
        self.verify.as_ref().is_none_or(VerifyReport::is_ok)
    }
}

/// Objects and sizes of one database (`db inspect`).
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub vendor: Vendor,
    pub url: String,
    pub identity: String,
    pub tables: Vec<TableInfo>,
    pub objects: BTreeMap<String, usize>,
    pub counters: usize,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
}
