//! Record identifiers: UUID version 7 in their hyphenated text form, so that they
//! sort by creation time (keyset pagination relies on that) and read the same in
//! SQLite and PostgreSQL.

/// A new, time-ordered record id.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().hyphenated().to_string()
}

/// Whether `s` is an id this service could have issued (any UUID in hyphenated form).
/// Malformed ids in paths are answered like unknown ones.
pub fn is_valid_id(s: &str) -> bool {
    s.len() == 36 && uuid::Uuid::try_parse(s).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_valid() {
        let a = new_id();
        let b = new_id();
        assert!(a < b, "{a} should sort before {b}");
        assert!(is_valid_id(&a));
        assert!(!is_valid_id("not-an-id"));
        assert!(!is_valid_id("0190a0b0c0d0e0f00102030405060708"));
    }
}
