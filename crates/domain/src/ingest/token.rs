//! Tracking tokens: `prefix` + base number + the sender's number (fixed digits) +
//! a counter (fixed digits), written at the end of an outgoing subject, e.g.
//! `Quote CRM:0001000042`. A reply that keeps the token correlates even when its
//! headers were lost.

use crate::organization::EmailSettings;

/// The organization's token format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackingTokenFormat {
    pub prefix: String,
    pub base_number: i64,
    pub user_digits: usize,
    pub counter_digits: usize,
}

impl TrackingTokenFormat {
    pub fn from_settings(s: &EmailSettings) -> Option<TrackingTokenFormat> {
        s.tracking_token_enabled.then(|| TrackingTokenFormat {
            prefix: s.tracking_token_prefix.clone(),
            base_number: s.tracking_token_base_number,
            user_digits: s.tracking_token_user_digits as usize,
            counter_digits: s.tracking_token_counter_digits as usize,
        })
    }

    /// The token for the sender's `number` and its `counter`; numbers wider than
    /// their digits keep all their digits (tokens stay unique, just longer).
    pub fn format(&self, number: i64, counter: i64) -> String {
        format!(
            "{}{}{:0uw$}{:0cw$}",
            self.prefix,
            self.base_number,
            number,
            counter,
            uw = self.user_digits,
            cw = self.counter_digits
        )
    }

    /// The last token in a subject, if any: the prefix followed by digits. An
    /// empty prefix (which the settings refuse) finds nothing: it would match
    /// everywhere, and searching for it never moved on (found by fuzzing:
    /// fuzz/regressions/tracking_token/).
    pub fn find(&self, subject: &str) -> Option<String> {
        if self.prefix.is_empty() {
            return None;
        }
        let mut found = None;
        let mut rest = subject;
        while let Some(pos) = rest.find(&self.prefix) {
            let after = &rest[pos + self.prefix.len()..];
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() {
                found = Some(format!("{}{}", self.prefix, digits));
            }
            rest = &rest[pos + self.prefix.len()..];
        }
        found
    }

    /// The subject with the token appended, unless it already carries it.
    pub fn apply(&self, subject: &str, token: &str) -> String {
        if subject.contains(token) {
            subject.to_owned()
        } else if subject.trim().is_empty() {
            token.to_owned()
        } else {
            format!("{} {token}", subject.trim_end())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt() -> TrackingTokenFormat {
        TrackingTokenFormat {
            prefix: "CRM:".into(),
            base_number: 0,
            user_digits: 3,
            counter_digits: 4,
        }
    }

    #[test]
    fn format_find_apply() {
        let f = fmt();
        assert_eq!(f.format(1, 42), "CRM:00010042");
        assert_eq!(f.format(1234, 5), "CRM:012340005");
        let cases = [
            ("Re: Quote CRM:00010042", Some("CRM:00010042")),
            (
                "RE: RE: CRM:00010042 and CRM:00020001",
                Some("CRM:00020001"),
            ),
            ("CRM: nothing here", None),
            ("Quote", None),
        ];
        for (subject, expected) in cases {
            assert_eq!(f.find(subject).as_deref(), expected, "{subject}");
        }
        assert_eq!(f.apply("Quote", "CRM:00010042"), "Quote CRM:00010042");
        assert_eq!(
            f.apply("Quote CRM:00010042", "CRM:00010042"),
            "Quote CRM:00010042"
        );
        assert_eq!(f.apply("", "CRM:00010042"), "CRM:00010042");
    }

    #[test]
    fn an_empty_prefix_finds_nothing() {
        let f = TrackingTokenFormat {
            prefix: String::new(),
            ..fmt()
        };
        assert_eq!(f.find("Quote 00010042"), None);
        assert_eq!(f.find(""), None);
    }
}
