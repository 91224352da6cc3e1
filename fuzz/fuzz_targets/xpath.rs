//! The path language: any text either parses or is refused, and a parsed path's accessors
//! and its own text parse back to the same path.
#![no_main]

use carbon_config::XPath;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(path) = XPath::parse(text) {
        let _ = (path.attribute(), path.last_name(), path.element_path());
        let again = XPath::parse(path.as_str()).expect("a parsed path's text parses");
        assert_eq!(again.as_str(), path.as_str());
    }
});
