//! Every field that names a server refuses what is not a server of the
//! configured kind: other schemes (`file:`, `javascript:`, `ftp:`, ...), plain
//! `http://` unless the profile allows plaintext, and credentials in the URL;
//! and a refusal never repeats a password pasted into the URL. What the rules do
//! not look at (loopback and private addresses) is written down as today's
//! behaviour.

use chrono::Utc;
use mailbridge_domain::location::shown_location;
use mailbridge_domain::profile::{ProfileContext, ProfileSettings, validate_profile};
use mailbridge_domain::webhook::{WebhookSubscription, validate_subscription};
use mailbridge_domain::{ServerType, WebhookEventType};

/// A field that holds a server location.
#[derive(Debug, Clone, Copy)]
enum Field {
    ImapIncoming,
    SmtpOutgoing,
    ExchangeIncoming,
    Dav,
    Authority,
    Graph,
    Webhook,
}

use Field::*;

const ALL: [Field; 7] = [
    ImapIncoming,
    SmtpOutgoing,
    ExchangeIncoming,
    Dav,
    Authority,
    Graph,
    Webhook,
];

impl Field {
    fn name(self) -> &'static str {
        match self {
            ImapIncoming | ExchangeIncoming => "incoming_server_location",
            SmtpOutgoing => "outgoing_server_location",
            Dav => "dav_location",
            Authority => "authority_url",
            Graph => "graph_url",
            Webhook => "url",
        }
    }

    /// The scheme the field takes, to build hostile variants of a good value.
    fn scheme(self) -> &'static str {
        match self {
            ImapIncoming => "imaps",
            SmtpOutgoing => "smtps",
            _ => "https",
        }
    }

    /// Whether the field has an `http://` (plaintext) form at all.
    fn has_http(self) -> bool {
        !matches!(self, ImapIncoming | SmtpOutgoing)
    }
}

/// The field's error for `value`, `None` when accepted.
fn check(field: Field, value: &str, allow_plaintext: bool) -> Option<String> {
    if let Webhook = field {
        let t = Utc::now();
        let s = WebhookSubscription {
            id: "s".into(),
            org_id: "o".into(),
            url: value.into(),
            description: None,
            event_types: vec![WebhookEventType::EmailTracked],
            enabled: true,
            created_at: t,
            updated_at: t,
        };
        return validate_subscription(&s)
            .into_iter()
            .find(|e| e.field == "url")
            .map(|e| e.message);
    }
    let server_type = match field {
        ImapIncoming | SmtpOutgoing | Dav => ServerType::ImapSmtp,
        ExchangeIncoming => ServerType::ExchangeServer,
        Authority | Graph | Webhook => ServerType::ExchangeOnline,
    };
    let mut p = ProfileSettings::new("P".into(), server_type);
    p.allow_plaintext = allow_plaintext;
    p.auto_discover = true;
    let v = Some(value.to_owned());
    match field {
        ImapIncoming | ExchangeIncoming => p.incoming_server_location = v,
        SmtpOutgoing => p.outgoing_server_location = v,
        Dav => p.dav_location = v,
        Authority => p.authority_url = v,
        Graph => p.graph_url = v,
        Webhook => unreachable!(),
    }
    let ctx = ProfileContext {
        org_default_tenant_id: Some("72f988bf-86f1-41af-91ab-2d7cd011db47"),
        ..ProfileContext::default()
    };
    validate_profile(&p, &ctx)
        .into_iter()
        .find(|e| e.field == field.name())
        .map(|e| e.message)
}

#[test]
fn a_good_location_of_each_field_is_accepted() {
    for field in ALL {
        let good = format!("{}://mail.example.org/", field.scheme());
        let good = match field {
            ImapIncoming | SmtpOutgoing => good.trim_end_matches('/').to_owned(),
            _ => good,
        };
        assert_eq!(check(field, &good, false), None, "{field:?} {good}");
    }
}

#[test]
fn hostile_locations_are_refused_in_every_field() {
    for field in ALL {
        let s = field.scheme();
        let hostile = [
            "file:///etc/passwd".to_owned(),
            "file://mail.example.org/etc/passwd".to_owned(),
            "javascript:alert(1)".to_owned(),
            "javascript://mail.example.org/%0aalert(1)".to_owned(),
            "ftp://mail.example.org/".to_owned(),
            "data:text/plain,hello".to_owned(),
            "gopher://mail.example.org:25/".to_owned(),
            "ldap://mail.example.org/".to_owned(),
            "mail.example.org".to_owned(),
            String::new(),
            // Credentials belong in the credential fields (or nowhere: webhooks
            // are authenticated by their signature).
            format!("{s}://user:pa55@mail.example.org"),
            format!("{s}://user@mail.example.org"),
            format!("{s}://:pa55@mail.example.org"),
        ];
        for value in &hostile {
            for plaintext in [false, true] {
                assert!(
                    check(field, value, plaintext).is_some(),
                    "{field:?} accepts {value:?} (allow_plaintext {plaintext})"
                );
            }
        }
    }
}

#[test]
fn plain_http_needs_allow_plaintext_where_the_field_has_it() {
    // (field, refused without allow_plaintext, accepted with it)
    let cases = [
        (ExchangeIncoming, true, true),
        (Dav, true, true),
        (Authority, true, true),
        (Graph, true, true),
        // Webhooks have no allow_plaintext: http:// is accepted (receivers on a
        // private network); the payload is signed, never encrypted by us.
        (Webhook, false, true),
    ];
    for (field, refused, accepted_with_flag) in cases {
        assert!(field.has_http());
        let value = "http://mail.example.org/";
        assert_eq!(
            check(field, value, false).is_some(),
            refused,
            "{field:?} {value} without allow_plaintext: {:?}",
            check(field, value, false)
        );
        assert_eq!(
            check(field, value, true).is_none(),
            accepted_with_flag,
            "{field:?}"
        );
    }
    // IMAP and SMTP have no http form: their clear-text schemes are STARTTLS, and
    // http:// is not their scheme whatever the flag.
    for field in [ImapIncoming, SmtpOutgoing] {
        for plaintext in [false, true] {
            assert!(check(field, "http://mail.example.org/", plaintext).is_some());
        }
    }
}

#[test]
fn a_refusal_never_repeats_a_password_in_the_url() {
    let password = "Pa55-in-the-url";
    for field in ALL {
        let s = field.scheme();
        let values = [
            format!("{s}://svc:{password}@mail.example.org"),
            format!("{s}://svc:{password}@[mail"),
            format!("svc:{password}@mail.example.org"),
            format!("ftp://svc:{password}@mail.example.org/"),
            format!("svc:{password}@mail.example.org://x"),
        ];
        for value in &values {
            let e =
                check(field, value, false).unwrap_or_else(|| panic!("{field:?} accepts {value}"));
            assert!(!e.contains(password), "{field:?} repeats the password: {e}");
        }
    }
}

#[test]
fn shown_locations_leave_out_credentials() {
    let cases = [
        (
            "imaps://svc:pw@mail.example.org",
            "imaps://…@mail.example.org",
        ),
        ("https://a@b@host/path", "https://…@host/path"),
        ("svc:pw@host", "…@host"),
        ("https://pw/with/slash@host", "https://…@host"),
        (
            "https://mail.example.org/ews",
            "https://mail.example.org/ews",
        ),
        ("mail.example.org", "mail.example.org"),
        ("svc:pw@host://x", "…@host://x"),
    ];
    for (text, shown) in cases {
        assert_eq!(shown_location(text), shown, "{text}");
    }
}

/// The rules look at schemes, hosts and credentials, and at addresses only for
/// webhooks: loopback, private and link-local hosts are accepted in every server
/// location (lab servers and the test servers live there), and a webhook may not
/// name a link-local address (a metadata service; `domain::destination`).
/// Whoever may write a profile can make mailbridge connect to such an address;
/// this table is today's behaviour, so that a change to it is deliberate.
#[test]
fn loopback_and_private_addresses_are_not_filtered() {
    let hosts = [
        "127.0.0.1",
        "localhost",
        "[::1]",
        "10.0.0.5",
        "192.168.1.10",
        "169.254.169.254",
    ];
    for field in ALL {
        for host in hosts {
            let value = match field {
                ImapIncoming | SmtpOutgoing => format!("{}://{host}", field.scheme()),
                _ => format!("https://{host}/"),
            };
            let refused = check(field, &value, false);
            if matches!(field, Webhook) && host == "169.254.169.254" {
                assert!(
                    refused.as_deref().is_some_and(|e| e.contains("link-local")),
                    "{field:?} {value}: {refused:?}"
                );
            } else {
                assert_eq!(refused, None, "{field:?} {value}");
            }
        }
    }
}
