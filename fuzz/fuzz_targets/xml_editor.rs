//! The XML path editor: any bytes either parse or are refused; on a parsed document any path
//! can be selected and edited without a panic; an empty plan changes no byte, and a `set`
//! that succeeds reads back the value it set.
#![no_main]

use carbon_config::{Edit, XPath, XmlDoc, plan};
use libfuzzer_sys::fuzz_target;

// Input: `PATH \0 VALUE \0 DOCUMENT` (missing parts are empty).
fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let value = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let document = parts.next().unwrap_or_default().to_vec();
    let Ok(doc) = XmlDoc::parse("fuzz.xml", document.clone()) else {
        return;
    };
    let noop = plan(&doc, &[]).expect("an empty plan");
    assert_eq!(noop.new_bytes(), document.as_slice(), "an empty plan changes no byte");
    let Ok(xpath) = XPath::parse(&path) else {
        return;
    };
    let _ = doc.select(&xpath);
    let _ = doc.get(&xpath);
    let _ = plan(&doc, &[Edit::insert_child(path.as_str(), "n", value.as_str())]);
    let _ = plan(&doc, &[Edit::remove(path.as_str())]);
    if let Ok(set) = plan(&doc, &[Edit::set(path.as_str(), value.as_str())]) {
        let _ = set.unified_diff();
        let after = XmlDoc::parse("fuzz.xml", set.new_bytes().to_vec())
            .expect("an edited document parses");
        if let Ok(read) = after.get(&xpath) {
            assert_eq!(read, value, "set then get");
        }
    }
});
