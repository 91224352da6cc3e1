//! Helpers shared by the CLI's tests: running the binary, hashing trees, and fingerprinting
//! databases with the server's own functions (independent of carbon-db's verifier).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use carbon_db::Vendor;
use sha2::{Digest, Sha256};

pub fn carbon_upgrade(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_carbon-upgrade"))
        .args(args)
        .output()
        .unwrap()
}

pub fn code(output: &Output) -> i32 {
    output.status.code().unwrap_or(-1)
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Every file of a tree with its sha256: equal maps mean an unchanged tree.
pub fn tree_digest(root: &Path) -> BTreeMap<PathBuf, String> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let hash = hex::encode(Sha256::digest(std::fs::read(e.path()).unwrap()));
            (e.path().strip_prefix(root).unwrap().to_path_buf(), hash)
        })
        .collect()
}

/// Copies a tree (test set-up only), keeping files `dst` already has.
pub fn copy_tree(src: &Path, dst: &Path) {
    for entry in walkdir::WalkDir::new(src) {
        let entry = entry.unwrap();
        let target = dst.join(entry.path().strip_prefix(src).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
        } else if !target.exists() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// Per table of the database (from its catalog): the row count and a digest of every row's
/// text, sorted, computed by the server.
pub fn fingerprints(vendor: Vendor, url: &str) -> Vec<(String, String)> {
    match vendor {
        Vendor::Postgres => {
            let mut client = carbon_db::testkit::pg_connect(url).unwrap();
            let tables: Vec<String> = client
                .query(
                    "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
                    &[],
                )
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect();
            tables
                .into_iter()
                .map(|t| {
                    let sql = format!(
                        "SELECT count(*)::text || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM \"{t}\" x"
                    );
                    let print: String = client.query_one(&sql, &[]).unwrap().get(0);
                    (t, print)
                })
                .collect()
        }
        _ => {
            use mysql::prelude::Queryable;
            let mut conn = carbon_db::testkit::mysql_connect(url).unwrap();
            conn.query_drop("SET SESSION group_concat_max_len = 1073741824")
                .unwrap();
            let columns: Vec<(String, String)> = conn
                .query(
                    "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS \
                     WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME, ORDINAL_POSITION",
                )
                .unwrap();
            let mut by_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (table, column) in columns {
                by_table
                    .entry(table)
                    .or_default()
                    .push(format!("COALESCE(HEX(`{column}`), 'NULL')"));
            }
            by_table
                .into_iter()
                .map(|(t, cols)| {
                    let row = format!("CONCAT_WS(',', {})", cols.join(", "));
                    let sql = format!(
                        "SELECT CONCAT(COUNT(*), ':', COALESCE(MD5(GROUP_CONCAT({row} ORDER BY {row} SEPARATOR '|')), '')) FROM `{t}`"
                    );
                    let print: String = conn.query_first(sql).unwrap().unwrap();
                    (t, print)
                })
                .collect()
        }
    }
}

/// Drops a database the run creates by default (`<source>_staging`) when the test ends.
pub struct DropOnExit {
    pub vendor: Vendor,
    pub name: String,
    /// On the TLS-only test server.
    pub tls: bool,
}

impl DropOnExit {
    /// The server this database lives on.
    pub fn server(&self) -> String {
        if self.tls {
            carbon_db::testkit::tls_server_url(self.vendor).unwrap()
        } else {
            carbon_db::testkit::server_url(self.vendor).unwrap()
        }
    }
}

impl Drop for DropOnExit {
    fn drop(&mut self) {
        let server = self.server();
        match self.vendor {
            Vendor::Postgres => {
                let mut client = carbon_db::testkit::pg_connect(&server).unwrap();
                let _ = client.batch_execute(&format!(
                    "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                    self.name
                ));
            }
            _ => {
                use mysql::prelude::Queryable;
                let mut conn = carbon_db::testkit::mysql_connect(&server).unwrap();
                let _ = conn.query_drop(format!("DROP DATABASE IF EXISTS `{}`", self.name));
            }
        }
    }
}

/// `jdbc:<scheme>://host:port/db` for a native test URL, without credentials.
pub fn jdbc_url(scheme: &str, native: &str) -> String {
    let authority = native.split_once("://").unwrap().1;
    let host_port_db = authority
        .rsplit_once('@')
        .map_or(authority, |(_, rest)| rest);
    format!("jdbc:{scheme}://{host_port_db}")
}

/// The command exited with `expected` and its stderr names `needle`.
pub fn assert_exit_naming(output: &Output, expected: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(code(output), expected, "{err}");
    assert!(
        err.contains(needle),
        "stderr does not name {needle:?}: {err}"
    );
}
