//! What a copy did and what verification proved, as data (serialisable for `--json`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
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

    /// Adds another part of the same table (order-independent, so parts may come in any order).
    pub fn merge(&mut self, other: RowDigest) {
        self.rows += other.rows;
        self.sum = self.sum.wrapping_add(other.sum);
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    /// The table, sequence or object concerned.
    pub object: String,
    /// `missing`, `extra`, `definition`, `rows`, `content`, `counter`.
    pub kind: String,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableCheck {
    pub table: String,
    pub rows: u64,
    pub digest: String,
    pub ok: bool,
}

/// The proof (or not) that the target equals the source.
#[derive(Debug, Clone, Serialize, Deserialize)]
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

#[derive(Debug, Clone, Serialize, Deserialize)]
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

/// The time of one phase of a copy, wall clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTime {
    /// `template copy`, `schema` (snapshot and pre-data), `data`, `post-data`, `sequences`
    /// (`counters` on MySQL), `verify`.
    pub phase: String,
    pub ms: u64,
}

/// One table's data: its pieces' summed copy time (they may run in parallel).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableTime {
    pub table: String,
    pub rows: u64,
    pub bytes: u64,
    pub ms: u64,
}

/// One kind of post-data statement: how many, their summed time and the wall time of the
/// stage that ran them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindTime {
    /// `indexes`, `primary keys`, `unique constraints`, `foreign keys`, `other`.
    pub kind: String,
    pub count: usize,
    pub ms: u64,
}

/// Where a copy's time went.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Phases {
    /// Each phase in the order it ran, wall clock.
    pub steps: Vec<PhaseTime>,
    /// The ten tables whose data took longest.
    pub tables: Vec<TableTime>,
    /// Post-data statements by kind (PostgreSQL), summed statement time.
    pub post_data: Vec<KindTime>,
}

impl Phases {
    /// Adds `ms` to the phase `name` (a new entry at the end when it has none yet).
    pub fn add(&mut self, name: &str, ms: u64) {
        match self.steps.iter_mut().find(|p| p.phase == name) {
            Some(p) => p.ms += ms,
            None => self.steps.push(PhaseTime {
                phase: name.to_owned(),
                ms,
            }),
        }
    }

    /// The milliseconds recorded for `name`.
    pub fn ms(&self, name: &str) -> Option<u64> {
        self.steps.iter().find(|p| p.phase == name).map(|p| p.ms)
    }

    /// One line: `schema 0.41s, data 3.20s, post-data 1.10s (…), sequences 0.02s, verify 1.50s`.
    pub fn summary(&self) -> String {
        self.steps
            .iter()
            .map(|p| {
                let kinds = if p.phase == "post-data" && !self.post_data.is_empty() {
                    format!(
                        " ({})",
                        self.post_data
                            .iter()
                            .map(|k| format!("{} {}× {:.2}s", k.kind, k.count, k.ms as f64 / 1e3))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                } else {
                    String::new()
                };
                format!("{} {:.2}s{kinds}", p.phase, p.ms as f64 / 1e3)
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// How a copy was done, what it moved, and the verification of the result.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    /// Where the time went: phases, the slowest tables, post-data per kind.
    #[serde(default)]
    pub phases: Phases,
    pub verify: Option<VerifyReport>,
    /// With [`crate::CopyOptions::online`]: where the copy's snapshot stands in the change
    /// stream (PostgreSQL `pg_current_snapshot()` text, MariaDB `file:position`).
    pub snapshot_point: Option<String>,
    /// MariaDB/MySQL: milliseconds from requesting FLUSH TABLES WITH READ LOCK (writes on the
    /// server wait from then on) to UNLOCK TABLES, taken to align the readers' snapshots (and,
    /// online, read the binary log position).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub snapshot_lock_ms: Option<u64>,
    /// Per-table digests of the rows as streamed from the source snapshot, when every table
    /// was streamed by this run: verification then re-reads only the target.
    #[serde(skip)]
    pub(crate) stream_digests: Option<BTreeMap<String, RowDigest>>,
}

impl CopyReport {
    /// A report of nothing moved yet: each driver fills in what it did.
    pub(crate) fn new(
        vendor: Vendor,
        from: &crate::DbUrl,
        to: &crate::DbUrl,
        method: &str,
    ) -> Self {
        CopyReport {
            vendor,
            source: from.to_string(),
            target: to.to_string(),
            method: method.to_owned(),
            tables: 0,
            rows: 0,
            bytes: 0,
            counters: 0,
            resumed: false,
            snapshot_consistent: true,
            warnings: Vec::new(),
            copy_ms: 0,
            phases: Phases::default(),
            verify: None,
            snapshot_point: None,
            snapshot_lock_ms: None,
            stream_digests: None,
        }
    }

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

/// Digests the rows of a PostgreSQL COPY stream as they pass, without buffering them:
/// text rows end at `\n`; binary tuples are parsed from their length fields. Each row's
/// bytes (one tuple, or one text line) are hashed with SHA-256 — or, in counting mode,
/// only counted (a prefix both sides share adds the same to both digests).
#[derive(Debug, Clone)]
pub(crate) struct CopyDigest {
    pub digest: RowDigest,
    binary: bool,
    hashing: bool,
    /// Bytes of a text line seen without its `\n` yet.
    mid_line: bool,
    hasher: Sha256,
    phase: Phase,
    small: Vec<u8>,
    need: usize,
    fields_left: i32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Header,
    HeaderExt,
    Count,
    FieldLen,
    FieldData,
    Done,
}

impl CopyDigest {
    pub fn new(binary: bool) -> CopyDigest {
        CopyDigest {
            digest: RowDigest::default(),
            binary,
            hashing: true,
            mid_line: false,
            hasher: Sha256::new(),
            phase: if binary { Phase::Header } else { Phase::Count },
            small: Vec::with_capacity(19),
            need: 0,
            fields_left: 0,
        }
    }

    /// Counts rows without hashing them until `start_hashing`.
    pub fn counting(binary: bool) -> CopyDigest {
        CopyDigest {
            hashing: false,
            ..CopyDigest::new(binary)
        }
    }

    /// Hashes every row from here on; only valid between rows (see `at_row_boundary`).
    pub fn start_hashing(&mut self) {
        self.hashing = true;
    }

    /// Whether the bytes fed so far end exactly at the end of a row (or of the header).
    pub fn at_row_boundary(&self) -> bool {
        if self.binary {
            matches!(self.phase, Phase::Count | Phase::Done) && self.small.is_empty()
        } else {
            !self.mid_line
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        if self.hashing {
            self.hasher.update(bytes);
        }
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        if self.binary {
            self.feed_binary(bytes);
        } else {
            self.feed_text(bytes);
        }
    }

    fn finish_row(&mut self) {
        if self.hashing {
            let hash = self.hasher.finalize_reset();
            self.digest.add_hash(hash.as_slice());
        } else {
            self.digest.rows += 1;
        }
    }

    fn feed_text(&mut self, mut bytes: &[u8]) {
        while let Some(i) = bytes.iter().position(|&b| b == b'\n') {
            self.update(&bytes[..i]);
            self.finish_row();
            self.mid_line = false;
            bytes = &bytes[i + 1..];
        }
        self.mid_line |= !bytes.is_empty();
        self.update(bytes);
    }

    /// Takes bytes into `small` until it holds `want`; returns whether it does.
    fn fill_small(&mut self, bytes: &mut &[u8], want: usize) -> bool {
        let take = (want - self.small.len()).min(bytes.len());
        self.small.extend_from_slice(&bytes[..take]);
        *bytes = &bytes[take..];
        self.small.len() == want
    }

    fn field_done(&mut self) {
        self.fields_left -= 1;
        if self.fields_left <= 0 {
            self.finish_row();
            self.phase = Phase::Count;
        } else {
            self.phase = Phase::FieldLen;
        }
    }

    fn feed_binary(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.phase {
                Phase::Header => {
                    // 11-byte signature, 4-byte flags, 4-byte header extension length.
                    if self.fill_small(&mut bytes, 19) {
                        let ext = u32::from_be_bytes([
                            self.small[15],
                            self.small[16],
                            self.small[17],
                            self.small[18],
                        ]) as usize;
                        self.small.clear();
                        self.need = ext;
                        self.phase = if ext > 0 {
                            Phase::HeaderExt
                        } else {
                            Phase::Count
                        };
                    }
                }
                Phase::HeaderExt => {
                    let take = self.need.min(bytes.len());
                    bytes = &bytes[take..];
                    self.need -= take;
                    if self.need == 0 {
                        self.phase = Phase::Count;
                    }
                }
                Phase::Count => {
                    if self.fill_small(&mut bytes, 2) {
                        let n = i16::from_be_bytes([self.small[0], self.small[1]]);
                        if n < 0 {
                            self.phase = Phase::Done;
                        } else {
                            if self.hashing {
                                self.hasher.update(&self.small);
                            }
                            self.fields_left = i32::from(n);
                            if n == 0 {
                                self.finish_row();
                            } else {
                                self.phase = Phase::FieldLen;
                            }
                        }
                        self.small.clear();
                    }
                }
                Phase::FieldLen => {
                    if self.fill_small(&mut bytes, 4) {
                        let len = i32::from_be_bytes([
                            self.small[0],
                            self.small[1],
                            self.small[2],
                            self.small[3],
                        ]);
                        if self.hashing {
                            self.hasher.update(&self.small);
                        }
                        self.small.clear();
                        if len > 0 {
                            self.need = len as usize;
                            self.phase = Phase::FieldData;
                        } else {
                            self.field_done();
                        }
                    }
                }
                Phase::FieldData => {
                    let take = self.need.min(bytes.len());
                    self.update(&bytes[..take]);
                    bytes = &bytes[take..];
                    self.need -= take;
                    if self.need == 0 {
                        self.field_done();
                    }
                }
                Phase::Done => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CopyDigest, RowDigest};

    fn binary_stream(rows: &[&[Option<&[u8]>]]) -> (Vec<u8>, RowDigest) {
        let mut out = b"PGCOPY\n\xff\r\n\0".to_vec();
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&4u32.to_be_bytes());
        out.extend_from_slice(b"ext!");
        let mut expect = RowDigest::default();
        for row in rows {
            let mut tuple = (row.len() as i16).to_be_bytes().to_vec();
            for field in *row {
                match field {
                    None => tuple.extend_from_slice(&(-1i32).to_be_bytes()),
                    Some(v) => {
                        tuple.extend_from_slice(&(v.len() as i32).to_be_bytes());
                        tuple.extend_from_slice(v);
                    }
                }
            }
            expect.add_row(&tuple);
            out.extend_from_slice(&tuple);
        }
        out.extend_from_slice(&(-1i16).to_be_bytes());
        (out, expect)
    }

    #[test]
    fn binary_copy_rows_are_split_whatever_the_chunking() {
        let big = vec![7u8; 70_000];
        let second: [Option<&[u8]>; 3] = [Some(b"2"), Some(&big), Some(b"\n\t\\")];
        let rows: Vec<&[Option<&[u8]>]> = vec![
            &[Some(b"1"), None, Some(b"")],
            &second,
            &[],
            &[Some(b"3"), None, None],
        ];
        let (stream, expect) = binary_stream(&rows);
        for chunk in [1, 2, 3, 7, 4096, stream.len()] {
            let mut d = CopyDigest::new(true);
            for part in stream.chunks(chunk) {
                d.feed(part);
            }
            assert_eq!(d.digest, expect, "chunk size {chunk}");
        }
        assert_eq!(expect.rows, 4);
    }

    #[test]
    fn a_counted_prefix_then_hashed_rows_sum_only_the_hashed_ones() {
        let rows: Vec<&[Option<&[u8]>]> = vec![&[Some(b"1")], &[Some(b"2")], &[Some(b"3")]];
        let (stream, _) = binary_stream(&rows);
        let (_, first) = binary_stream(&rows[..1]);
        let (_, all) = binary_stream(&rows);
        // Header (19 + 4 extension bytes) and the first row (2 + 4 + 1) counted, not hashed.
        let cut = 23 + 7;
        let mut d = CopyDigest::counting(true);
        d.feed(&stream[..cut - 1]);
        assert!(!d.at_row_boundary());
        d.feed(&stream[cut - 1..cut]);
        assert!(d.at_row_boundary());
        d.start_hashing();
        d.feed(&stream[cut..]);
        assert_eq!(d.digest.rows, 3);
        assert_eq!(d.digest.sum, all.sum.wrapping_sub(first.sum));
    }

    #[test]
    fn text_copy_rows_end_at_newlines() {
        let mut d = CopyDigest::new(false);
        for part in [&b"1\ta\\nb\n2"[..], b"\t\\N\n"] {
            d.feed(part);
        }
        let mut expect = RowDigest::default();
        expect.add_row(b"1\ta\\nb");
        expect.add_row(b"2\t\\N");
        assert_eq!(d.digest, expect);
    }
}
