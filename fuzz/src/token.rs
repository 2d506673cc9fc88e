//! Tracking tokens: a format and a subject from arbitrary bytes; `find` and
//! `apply` must agree and never hang.

use mailbridge_domain::ingest::TrackingTokenFormat;

/// The first 4 bytes shape the format (prefix length, base, digits); the rest is
/// text whose first characters are the prefix and the others the subject.
pub fn tracking_token(data: &[u8]) {
    let [len, base, digits, number, rest @ ..] = data else {
        return;
    };
    let text = String::from_utf8_lossy(rest);
    // Up to 20 characters, as the settings allow; 0 too, which they refuse but a
    // format built elsewhere could hold.
    let prefix: String = text.chars().take(usize::from(*len % 21)).collect();
    let subject: String = text.chars().skip(prefix.chars().count()).collect();
    let format = TrackingTokenFormat {
        prefix,
        base_number: i64::from(*base),
        user_digits: usize::from(*digits % 10),
        counter_digits: usize::from(*digits / 10 % 10),
    };
    let found = format.find(&subject);
    if let Some(t) = &found {
        assert!(t.starts_with(&format.prefix) && subject.contains(t.as_str()));
        assert!(t.len() > format.prefix.len(), "a token without digits");
    }
    let token = format.format(i64::from(*number), i64::from(*number) * 7);
    let applied = format.apply(&subject, &token);
    assert!(applied.contains(&token), "{applied:?} lost {token:?}");
    // Round trip for the prefixes the settings accept (1 to 20 characters
    // without white space), except those of digits only: such a prefix cannot be
    // told from the number (`7` in `700017042` is found again at `7042`).
    let accepted = !format.prefix.is_empty() && !format.prefix.chars().any(char::is_whitespace);
    let readable = format.prefix.chars().any(|c| !c.is_ascii_digit());
    if accepted && readable && !subject.contains(format.prefix.as_str()) {
        assert_eq!(format.find(&applied).as_deref(), Some(token.as_str()));
    }
    let _ = mailbridge_domain::ingest::normalize_subject(&subject, &format.prefix);
}
