//! The IMAP and SMTP dialogues of the scripted servers (tests/support/scripted.rs):
//! STARTTLS when asked, the SASL mechanisms given, and bearer tokens refused the way
//! Gmail and Outlook refuse them (a challenge holding a JSON error, then NO or 535).

#![allow(dead_code)]

use crate::scripted::{Dialogue, Reply, Transcript, decode, encode};

/// The JSON error of a refused bearer token, as Gmail sends it.
pub const TOKEN_ERROR: &str =
    r#"{"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}"#;

/// How a scripted server behaves.
#[derive(Debug, Clone, Copy)]
pub struct Behaviour {
    /// Offers STARTTLS in the clear, and takes credentials only over TLS then.
    pub starttls: bool,
    /// The SASL mechanisms offered where credentials are taken (e.g. `PLAIN`).
    pub mechanisms: &'static [&'static str],
    /// Refuses bearer tokens, echoing the token in its refusal (as a careless
    /// server might) so that tests see it is scrubbed.
    pub refuse_tokens: bool,
}

impl Behaviour {
    fn credentials_welcome(&self, tls: bool) -> bool {
        tls || !self.starttls
    }
}

/// The token in a decoded XOAUTH2 or OAUTHBEARER response.
fn bearer_token(response: &str) -> String {
    response
        .split('\x01')
        .find_map(|pair| pair.strip_prefix("auth=Bearer "))
        .unwrap_or_default()
        .to_owned()
}

fn is_bearer(mechanism: &str) -> bool {
    matches!(mechanism, "XOAUTH2" | "OAUTHBEARER")
}

/// A minimal IMAP server; tags and commands as RFC 3501 has them.
pub struct ImapServer {
    behaviour: Behaviour,
    /// An AUTHENTICATE under way: its tag, mechanism and the responses so far.
    authenticating: Option<(String, String, Vec<String>)>,
    logged_in: bool,
}

impl ImapServer {
    pub fn new(behaviour: Behaviour) -> ImapServer {
        ImapServer {
            behaviour,
            authenticating: None,
            logged_in: false,
        }
    }

    fn capabilities(&self, tls: bool) -> String {
        if self.logged_in {
            return "IMAP4rev1 IDLE MOVE UIDPLUS".to_owned();
        }
        if !self.behaviour.credentials_welcome(tls) {
            return "IMAP4rev1 STARTTLS LOGINDISABLED".to_owned();
        }
        let mut caps = "IMAP4rev1".to_owned();
        for mechanism in self.behaviour.mechanisms {
            caps.push_str(&format!(" AUTH={mechanism}"));
        }
        caps
    }

    /// The next step of an AUTHENTICATE under way.
    fn authenticate(&mut self, tag: String, mechanism: String, responses: Vec<String>) -> Reply {
        let refuse = self.behaviour.refuse_tokens && is_bearer(&mechanism);
        match (refuse, responses.len()) {
            (true, 1) => {
                let challenge = format!("+ {}", encode(TOKEN_ERROR));
                self.authenticating = Some((tag, mechanism, responses));
                Reply::Send(vec![challenge])
            }
            (true, _) => {
                let token = bearer_token(&decode(&responses[0]));
                Reply::Send(vec![format!(
                    "{tag} NO [AUTHENTICATIONFAILED] Invalid credentials (token {token} expired)"
                )])
            }
            (false, _) => {
                self.logged_in = true;
                Reply::Send(vec![format!("{tag} OK Logged in")])
            }
        }
    }
}

impl Dialogue for ImapServer {
    fn greeting(&self) -> String {
        format!(
            "* OK [CAPABILITY {}] scripted IMAP ready",
            self.capabilities(false)
        )
    }

    fn reply(&mut self, line: &str, tls: bool) -> Reply {
        if let Some((tag, mechanism, mut responses)) = self.authenticating.take() {
            responses.push(line.to_owned());
            return self.authenticate(tag, mechanism, responses);
        }
        let Some((tag, command)) = line.split_once(' ') else {
            return Reply::Send(vec!["* BAD no tag".to_owned()]);
        };
        let upper = command.to_ascii_uppercase();
        let done = |text: &str| format!("{tag} {text}");
        if upper == "STARTTLS" && self.behaviour.starttls && !tls {
            return Reply::StartTls(vec![done("OK Begin TLS negotiation now")]);
        }
        if upper == "CAPABILITY" {
            let caps = format!("* CAPABILITY {}", self.capabilities(tls));
            return Reply::Send(vec![caps, done("OK done")]);
        }
        if let Some(mechanism) = upper.strip_prefix("AUTHENTICATE ") {
            if !self
                .capabilities(tls)
                .contains(&format!("AUTH={mechanism}"))
            {
                return Reply::Send(vec![done("NO [CANNOT] not offered here")]);
            }
            self.authenticating = Some((tag.to_owned(), mechanism.to_owned(), Vec::new()));
            return Reply::Send(vec!["+ ".to_owned()]);
        }
        if upper.starts_with("LOGIN ") {
            if !self.behaviour.credentials_welcome(tls) {
                return Reply::Send(vec![done("NO [PRIVACYREQUIRED] use STARTTLS first")]);
            }
            self.logged_in = true;
            return Reply::Send(vec![done("OK Logged in")]);
        }
        if upper.starts_with("EXAMINE ") || upper.starts_with("SELECT ") {
            return Reply::Send(vec![
                "* FLAGS (\\Seen \\Answered)".to_owned(),
                "* 2 EXISTS".to_owned(),
                "* 0 RECENT".to_owned(),
                "* OK [UIDVALIDITY 42] UIDs valid".to_owned(),
                "* OK [UIDNEXT 3] Predicted next UID".to_owned(),
                done("OK [READ-ONLY] done"),
            ]);
        }
        if upper == "LOGOUT" {
            return Reply::Close(vec!["* BYE bye".to_owned(), done("OK done")]);
        }
        if upper == "STARTTLS" {
            return Reply::Send(vec![done("BAD STARTTLS is not available")]);
        }
        Reply::Send(vec![done("OK done")])
    }
}

/// What an SMTP server waits for besides a command.
enum SmtpWait {
    Command,
    /// AUTH LOGIN: the user name (0), then the password (1).
    Login(u8),
    /// AUTH PLAIN without an initial response.
    Plain,
    /// The answer to the JSON error challenge of a refused token, which names it.
    TokenError(String),
    Data,
}

/// A minimal SMTP submission server.
pub struct SmtpServer {
    behaviour: Behaviour,
    wait: SmtpWait,
}

impl SmtpServer {
    pub fn new(behaviour: Behaviour) -> SmtpServer {
        SmtpServer {
            behaviour,
            wait: SmtpWait::Command,
        }
    }

    fn ehlo(&self, tls: bool) -> Vec<String> {
        let mut extensions = vec!["scripted.example".to_owned(), "8BITMIME".to_owned()];
        if self.behaviour.starttls && !tls {
            extensions.push("STARTTLS".to_owned());
        }
        if self.behaviour.credentials_welcome(tls) && !self.behaviour.mechanisms.is_empty() {
            extensions.push(format!("AUTH {}", self.behaviour.mechanisms.join(" ")));
        }
        let last = extensions.len() - 1;
        extensions
            .iter()
            .enumerate()
            .map(|(i, e)| format!("250{}{e}", if i == last { ' ' } else { '-' }))
            .collect()
    }

    fn auth(&mut self, rest: &str, tls: bool) -> String {
        let (mechanism, initial) = rest.split_once(' ').unwrap_or((rest, ""));
        let mechanism = mechanism.to_ascii_uppercase();
        if !self.behaviour.credentials_welcome(tls)
            || !self.behaviour.mechanisms.contains(&mechanism.as_str())
        {
            return "504 5.5.4 Unrecognized authentication type".to_owned();
        }
        let reply = match (mechanism.as_str(), initial.is_empty()) {
            ("LOGIN", _) => {
                self.wait = SmtpWait::Login(0);
                "334 VXNlcm5hbWU6"
            }
            ("PLAIN", true) => {
                self.wait = SmtpWait::Plain;
                "334 "
            }
            ("XOAUTH2", false) if self.behaviour.refuse_tokens => {
                self.wait = SmtpWait::TokenError(bearer_token(&decode(initial)));
                return format!("334 {}", encode(TOKEN_ERROR));
            }
            _ => "235 2.7.0 Authentication successful",
        };
        reply.to_owned()
    }
}

impl Dialogue for SmtpServer {
    fn greeting(&self) -> String {
        "220 scripted.example ESMTP ready".to_owned()
    }

    fn reply(&mut self, line: &str, tls: bool) -> Reply {
        let said = |text: &str| Reply::Send(vec![text.to_owned()]);
        match std::mem::replace(&mut self.wait, SmtpWait::Command) {
            SmtpWait::Command => {}
            SmtpWait::Data if line == "." => return said("250 2.0.0 queued as 4711"),
            SmtpWait::Data => {
                self.wait = SmtpWait::Data;
                return Reply::Send(Vec::new());
            }
            SmtpWait::Login(0) => {
                self.wait = SmtpWait::Login(1);
                return said("334 UGFzc3dvcmQ6");
            }
            SmtpWait::Login(_) | SmtpWait::Plain => {
                return said("235 2.7.0 Authentication successful");
            }
            SmtpWait::TokenError(token) => {
                return said(&format!(
                    "535 5.7.8 Username and Password not accepted (token {token} expired)"
                ));
            }
        }
        let upper = line.to_ascii_uppercase();
        if upper.starts_with("EHLO ") {
            return Reply::Send(self.ehlo(tls));
        }
        if upper == "STARTTLS" && self.behaviour.starttls && !tls {
            return Reply::StartTls(vec!["220 2.0.0 Ready to start TLS".to_owned()]);
        }
        if let Some(rest) = line.get(5..).filter(|_| upper.starts_with("AUTH ")) {
            return Reply::Send(vec![self.auth(rest, tls)]);
        }
        if upper == "DATA" {
            self.wait = SmtpWait::Data;
            return said("354 End data with <CR><LF>.<CR><LF>");
        }
        if upper == "QUIT" {
            return Reply::Close(vec!["221 2.0.0 Bye".to_owned()]);
        }
        if upper == "STARTTLS" {
            return said("502 5.5.1 STARTTLS is not available");
        }
        said("250 2.0.0 OK")
    }
}

/// The message of the first DATA heard, as the server stores it: the lines up to
/// the lone dot, dot-stuffing undone (RFC 5321 4.5.2), line ends as sent.
pub fn smtp_data(transcript: &Transcript) -> String {
    let heard = transcript.heard();
    let start = heard
        .iter()
        .position(|h| h.line().eq_ignore_ascii_case("DATA"))
        .expect("a DATA command");
    heard[start + 1..]
        .iter()
        .take_while(|h| h.line() != ".")
        .map(|h| h.raw.strip_prefix('.').unwrap_or(&h.raw).to_owned())
        .collect()
}
