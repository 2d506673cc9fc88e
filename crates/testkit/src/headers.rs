//! Just enough RFC 5322 header reading for tests: find one field, unfolded.

/// The unfolded value of the first header field called `name` (case-insensitive) in
/// the header section of `raw`, trimmed; `None` if there is no such field.
pub(crate) fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let mut found: Option<String> = None;
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            break;
        }
        let continues = line.starts_with([' ', '\t']);
        match (&mut found, continues) {
            (Some(value), true) => {
                value.push(' ');
                value.push_str(line.trim());
            }
            (Some(_), false) => break,
            (None, true) => {}
            (None, false) => {
                if let Some((field, value)) = line.split_once(':')
                    && field.trim().eq_ignore_ascii_case(name)
                {
                    found = Some(value.trim().to_owned());
                }
            }
        }
    }
    found
}

/// The address in a `From:`-like value: what is inside the last `<...>`, or the whole
/// value when it is a bare address.
pub(crate) fn mailbox_address(value: &str) -> Option<String> {
    if let Some(start) = value.rfind('<') {
        let rest = &value[start + 1..];
        let end = rest.find('>')?;
        let address = rest[..end].trim();
        return address.contains('@').then(|| address.to_owned());
    }
    let value = value.trim();
    (value.contains('@') && !value.contains(char::is_whitespace)).then(|| value.to_owned())
}

#[cfg(test)]
mod tests {
    use super::{header_value, mailbox_address};

    #[test]
    fn header_value_reads_unfolds_and_stops_at_the_body() {
        let raw = b"From: Alice <alice@example.org>\r\nSubject: a\r\n long\r\n\tsubject\r\nX-Empty:\r\n\r\nSubject: body\r\n";
        let cases: &[(&str, Option<&str>)] = &[
            ("from", Some("Alice <alice@example.org>")),
            ("SUBJECT", Some("a long subject")),
            ("x-empty", Some("")),
            ("message-id", None),
        ];
        for (name, expected) in cases {
            assert_eq!(header_value(raw, name).as_deref(), *expected, "{name}");
        }
    }

    #[test]
    fn header_value_accepts_bare_line_feeds() {
        assert_eq!(
            header_value(b"To: bob@example.org\nSubject: hi\n\nbody", "subject").as_deref(),
            Some("hi")
        );
    }

    #[test]
    fn mailbox_address_cases() {
        let cases: &[(&str, Option<&str>)] = &[
            ("Alice <alice@example.org>", Some("alice@example.org")),
            ("\"A, B\" <ab@example.org>", Some("ab@example.org")),
            ("carol@example.org", Some("carol@example.org")),
            ("undisclosed-recipients:;", None),
            ("Alice <alice", None),
        ];
        for (value, expected) in cases {
            assert_eq!(mailbox_address(value).as_deref(), *expected, "{value}");
        }
    }
}
