//! Field-level validation results and the small checks every model shares.
//! Messages name what would be valid, so that an administrator can fix the input
//! from the message alone.

use serde::Serialize;

/// One invalid field and what would be valid instead.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field's name as the API spells it.
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Every problem found in one input; empty when the input is valid.
pub type Validation = Vec<FieldError>;

/// A required, trimmed, bounded text such as a name.
pub fn check_required_text(errors: &mut Validation, field: &str, value: &str, max_chars: usize) {
    if value.trim().is_empty() {
        errors.push(FieldError::new(
            field,
            format!("{field} is required and must not be blank"),
        ));
    } else {
        check_max_chars(errors, field, value, max_chars);
    }
}

/// An optional text that must stay under a length.
pub fn check_max_chars(errors: &mut Validation, field: &str, value: &str, max_chars: usize) {
    let n = value.chars().count();
    if n > max_chars {
        errors.push(FieldError::new(
            field,
            format!("{field} is {n} characters long; at most {max_chars} are allowed"),
        ));
    }
}

/// An integer within an inclusive range.
pub fn check_range(errors: &mut Validation, field: &str, value: i64, min: i64, max: i64) {
    if value < min || value > max {
        errors.push(FieldError::new(
            field,
            format!("{field} must be between {min} and {max}, got {value}"),
        ));
    }
}

/// Whether `s` is a GUID in the 8-4-4-4-12 hexadecimal form (as tenant and
/// application IDs are written), braces not allowed.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    let lengths = [8, 4, 4, 4, 12];
    groups.len() == 5
        && groups
            .iter()
            .zip(lengths)
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A GUID field such as a tenant ID.
pub fn check_guid(errors: &mut Validation, field: &str, value: &str) {
    if !is_guid(value) {
        errors.push(FieldError::new(
            field,
            format!(
                "{field} must be a GUID such as 72f988bf-86f1-41af-91ab-2d7cd011db47, got `{value}`"
            ),
        ));
    }
}

/// Whether `s` looks like an RFC 5322 addr-spec (`local@domain`), without display
/// name or angle brackets. This is a sanity check for input, not a full parser.
pub fn is_email_address(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && local
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>[]:;@\\,\"".contains(&b));
    let domain_ok = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b >= 0x80)
        });
    local_ok && domain_ok && s.len() <= 254
}

/// An email address field.
pub fn check_email_address(errors: &mut Validation, field: &str, value: &str) {
    if !is_email_address(value) {
        errors.push(FieldError::new(
            field,
            format!("{field} must be an address such as name@example.org, got `{value}`"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        let cases = [
            ("72f988bf-86f1-41af-91ab-2d7cd011db47", true),
            ("72F988BF-86F1-41AF-91AB-2D7CD011DB47", true),
            ("{72f988bf-86f1-41af-91ab-2d7cd011db47}", false),
            ("72f988bf86f141af91ab2d7cd011db47", false),
            ("72f988bf-86f1-41af-91ab-2d7cd011db4", false),
            ("zzf988bf-86f1-41af-91ab-2d7cd011db47", false),
            ("contoso.onmicrosoft.com", false),
        ];
        for (input, expected) in cases {
            assert_eq!(is_guid(input), expected, "{input}");
        }
    }

    #[test]
    fn email_addresses() {
        let cases = [
            ("alice@example.org", true),
            ("first.last+tag@sub.example.co.uk", true),
            ("alice", false),
            ("@example.org", false),
            ("alice@", false),
            ("Alice <alice@example.org>", false),
            ("al..ice@example.org", false),
            ("alice@-example.org", false),
            ("alice@exa mple.org", false),
        ];
        for (input, expected) in cases {
            assert_eq!(is_email_address(input), expected, "{input}");
        }
    }

    #[test]
    fn ranges_and_text() {
        let mut errors = Vec::new();
        check_range(&mut errors, "max_concurrent_connections", 0, 1, 300);
        check_required_text(&mut errors, "name", "   ", 100);
        check_max_chars(&mut errors, "description", &"x".repeat(11), 10);
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            ["max_concurrent_connections", "name", "description"]
        );
        assert_eq!(
            errors[0].message,
            "max_concurrent_connections must be between 1 and 300, got 0"
        );
    }
}
