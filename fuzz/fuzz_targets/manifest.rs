//! carbon-fs's JSON-lines manifest reader: any file either reads or is refused with an error
//! naming the file (one line); a manifest that reads writes back to JSON lines that read the same.
#![no_main]

use carbon_fs::Manifest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("carbon-fuzz-manifest-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join("m.manifest.jsonl");
    std::fs::write(&path, data).expect("writing the input");
    match Manifest::read(&path) {
        Ok(manifest) => {
            let _ = manifest.to_sha256sums();
            let _ = manifest.files().count();
            std::fs::write(&path, manifest.to_jsonl()).expect("writing back");
            let again = Manifest::read(&path).expect("its own JSON lines read");
            assert_eq!(again.to_jsonl(), manifest.to_jsonl());
        }
        Err(err) => {
            let message = err.to_string();
            assert!(message.contains("m.manifest.jsonl"), "{message}");
            assert!(!message.contains('\n'), "one line: {message}");
        }
    }
});
