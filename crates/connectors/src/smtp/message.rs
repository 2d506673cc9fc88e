//! Preparing the envelope and the message for SMTP.

use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use crate::errors::error;

/// An envelope address; `""` or `<>` is the null sender (`None`).
pub(super) fn address(text: &str, role: &str) -> Result<Option<lettre::Address>, SyncError> {
    let bare = text
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .trim();
    if bare.is_empty() {
        return Ok(None);
    }
    bare.parse().map(Some).map_err(|_| {
        error(
            ErrorClass::Permanent,
            ErrorScope::Item,
            format!("`{bare}` is not a valid {role} address"),
            format!("Correct the {role} address"),
        )
    })
}

pub(super) fn empty_recipient() -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Item,
        "a recipient address is empty".to_owned(),
        "Remove empty recipients from the message",
    )
}

pub(super) fn no_recipients() -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Item,
        "the message has no recipients".to_owned(),
        "Add at least one recipient",
    )
}

/// The message as it goes after DATA: `QUIRK_BARE_LF` (bare LF becomes CRLF) and
/// `QUIRK_DATA_TERMINATOR` (the final CRLF is left to the terminator).
pub(super) fn for_data(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + message.len() / 50);
    let mut previous = 0u8;
    for &b in message {
        if b == b'\n' && previous != b'\r' {
            out.push(b'\r');
        }
        out.push(b);
        previous = b;
    }
    if out.ends_with(b"\r\n") {
        out.truncate(out.len() - 2);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_keeps_the_message_exact_after_the_terminator() {
        let cases: [(&[u8], &[u8]); 5] = [
            (b"a\r\nb\r\n", b"a\r\nb"),
            (b"a\nb\n", b"a\r\nb"),
            (b"a\r\nb", b"a\r\nb"),
            (b"a\r\n\r\n", b"a\r\n"),
            (b"", b""),
        ];
        for (input, expected) in cases {
            assert_eq!(
                for_data(input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn envelope_addresses() {
        assert_eq!(address("", "sender").expect("null sender"), None);
        assert_eq!(address("<>", "sender").expect("null sender"), None);
        let a = address("<bob@example.org>", "recipient")
            .expect("valid")
            .expect("some");
        assert_eq!(a.to_string(), "bob@example.org");
        let e = address("not an address", "recipient").expect_err("invalid");
        assert_eq!(
            (e.class, e.scope),
            (ErrorClass::Permanent, ErrorScope::Item)
        );
    }
}
