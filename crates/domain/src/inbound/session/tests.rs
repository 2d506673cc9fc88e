//! Transcript tests: each case is a configuration, the client's lines and, for each
//! line, the replies it got (`code enhanced`, `|` between replies, plus `close` and
//! `tls` for those requests). Recipients in `KNOWN` are accepted, `busy@x.example`
//! fails temporarily; user `u` with password `p` logs in; a message whose first line
//! is `FAIL` is not stored. Recipients in `LIMITED` are accepted for an organization
//! with its own message size limit (the listener's is 100 bytes).

use base64::Engine as _;

use super::*;

/// A named transcript: client line, replies.
type Case<'a> = (&'a str, SessionConfig, Vec<(&'a str, &'a str)>);

const KNOWN: &[&str] = &["sales@x.example", "support@x.example"];

/// Recipients whose organization limits the message size, and the limit in bytes;
/// `huge@` has a limit above the listener's, which still applies.
const LIMITED: &[(&str, u64)] = &[("small@x.example", 50), ("huge@x.example", 1000)];

fn config(protocol: Protocol) -> SessionConfig {
    SessionConfig {
        protocol,
        hostname: "mx.test".into(),
        max_message_size: 100,
        max_recipients: 2,
        tls_available: true,
        auth_available: true,
        client_allowed: true,
    }
}

/// Drives the session as the I/O layer would; returns the replies per line and the
/// messages handed over for storing.
fn run(config: SessionConfig, lines: &[&str]) -> (Vec<String>, Vec<(Envelope, Vec<u8>)>) {
    let mut session = Session::new(config);
    let mut delivered = Vec::new();
    let mut transcript = Vec::new();
    for line in lines {
        let mut pending = session.feed_line(line.as_bytes());
        let mut shown = Vec::new();
        let mut steps = 0;
        while !pending.is_empty() {
            steps += 1;
            assert!(steps < 100, "no progress");
            let output = pending.remove(0);
            let more = match output {
                Output::Reply(r) => {
                    shown.push(match r.enhanced {
                        Some(e) => format!("{} {e}", r.code),
                        None => r.code.to_string(),
                    });
                    Vec::new()
                }
                Output::Close => {
                    shown.push("close".into());
                    Vec::new()
                }
                Output::StartTls => {
                    shown.push("tls".into());
                    session.tls_started();
                    Vec::new()
                }
                Output::CheckRecipient(to) => {
                    session.recipient_checked(if to == "busy@x.example" {
                        RecipientVerdict::TemporaryFailure
                    } else if KNOWN.contains(&to.as_str()) {
                        RecipientVerdict::Accepted
                    } else if let Some((_, limit)) = LIMITED.iter().find(|(a, _)| *a == to) {
                        RecipientVerdict::AcceptedUpTo(*limit)
                    } else {
                        RecipientVerdict::Unknown
                    })
                }
                Output::Authenticate { identity, password } => {
                    session.authenticated(identity == "u" && password.expose() == "p")
                }
                Output::Deliver { envelope, message } => {
                    let outcome = if message.starts_with(b"FAIL") {
                        DeliveryOutcome::TemporaryFailure
                    } else {
                        DeliveryOutcome::Stored
                    };
                    let outcomes = vec![outcome; envelope.recipients.len()];
                    delivered.push((envelope, message));
                    session.delivered(&outcomes)
                }
            };
            pending.extend(more);
        }
        transcript.push(shown.join("|"));
    }
    (transcript, delivered)
}

fn check(config: SessionConfig, script: &[(&str, &str)]) {
    let lines: Vec<&str> = script.iter().map(|(c, _)| *c).collect();
    let expected: Vec<&str> = script.iter().map(|(_, s)| *s).collect();
    let (got, _) = run(config, &lines);
    let pairs: Vec<(&str, &str)> = lines
        .iter()
        .copied()
        .zip(got.iter().map(String::as_str))
        .collect();
    let want: Vec<(&str, &str)> = lines.iter().copied().zip(expected).collect();
    assert_eq!(pairs, want);
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn smtp_happy_path_and_dot_unstuffing() {
    let lines = [
        "EHLO client",
        "MAIL FROM:<a@b.example> SIZE=50",
        "RCPT TO:<sales@x.example>",
        "DATA",
        "Subject: hi",
        "",
        "..leading dot",
        ".",
        "QUIT",
    ];
    let (got, delivered) = run(config(Protocol::Smtp), &lines);
    assert_eq!(
        got,
        [
            "250",
            "250 2.1.0",
            "250 2.1.5",
            "354",
            "",
            "",
            "",
            "250 2.0.0",
            "221 2.0.0|close"
        ]
    );
    let (envelope, message) = &delivered[0];
    assert_eq!(envelope.from, "a@b.example");
    assert_eq!(envelope.recipients, ["sales@x.example"]);
    assert_eq!(message.as_slice(), b"Subject: hi\r\n\r\n.leading dot\r\n");
}

#[test]
fn smtp_commands_and_states() {
    let smtp = || config(Protocol::Smtp);
    let long = "x".repeat(MAX_COMMAND_LINE - 1);
    let y99 = "y".repeat(99);
    let z_long = "z".repeat(MAX_TEXT_LINE - 1);
    let (user, pass, plain) = (b64("u"), b64("p"), b64("\0u\0p"));
    let cases: Vec<Case> = vec![
        (
            "mail before ehlo",
            smtp(),
            vec![("MAIL FROM:<a@b>", "503 5.5.1")],
        ),
        (
            "rcpt before mail",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("RCPT TO:<sales@x.example>", "503 5.5.1"),
            ],
        ),
        (
            "data before mail",
            smtp(),
            vec![("HELO c", "250"), ("DATA", "503 5.5.1")],
        ),
        (
            "data without valid recipient",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<>", "250 2.1.0"),
                ("RCPT TO:<nobody@x.example>", "550 5.1.1"),
                ("DATA", "554 5.5.1"),
            ],
        ),
        (
            "nested mail, rset",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("MAIL FROM:<a@b>", "503 5.5.1"),
                ("RSET", "250 2.0.0"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
            ],
        ),
        (
            "size at MAIL FROM",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b> SIZE=101", "552 5.3.4"),
                ("MAIL FROM:<a@b> SIZE=100", "250 2.1.0"),
            ],
        ),
        (
            "size after DATA",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y99, ""),
                (".", "552 5.3.4"),
                // The transaction is over: a new one starts cleanly.
                ("RCPT TO:<sales@x.example>", "503 5.5.1"),
            ],
        ),
        (
            "too many recipients, temporary look-up failure",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<busy@x.example>", "451 4.3.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<support@x.example>", "250 2.1.5"),
                ("RCPT TO:<sales@x.example>", "452 4.5.3"),
            ],
        ),
        (
            "store failure is 4xx",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                ("FAIL", ""),
                (".", "451 4.3.0"),
            ],
        ),
        (
            "noop vrfy help",
            smtp(),
            vec![
                ("NOOP", "250 2.0.0"),
                ("VRFY x", "252 2.5.0"),
                ("HELP", "214 2.0.0"),
            ],
        ),
        (
            "unknown, lhlo in smtp",
            smtp(),
            vec![("BDAT 1", "500 5.5.2"), ("LHLO c", "500 5.5.2")],
        ),
        (
            "syntax errors",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:a@b", "501 5.5.4"),
                ("MAIL FROM:<a@b> X=1", "555 5.5.4"),
            ],
        ),
        (
            "command line too long",
            smtp(),
            vec![(&long, "500 5.5.2"), ("NOOP", "250 2.0.0")],
        ),
        (
            "text line too long",
            SessionConfig {
                max_message_size: 10_000,
                ..smtp()
            },
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&z_long, ""),
                (".", "554 5.6.0"),
            ],
        ),
        (
            "auth required",
            SessionConfig {
                client_allowed: false,
                ..smtp()
            },
            vec![("EHLO c", "250"), ("MAIL FROM:<a@b>", "530 5.7.0")],
        ),
        (
            "auth needs tls",
            SessionConfig {
                client_allowed: false,
                ..smtp()
            },
            vec![("EHLO c", "250"), ("AUTH PLAIN AHUAcA==", "538 5.7.11")],
        ),
        (
            "starttls, then auth plain",
            SessionConfig {
                client_allowed: false,
                ..smtp()
            },
            vec![
                ("EHLO c", "250"),
                ("STARTTLS", "220 2.0.0|tls"),
                // RFC 3207: the greeting is forgotten.
                ("MAIL FROM:<a@b>", "503 5.5.1"),
                ("EHLO c", "250"),
                ("STARTTLS", "503 5.5.1"),
                ("AUTH PLAIN AHUAeA==", "535 5.7.8"),
                ("AUTH PLAIN AHUAcA==", "235 2.7.0"),
                ("AUTH PLAIN AHUAcA==", "503 5.5.1"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
            ],
        ),
        (
            "auth login and cancel",
            SessionConfig {
                client_allowed: false,
                ..smtp()
            },
            vec![
                ("EHLO c", "250"),
                ("STARTTLS", "220 2.0.0|tls"),
                ("EHLO c", "250"),
                ("AUTH LOGIN", "334"),
                ("*", "501 5.7.0"),
                ("AUTH LOGIN", "334"),
                (&user, "334"),
                (&pass, "235 2.7.0"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
            ],
        ),
        (
            "auth plain in two steps, bad base64, unknown mechanism",
            SessionConfig {
                client_allowed: false,
                ..smtp()
            },
            vec![
                ("STARTTLS", "220 2.0.0|tls"),
                ("EHLO c", "250"),
                ("AUTH CRAM-MD5", "504 5.5.4"),
                ("AUTH PLAIN", "334"),
                ("!!", "501 5.5.2"),
                ("AUTH PLAIN", "334"),
                (&plain, "235 2.7.0"),
            ],
        ),
        (
            "no tls, no auth configured",
            SessionConfig {
                tls_available: false,
                auth_available: false,
                ..smtp()
            },
            vec![
                ("EHLO c", "250"),
                ("STARTTLS", "502 5.5.1"),
                ("AUTH PLAIN AHUAcA==", "502 5.5.1"),
            ],
        ),
        (
            "quit closes",
            smtp(),
            vec![("QUIT", "221 2.0.0|close"), ("NOOP", "")],
        ),
        (
            "too many errors",
            smtp(),
            vec![
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2"),
                ("X", "500 5.5.2|421 4.7.0|close"),
            ],
        ),
    ];
    for (name, config, script) in cases {
        eprintln!("case: {name}");
        check(config, &script);
    }
}

#[test]
fn ehlo_advertises_by_state() {
    let ehlo = |config: SessionConfig, tls: bool| {
        let mut s = Session::new(config);
        if tls {
            s.tls_started();
        }
        match s.feed_line(b"EHLO c").remove(0) {
            Output::Reply(r) => r.lines[1..].join(","),
            other => panic!("{other:?}"),
        }
    };
    let base = "PIPELINING,SIZE 100,8BITMIME,ENHANCEDSTATUSCODES,SMTPUTF8";
    assert_eq!(
        ehlo(config(Protocol::Smtp), false),
        format!("{base},STARTTLS")
    );
    assert_eq!(
        ehlo(config(Protocol::Smtp), true),
        format!("{base},AUTH PLAIN LOGIN")
    );
    let plain = SessionConfig {
        tls_available: false,
        auth_available: false,
        ..config(Protocol::Smtp)
    };
    assert_eq!(ehlo(plain, false), base);
}

#[test]
fn lmtp_replies_once_per_recipient() {
    let lmtp = || config(Protocol::Lmtp);
    let y120 = "y".repeat(120);
    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        (
            "helo refused",
            vec![
                ("EHLO c", "500 5.5.1"),
                ("HELO c", "500 5.5.1"),
                ("LHLO c", "250"),
            ],
        ),
        (
            "two recipients, one unknown",
            vec![
                ("LHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<nobody@x.example>", "550 5.1.1"),
                ("RCPT TO:<support@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                ("hello", ""),
                (".", "250 2.0.0|250 2.0.0"),
            ],
        ),
        (
            "store failure per recipient",
            vec![
                ("LHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<support@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                ("FAIL", ""),
                (".", "451 4.3.0|451 4.3.0"),
            ],
        ),
        (
            "over size per recipient",
            vec![
                ("LHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<support@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y120, ""),
                (".", "552 5.3.4|552 5.3.4"),
            ],
        ),
    ];
    for (name, script) in cases {
        eprintln!("case: {name}");
        check(lmtp(), &script);
    }
}

#[test]
fn lmtp_reply_names_the_recipient() {
    let mut s = Session::new(config(Protocol::Lmtp));
    s.feed_line(b"LHLO c");
    s.feed_line(b"MAIL FROM:<a@b>");
    s.feed_line(b"RCPT TO:<sales@x.example>");
    s.recipient_checked(RecipientVerdict::Accepted);
    s.feed_line(b"DATA");
    s.feed_line(b"x");
    let out = s.feed_line(b".");
    assert!(matches!(out.as_slice(), [Output::Deliver { .. }]));
    // A line while the store works is a bug in the I/O layer: the session ends.
    assert_eq!(s.feed_line(b"NOOP").last(), Some(&Output::Close));
    let mut s = Session::new(config(Protocol::Lmtp));
    for line in ["LHLO c", "MAIL FROM:<a@b>", "RCPT TO:<sales@x.example>"] {
        s.feed_line(line.as_bytes());
    }
    s.recipient_checked(RecipientVerdict::Accepted);
    s.feed_line(b"DATA");
    s.feed_line(b".");
    let out = s.delivered(&[DeliveryOutcome::Stored]);
    let [Output::Reply(r)] = out.as_slice() else {
        panic!("{out:?}")
    };
    assert_eq!(
        r.to_wire(),
        "250 2.0.0 <sales@x.example> Message accepted for delivery\r\n"
    );
}

#[test]
fn organization_size_limits_per_recipient() {
    let y40 = "y".repeat(40);
    let y60 = "y".repeat(60);
    let y120 = "y".repeat(120);
    let smtp = || config(Protocol::Smtp);
    let lmtp = || config(Protocol::Lmtp);
    let cases: Vec<Case> = vec![
        (
            "smtp: a declared size above the organization's limit is refused at RCPT",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b> SIZE=60", "250 2.1.0"),
                ("RCPT TO:<small@x.example>", "552 5.3.4"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<huge@x.example>", "250 2.1.5"),
                ("RSET", "250 2.0.0"),
                ("MAIL FROM:<a@b> SIZE=50", "250 2.1.0"),
                ("RCPT TO:<small@x.example>", "250 2.1.5"),
            ],
        ),
        (
            "smtp: without SIZE=, the smallest limit applies after the data",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<small@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y60, ""),
                (".", "552 5.3.4"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<small@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y40, ""),
                (".", "250 2.0.0"),
            ],
        ),
        (
            "smtp: an organization's limit above the listener's does not raise it",
            smtp(),
            vec![
                ("EHLO c", "250"),
                ("MAIL FROM:<a@b> SIZE=101", "552 5.3.4"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<huge@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y120, ""),
                (".", "552 5.3.4"),
            ],
        ),
        (
            "lmtp: refused for the recipient whose limit it exceeds, stored for the other",
            lmtp(),
            vec![
                ("LHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<small@x.example>", "250 2.1.5"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y60, ""),
                (".", "552 5.3.4|250 2.0.0"),
            ],
        ),
        (
            "lmtp: a store failure and a size refusal keep their recipients' order",
            SessionConfig {
                max_recipients: 3,
                ..lmtp()
            },
            vec![
                ("LHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("RCPT TO:<small@x.example>", "250 2.1.5"),
                ("RCPT TO:<support@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                ("FAIL", ""),
                (&y60, ""),
                (".", "451 4.3.0|552 5.3.4|451 4.3.0"),
            ],
        ),
        (
            "lmtp: above every limit, refused for all",
            lmtp(),
            vec![
                ("LHLO c", "250"),
                ("MAIL FROM:<a@b>", "250 2.1.0"),
                ("RCPT TO:<small@x.example>", "250 2.1.5"),
                ("RCPT TO:<sales@x.example>", "250 2.1.5"),
                ("DATA", "354"),
                (&y120, ""),
                (".", "552 5.3.4|552 5.3.4"),
            ],
        ),
    ];
    for (name, config, script) in cases {
        eprintln!("case: {name}");
        check(config, &script);
    }
}

#[test]
fn nothing_above_a_limit_is_handed_over_and_the_refusals_name_the_limit() {
    let y60 = "y".repeat(60);
    // SMTP: refused for all, nothing to store.
    let (got, delivered) = run(
        config(Protocol::Smtp),
        &[
            "EHLO c",
            "MAIL FROM:<a@b>",
            "RCPT TO:<sales@x.example>",
            "RCPT TO:<small@x.example>",
            "DATA",
            &y60,
            ".",
        ],
    );
    assert_eq!(got[6], "552 5.3.4");
    assert!(delivered.is_empty());
    // LMTP: handed over for the recipient whose limit the message fits only.
    let (got, delivered) = run(
        config(Protocol::Lmtp),
        &[
            "LHLO c",
            "MAIL FROM:<a@b>",
            "RCPT TO:<small@x.example>",
            "RCPT TO:<sales@x.example>",
            "DATA",
            &y60,
            ".",
        ],
    );
    assert_eq!(got[6], "552 5.3.4|250 2.0.0");
    let [(envelope, message)] = delivered.as_slice() else {
        panic!("{delivered:?}")
    };
    assert_eq!(envelope.recipients, ["sales@x.example"]);
    assert_eq!(message.len(), 62);

    // The texts name the limit.
    let wire = |out: Vec<Output>| -> Vec<String> {
        out.into_iter()
            .filter_map(|o| match o {
                Output::Reply(r) => Some(r.to_wire()),
                _ => None,
            })
            .collect()
    };
    let mut s = Session::new(config(Protocol::Smtp));
    s.feed_line(b"EHLO c");
    s.feed_line(b"MAIL FROM:<a@b> SIZE=60");
    s.feed_line(b"RCPT TO:<small@x.example>");
    assert_eq!(
        wire(s.recipient_checked(RecipientVerdict::AcceptedUpTo(50))),
        [
            "552 5.3.4 <small@x.example>: message size 60 bytes exceeds the maximum message size of 50 bytes of this recipient's organization\r\n"
        ]
    );
    s.feed_line(b"RCPT TO:<big@x.example>");
    s.recipient_checked(RecipientVerdict::AcceptedUpTo(2048));
    s.feed_line(b"DATA");
    s.feed_line("y".repeat(120).as_bytes());
    assert_eq!(
        wire(s.feed_line(b".")),
        ["552 5.3.4 Message size exceeds this server's maximum message size of 100 bytes\r\n"]
    );
    let mut s = Session::new(SessionConfig {
        max_message_size: 4096,
        ..config(Protocol::Lmtp)
    });
    for line in ["LHLO c", "MAIL FROM:<a@b>", "RCPT TO:<small@x.example>"] {
        s.feed_line(line.as_bytes());
    }
    s.recipient_checked(RecipientVerdict::AcceptedUpTo(1024));
    s.feed_line(b"DATA");
    for _ in 0..2 {
        s.feed_line("y".repeat(600).as_bytes());
    }
    assert_eq!(
        wire(s.feed_line(b".")),
        [
            "552 5.3.4 <small@x.example> Message size exceeds the maximum message size of 1 KB for this recipient\r\n"
        ]
    );
}
