//! Address parsing as ingest uses it: arbitrary text in the address headers of
//! a message read by the engine's parse, and the domain's address helpers.

use mailbridge_domain::ingest::Address;

/// Puts `data` into every address header (and the Message-ID headers) of a
/// message and parses it; panics when an address breaks an invariant.
pub fn address(data: &[u8]) {
    let mut raw = Vec::with_capacity(data.len() * 7 + 64);
    for header in [
        "From",
        "To",
        "Cc",
        "Bcc",
        "Message-ID",
        "In-Reply-To",
        "References",
    ] {
        raw.extend_from_slice(header.as_bytes());
        raw.extend_from_slice(b": ");
        raw.extend_from_slice(data);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"Subject: address\r\n\r\nbody\r\n");
    let parsed = mailbridge_engine::parse::parse(&raw, Vec::new());
    for a in parsed.facts.all_addresses() {
        assert!(a.0.contains('@'), "an address without @: {:?}", a.0);
        assert_eq!(a.0, a.0.trim());
        assert_eq!(Address::new(&a.0), *a, "Address::new is idempotent");
        let _ = mailbridge_domain::validation::is_email_address(&a.0);
    }
    let text = String::from_utf8_lossy(data);
    let once = Address::new(&text);
    assert_eq!(Address::new(&once.0), once, "Address::new is idempotent");
    let id = mailbridge_domain::activity::normalize_message_id(&text);
    assert!(!id.starts_with('<') && !id.ends_with('>'), "{id:?}");
}
