//! The runbook's journal reader (carbon-upgrade-cli's library): any file either reads or is
//! refused with an error naming the file; a torn last line is dropped, never an error.
#![no_main]

use carbon_upgrade_cli::runbook::journal;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("carbon-fuzz-journal-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let path = dir.join(journal::FILE_NAME);
    std::fs::write(&path, data).expect("writing the input");
    match journal::read(&path) {
        Ok(events) => {
            // Written back whole, the same events read again.
            let mut text = Vec::new();
            for event in &events {
                text.extend(serde_json::to_vec(event).expect("encoding"));
                text.push(b'\n');
            }
            std::fs::write(&path, &text).expect("writing back");
            assert_eq!(journal::read(&path).expect("its own lines read"), events);
        }
        Err(err) => {
            let message = format!("{err:#}");
            assert!(message.contains("journal.jsonl"), "{message}");
        }
    }
});
