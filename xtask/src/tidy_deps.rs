//! Tidy check: carbon-db owns every database session (ARCHITECTURE.md). No other workspace
//! crate may depend on a database driver, so none can open a session that forgets a URL's TLS
//! or a source's read-only mode.

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    /// The drivers only carbon-db may depend on.
    const DRIVERS: [&str; 3] = ["postgres", "mysql", "rusqlite"];

    /// The owner, and xtask: it drives the test servers themselves (creating fixtures, faults,
    /// integration runs against real servers), which is tooling, not a product session.
    const ALLOWED: [&str; 2] = ["carbon-db", "xtask"];

    /// `(crate, driver)` for each driver a manifest lists under `[dependencies]` (or a
    /// `[target.….dependencies]`), renamed ones included; dev-dependencies are free.
    fn drivers_in(manifest: &str) -> Result<Vec<(String, String)>, toml::de::Error> {
        let doc: toml::Table = manifest.parse()?;
        let name = doc
            .get("package")
            .and_then(|p| p.get("name"))
            .and_then(toml::Value::as_str)
            .unwrap_or("(unnamed)")
            .to_owned();
        let mut tables: Vec<&toml::Table> = doc
            .get("dependencies")
            .and_then(toml::Value::as_table)
            .into_iter()
            .collect();
        if let Some(targets) = doc.get("target").and_then(toml::Value::as_table) {
            tables.extend(
                targets
                    .values()
                    .filter_map(|t| t.get("dependencies"))
                    .filter_map(toml::Value::as_table),
            );
        }
        let mut found = Vec::new();
        for (key, spec) in tables.into_iter().flatten() {
            let package = spec
                .get("package")
                .and_then(toml::Value::as_str)
                .unwrap_or(key);
            if DRIVERS.contains(&package) {
                found.push((name.clone(), package.to_owned()));
            }
        }
        Ok(found)
    }

    /// Drivers listed by crates that may not list them.
    fn violations(manifest: &str) -> Vec<(String, String)> {
        drivers_in(manifest)
            .unwrap_or_else(|e| panic!("a workspace Cargo.toml does not parse: {e}"))
            .into_iter()
            .filter(|(krate, _)| !ALLOWED.contains(&krate.as_str()))
            .collect()
    }

    fn workspace_root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("xtask lives in the workspace root")
            .to_path_buf()
    }

    /// Every member's manifest, from the root's `[workspace] members`.
    fn member_manifests(root: &Path) -> Vec<(PathBuf, String)> {
        let text = std::fs::read_to_string(root.join("Cargo.toml")).expect("root Cargo.toml");
        let doc: toml::Table = text.parse().expect("root Cargo.toml parses");
        let members = doc["workspace"]["members"]
            .as_array()
            .expect("[workspace] members is a list");
        members
            .iter()
            .map(|m| {
                let member = m.as_str().expect("members are strings");
                assert!(
                    !member.contains('*'),
                    "glob member {member}: expand it here"
                );
                let path = root.join(member).join("Cargo.toml");
                let text = std::fs::read_to_string(&path)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                (path, text)
            })
            .collect()
    }

    #[test]
    fn only_carbon_db_depends_on_database_drivers() {
        let manifests = member_manifests(&workspace_root());
        let names: Vec<String> = manifests
            .iter()
            .filter_map(|(_, text)| text.parse::<toml::Table>().ok())
            .filter_map(|doc| Some(doc.get("package")?.get("name")?.as_str()?.to_owned()))
            .collect();
        // The walk really saw the workspace (a broken walk must not pass vacuously).
        for expected in ["carbon-db", "carbon-verify", "carbon-upgrade-cli", "xtask"] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} in {names:?}"
            );
        }
        let bad: Vec<_> = manifests
            .iter()
            .flat_map(|(path, text)| violations(text).into_iter().map(move |v| (path, v)))
            .map(|(path, (krate, driver))| format!("{krate} ({}): {driver}", path.display()))
            .collect();
        assert!(
            bad.is_empty(),
            "database sessions go through carbon_db::Session; these crates list drivers under [dependencies]: {bad:?}"
        );
    }

    #[test]
    fn the_check_catches_planted_drivers() {
        let cases: [(&str, &[&str]); 6] = [
            (
                "[package]\nname = \"carbon-verify\"\n[dependencies]\npostgres.workspace = true\n",
                &["postgres"],
            ),
            (
                "[package]\nname = \"x\"\n[dependencies]\nmysql = \"28\"\nserde = \"1\"\n",
                &["mysql"],
            ),
            (
                "[package]\nname = \"x\"\n[dependencies]\nlite = { package = \"rusqlite\", version = \"0.43\" }\n",
                &["rusqlite"],
            ),
            (
                "[package]\nname = \"x\"\n[target.'cfg(unix)'.dependencies]\npostgres = \"0.19\"\n",
                &["postgres"],
            ),
            // Tests may drive a server of their own; carbon-db and xtask may.
            (
                "[package]\nname = \"x\"\n[dev-dependencies]\npostgres = \"0.19\"\n",
                &[],
            ),
            (
                "[package]\nname = \"carbon-db\"\n[dependencies]\npostgres = \"0.19\"\n",
                &[],
            ),
        ];
        for (manifest, expected) in cases {
            let found: Vec<String> = violations(manifest).into_iter().map(|(_, d)| d).collect();
            assert_eq!(found, expected, "{manifest}");
        }
    }
}
