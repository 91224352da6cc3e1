//! Helpers shared by carbon-config's tests.

use std::path::{Path, PathBuf};

use carbon_config::home::ProductHome;

/// Every file under `root`, sorted.
pub fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// Every file under `root` (relative path) with its bytes: equal values mean equal trees.
pub fn tree_bytes(root: &Path) -> Vec<(String, Vec<u8>)> {
    files(root)
        .into_iter()
        .map(|path| {
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            (rel, std::fs::read(&path).unwrap())
        })
        .collect()
}

/// Text of up to `max` characters drawn from `specials` (each as likely as any printable ASCII
/// character as a whole) and printable ASCII.
pub fn xml_text(
    specials: &'static [char],
    max: usize,
) -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    proptest::collection::vec(
        prop_oneof![
            specials.len() as u32 => proptest::sample::select(specials),
            1 => proptest::char::range(' ', '~'),
        ],
        0..max,
    )
    .prop_map(|chars| chars.into_iter().collect())
}

/// The names of the datasources the realm and the registry use.
pub fn used_datasources(home: &ProductHome) -> Vec<String> {
    home.realm_and_registry_datasources()
        .iter()
        .map(|d| d.name.clone())
        .collect()
}
