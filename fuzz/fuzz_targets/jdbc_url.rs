//! carbon-config's JDBC URL parser: parse ∘ format = identity, accessors never panic, and a
//! password given as a URL parameter never shows in the redacted form.
#![no_main]

use carbon_config::JdbcUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = JdbcUrl::parse(text) else {
        return;
    };
    assert_eq!(url.to_string(), text, "formats back exactly");
    let again = JdbcUrl::parse(&url.to_string()).expect("its own text parses");
    assert_eq!(again, url);
    let _ = (url.vendor(), url.host(), url.port(), url.database(), url.params());
    let _ = url.with_param("characterEncoding", "UTF-8");
    let _ = url.with_database("staging_db");
    let redacted = url.redacted();
    if let Some(password) = url.param("password")
        && password.len() >= 4
        && !password.contains('*')
        && text.matches(password).count() == 1
    {
        assert!(!redacted.contains(password), "{redacted} shows the password");
    }
});
