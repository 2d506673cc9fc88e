//! The SASL initial responses that carry an OAuth2 bearer token, shared by IMAP
//! and SMTP: pure functions, so that the exact bytes are table-tested.

/// XOAUTH2 as Google and Microsoft define it: `user=U ^A auth=Bearer T ^A ^A`.
pub(crate) fn xoauth2(user: &str, token: &str) -> String {
    format!("user={user}\x01auth=Bearer {token}\x01\x01")
}

/// OAUTHBEARER (RFC 7628 3.1): the GS2 header naming the user as authzid, then the
/// `host`, `port` and `auth` pairs, each ended by `^A`, and a final `^A`. Host and
/// port are optional in the grammar but sent as in the RFC's examples (4.1), since
/// some servers check them against the address they serve.
pub(crate) fn oauthbearer(user: &str, host: &str, port: u16, token: &str) -> String {
    format!(
        "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
        saslname(user)
    )
}

/// `saslname` of RFC 5801 (GS2): `=` and `,` escaped as `=3D` and `=2C`, `=` first
/// so that the escapes themselves are left alone.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_responses() {
        let cases = [
            (
                "alice@example.org",
                "ya29.a0Af",
                "user=alice@example.org\x01auth=Bearer ya29.a0Af\x01\x01",
            ),
            ("bob", "t", "user=bob\x01auth=Bearer t\x01\x01"),
        ];
        for (user, token, expected) in cases {
            assert_eq!(xoauth2(user, token), expected, "{user}");
        }
    }

    #[test]
    fn oauthbearer_responses_follow_rfc_7628() {
        let cases = [
            (
                "alice@example.org",
                "imap.example.org",
                993,
                "n,a=alice@example.org,\x01host=imap.example.org\x01port=993\x01auth=Bearer tok\x01\x01",
            ),
            // RFC 5801 saslname: `=` and `,` are escaped; `=2C` in a name stays readable.
            (
                "a,b=c",
                "::1",
                143,
                "n,a=a=2Cb=3Dc,\x01host=::1\x01port=143\x01auth=Bearer tok\x01\x01",
            ),
            (
                "x=2C",
                "h",
                1,
                "n,a=x=3D2C,\x01host=h\x01port=1\x01auth=Bearer tok\x01\x01",
            ),
        ];
        for (user, host, port, expected) in cases {
            assert_eq!(oauthbearer(user, host, port, "tok"), expected, "{user}");
        }
    }
}
