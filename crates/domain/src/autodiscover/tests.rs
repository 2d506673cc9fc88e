use super::autoconfig::{self, ServerEntry, SocketType};
use super::srv::{self, SrvRecord, SrvService};
use super::v2::{self, V2Protocol};
use super::*;

fn rec(priority: u16, weight: u16, port: u16, target: &str) -> SrvRecord {
    SrvRecord {
        priority,
        weight,
        port,
        target: target.to_owned(),
    }
}

#[test]
fn email_domains() {
    let cases = [
        ("bob@Contoso.TEST", Some("contoso.test")),
        (" bob@contoso.test. ", Some("contoso.test")),
        ("a@b@mail.example.org", Some("mail.example.org")),
        ("bob", None),
        ("@contoso.test", None),
        ("bob@", None),
        ("bob@contoso..test", None),
        ("bob@contoso.test/x", None),
    ];
    for (email, expected) in cases {
        assert_eq!(email_domain(email).as_deref(), expected, "{email}");
    }
}

#[test]
fn locations_in_the_profile_syntax() {
    let cases = [
        (
            Scheme::Imaps,
            "Mail.Contoso.test.",
            993,
            "imaps://mail.contoso.test:993",
        ),
        (Scheme::Imap, "localhost", 1143, "imap://localhost:1143"),
        (
            Scheme::Smtps,
            "smtp.contoso.test",
            465,
            "smtps://smtp.contoso.test:465",
        ),
        (
            Scheme::Smtp,
            "smtp.contoso.test",
            587,
            "smtp://smtp.contoso.test:587",
        ),
        (Scheme::Imaps, "::1", 993, "imaps://[::1]:993"),
    ];
    for (scheme, host, port, expected) in cases {
        assert_eq!(location_text(scheme, host, port), expected);
    }
}

#[test]
fn the_order_of_lookups_per_server_type() {
    let imap = plan(ServerType::ImapSmtp, "bob@contoso.test", None);
    assert_eq!(
        imap,
        [
            Lookup::Autoconfig(
                "https://autoconfig.contoso.test/mail/config-v1.1.xml?emailaddress=bob%40contoso.test".into()
            ),
            Lookup::Autoconfig(
                "https://contoso.test/.well-known/autoconfig/mail/config-v1.1.xml".into()
            ),
            Lookup::Srv(SrvService::Imaps),
            Lookup::Srv(SrvService::Imap),
            Lookup::Srv(SrvService::Submissions),
            Lookup::Srv(SrvService::Submission),
        ]
    );
    let with_port = plan(ServerType::ImapSmtp, "bob@contoso.test", Some(8443));
    assert_eq!(
        with_port[1],
        Lookup::Autoconfig(
            "https://contoso.test:8443/.well-known/autoconfig/mail/config-v1.1.xml".into()
        )
    );
    let exchange = plan(ServerType::ExchangeServer, "bob@contoso.test", None);
    assert_eq!(
        exchange,
        [
            Lookup::AutodiscoverV2(
                "https://autodiscover.contoso.test/autodiscover/autodiscover.json/v1.0/bob@contoso.test?Protocol=EWS".into()
            ),
            Lookup::AutodiscoverV2(
                "https://contoso.test/autodiscover/autodiscover.json/v1.0/bob@contoso.test?Protocol=EWS".into()
            ),
        ]
    );
    let online = plan(ServerType::ExchangeOnline, "bob@contoso.test", Some(9443));
    assert_eq!(
        online.last(),
        Some(&Lookup::AutodiscoverV2(
            "https://outlook.office365.com:9443/autodiscover/autodiscover.json/v1.0/bob@contoso.test?Protocol=EWS".into()
        ))
    );
    assert!(plan(ServerType::ImapSmtp, "not an address", None).is_empty());
}

#[test]
fn srv_services_and_names() {
    let cases = [
        (
            SrvService::Imaps,
            "_imaps._tcp.contoso.test.",
            "imaps://mail.contoso.test:993",
        ),
        (
            SrvService::Imap,
            "_imap._tcp.contoso.test.",
            "imap://mail.contoso.test:993",
        ),
        (
            SrvService::Submissions,
            "_submissions._tcp.contoso.test.",
            "smtps://mail.contoso.test:993",
        ),
        (
            SrvService::Submission,
            "_submission._tcp.contoso.test.",
            "smtp://mail.contoso.test:993",
        ),
    ];
    for (service, name, location) in cases {
        assert_eq!(service.query_name("contoso.test."), name);
        assert_eq!(
            srv::location(service, &rec(0, 0, 993, "mail.contoso.test.")),
            location
        );
    }
    assert_eq!(
        SrvService::for_direction(Direction::Outgoing),
        [SrvService::Submissions, SrvService::Submission],
        "implicit TLS first (RFC 8314)"
    );
}

#[test]
fn srv_order_follows_rfc_2782() {
    // (records, the random numbers drawn, expected targets in order)
    let cases: Vec<(Vec<SrvRecord>, Vec<u32>, Vec<&str>)> = vec![
        // Priority decides first, whatever the weights.
        (
            vec![rec(20, 100, 993, "b."), rec(10, 0, 993, "a.")],
            vec![0, 0],
            vec!["a.", "b."],
        ),
        // Within a priority, the running sum of weights picks: 0..=60 -> first.
        (
            vec![rec(10, 60, 993, "a."), rec(10, 40, 993, "b.")],
            vec![30, 0],
            vec!["a.", "b."],
        ),
        (
            vec![rec(10, 60, 993, "a."), rec(10, 40, 993, "b.")],
            vec![61, 0],
            vec!["b.", "a."],
        ),
        // Zero weights are placed first: a draw of 0 picks them.
        (
            vec![rec(10, 50, 993, "a."), rec(10, 0, 993, "z.")],
            vec![0, 0],
            vec!["z.", "a."],
        ),
        (
            vec![rec(10, 50, 993, "a."), rec(10, 0, 993, "z.")],
            vec![1, 0],
            vec!["a.", "z."],
        ),
        // "." and port 0 are not targets.
        (
            vec![
                rec(0, 0, 0, "a."),
                rec(0, 0, 993, "."),
                rec(5, 0, 993, "b."),
            ],
            vec![0],
            vec!["b."],
        ),
    ];
    for (records, draws, expected) in cases {
        let mut draws = draws.into_iter();
        let got: Vec<String> = srv::order(&records, |_| draws.next().unwrap_or(0))
            .into_iter()
            .map(|r| r.target)
            .collect();
        assert_eq!(got, expected, "{records:?}");
    }
}

#[test]
fn a_lone_dot_says_not_offered() {
    assert!(srv::not_offered(&[rec(0, 0, 0, ".")]));
    assert!(!srv::not_offered(&[rec(0, 0, 993, "mail.")]));
    assert!(!srv::not_offered(&[]));
}

const AUTOCONFIG: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="contoso.test">
    <domain>contoso.test</domain>
    <incomingServer type="pop3">
      <hostname>pop.contoso.test</hostname><port>995</port><socketType>SSL</socketType>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.%EMAILDOMAIN%</hostname><port>143</port><socketType>STARTTLS</socketType>
      <username>%EMAILLOCALPART%</username><authentication>password-cleartext</authentication>
    </incomingServer>
    <incomingServer type="imap">
      <hostname>imap.contoso.test</hostname><port>993</port><socketType>SSL</socketType>
      <username>%EMAILADDRESS%</username>
    </incomingServer>
    <outgoingServer type="smtp">
      <hostname>smtp.contoso.test</hostname><port>25</port><socketType>plain</socketType>
    </outgoingServer>
    <futureElement>ignored</futureElement>
  </emailProvider>
</clientConfig>"#;

#[test]
fn autoconfig_files_are_read() {
    let entries = autoconfig::parse(AUTOCONFIG).unwrap();
    assert_eq!(
        entries,
        [
            ServerEntry {
                direction: Direction::Incoming,
                hostname: "imap.%EMAILDOMAIN%".into(),
                port: 143,
                socket_type: SocketType::StartTls,
                username: Some("%EMAILLOCALPART%".into()),
            },
            ServerEntry {
                direction: Direction::Incoming,
                hostname: "imap.contoso.test".into(),
                port: 993,
                socket_type: SocketType::Ssl,
                username: Some("%EMAILADDRESS%".into()),
            },
            ServerEntry {
                direction: Direction::Outgoing,
                hostname: "smtp.contoso.test".into(),
                port: 25,
                socket_type: SocketType::Plain,
                username: None,
            },
        ]
    );
}

#[test]
fn bad_autoconfig_files_say_why() {
    let cases = [
        ("<clientConfig><emailProvider>", "not XML"),
        ("<html><body>Not here</body></html>", "not a `clientConfig`"),
        ("<clientConfig version=\"1.1\"/>", "no emailProvider"),
    ];
    for (xml, expected) in cases {
        let err = autoconfig::parse(xml).unwrap_err();
        assert!(err.contains(expected), "{xml}: {err}");
    }
    // Entries without a port, with an unknown socket type or port 0 are skipped.
    let odd = r#"<clientConfig><emailProvider>
        <incomingServer type="imap"><hostname>a</hostname><socketType>SSL</socketType></incomingServer>
        <incomingServer type="imap"><hostname>b</hostname><port>993</port><socketType>magic</socketType></incomingServer>
        <incomingServer type="imap"><hostname>c</hostname><port>0</port><socketType>SSL</socketType></incomingServer>
    </emailProvider></clientConfig>"#;
    assert_eq!(autoconfig::parse(odd).unwrap(), []);
}

#[test]
fn the_server_chosen_from_an_autoconfig_file() {
    let entries = autoconfig::parse(AUTOCONFIG).unwrap();
    let email = "bob@contoso.test";
    // (direction, allow_plaintext, expected location and user name, or error part)
    let cases = [
        (
            Direction::Incoming,
            false,
            Ok(("imaps://imap.contoso.test:993", Some("bob@contoso.test"))),
        ),
        (
            Direction::Outgoing,
            true,
            Ok(("smtp://smtp.contoso.test:25", None)),
        ),
        (Direction::Outgoing, false, Err("only plaintext SMTP")),
    ];
    for (direction, plain, expected) in cases {
        let got = autoconfig::choose(&entries, direction, email, plain);
        match expected {
            Ok((location, username)) => {
                let found = got.unwrap();
                assert_eq!(found.location, location);
                assert_eq!(found.username.as_deref(), username);
                assert_eq!(found.source, DiscoverySource::Autoconfig);
            }
            Err(part) => assert!(got.unwrap_err().contains(part), "{direction:?}"),
        }
    }
    // STARTTLS is taken when the file offers no implicit TLS; placeholders expand.
    let starttls_only: Vec<ServerEntry> = entries
        .iter()
        .filter(|e| e.socket_type == SocketType::StartTls)
        .cloned()
        .collect();
    let found = autoconfig::choose(&starttls_only, Direction::Incoming, email, false).unwrap();
    assert_eq!(found.location, "imap://imap.contoso.test:143");
    assert_eq!(found.username.as_deref(), Some("bob"));
    assert!(
        autoconfig::choose(&starttls_only, Direction::Outgoing, email, true)
            .unwrap_err()
            .contains("no SMTP server")
    );
}

#[test]
fn placeholders() {
    let cases = [
        ("%EMAILADDRESS%", "bob@contoso.test"),
        ("%EMAILLOCALPART%", "bob"),
        ("mail.%EMAILDOMAIN%", "mail.contoso.test"),
        ("fixed-name", "fixed-name"),
    ];
    for (template, expected) in cases {
        assert_eq!(autoconfig::expand(template, "bob@contoso.test"), expected);
    }
}

#[test]
fn autodiscover_v2_answers() {
    let ews = "https://mail.contoso.test/EWS/Exchange.asmx";
    let cases = [
        (
            r#"{"Protocol":"EWS","Url":"https://mail.contoso.test/EWS/Exchange.asmx"}"#,
            Ok(ews),
        ),
        (
            r#"{"protocol":"ews","url":"https://mail.contoso.test/EWS/Exchange.asmx"}"#,
            Ok(ews),
        ),
        (
            r#"{"ErrorCode":"InvalidProtocol","ErrorMessage":"The given protocol value 'EWS' is invalid."}"#,
            Err("Exchange answered InvalidProtocol: The given protocol value"),
        ),
        (
            r#"{"Protocol":"ActiveSync","Url":"https://x/Microsoft-Server-ActiveSync"}"#,
            Err("for ActiveSync, not EWS"),
        ),
        (r#"{"Protocol":"EWS"}"#, Err("no Url")),
        (r#"["EWS"]"#, Err("not a JSON object")),
        ("<html>", Err("not JSON")),
    ];
    for (json, expected) in cases {
        let got = v2::parse(json, V2Protocol::Ews);
        match expected {
            Ok(url) => assert_eq!(got.as_deref(), Ok(url), "{json}"),
            Err(part) => assert!(got.unwrap_err().contains(part), "{json}"),
        }
    }
    assert_eq!(v2::location(ews, false).as_deref(), Ok(ews));
    assert!(
        v2::location("http://mail.contoso.test/EWS/Exchange.asmx", false)
            .unwrap_err()
            .contains("allow_plaintext")
    );
}

#[test]
fn v2_urls_per_protocol() {
    let urls = v2::urls(
        ServerType::ExchangeServer,
        "bob+x@contoso.test",
        "contoso.test",
        V2Protocol::ActiveSync,
        None,
    );
    assert_eq!(
        urls[0],
        "https://autodiscover.contoso.test/autodiscover/autodiscover.json/v1.0/bob+x@contoso.test?Protocol=ActiveSync"
    );
    assert_eq!(V2Protocol::Rest.as_str(), "REST");
}

#[test]
fn the_error_names_every_lookup_and_the_fix() {
    let absent = Attempt {
        what: "SRV _imaps._tcp.nowhere.test".into(),
        outcome: Outcome::Absent("no record".into()),
    };
    let failed = Attempt {
        what: "https://autoconfig.nowhere.test/mail/config-v1.1.xml".into(),
        outcome: Outcome::Failed("no answer within 5 s".into()),
    };
    let permanent = location_unknown("bob@nowhere.test", std::slice::from_ref(&absent));
    assert_eq!(permanent.class, ErrorClass::Permanent);
    assert_eq!(permanent.scope, ErrorScope::Mailbox);
    assert_eq!(
        permanent.message,
        "mailbox location could not be determined for bob@nowhere.test; tried SRV _imaps._tcp.nowhere.test: no record"
    );
    assert_eq!(permanent.fix.as_deref(), Some(LOCATION_UNKNOWN_FIX));
    let transient = location_unknown("bob@nowhere.test", &[absent, failed]);
    assert!(matches!(transient.class, ErrorClass::Transient { .. }));
    assert!(transient.message.contains("no answer within 5 s"));
    assert!(location_unknown("bob", &[]).message.contains("no domain"));
}

#[test]
fn discovered_locations_age() {
    use chrono::{Duration, Utc};
    let now = Utc::now();
    let found = DiscoveredLocation {
        incoming: Some("imaps://mail.contoso.test:993".into()),
        outgoing: None,
        source: DiscoverySource::Srv,
        at: now - Duration::hours(2),
    };
    let day = std::time::Duration::from_secs(86_400);
    let hour = std::time::Duration::from_secs(3_600);
    let cases = [
        (day, false),
        (hour, true),
        (std::time::Duration::ZERO, true),
    ];
    for (max_age, stale) in cases {
        assert_eq!(found.is_stale(now, max_age), stale, "{max_age:?}");
    }
}
