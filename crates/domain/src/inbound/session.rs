//! The SMTP/LMTP server state machine: command lines and message lines in, replies
//! and requests for the I/O layer out. It never waits: where an answer needs the store
//! or the credentials (a recipient, a login, the stored message, the TLS handshake) it
//! returns an [`Output`] asking for it and waits for the matching call
//! ([`Session::recipient_checked`], [`Session::authenticated`], [`Session::delivered`],
//! [`Session::tls_started`]) before reading the next line.

use base64::Engine as _;

use super::command::{
    Command, CommandError, MAX_COMMAND_LINE, MAX_TEXT_LINE, MailParams, parse_command,
};
use super::reply::Reply;
use crate::secret::Secret;

#[cfg(test)]
mod tests;

/// After this many refused commands the session is closed with 421, so that a
/// confused or hostile client cannot hold a connection forever.
pub const MAX_ERRORS: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Smtp,
    Lmtp,
}

/// What the session needs to know about this server and this client.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub protocol: Protocol,
    /// The name this server gives in its greeting.
    pub hostname: String,
    /// The listener's own limit, advertised as `SIZE` and the upper bound for every
    /// organization; 552 above it. Each recipient's organization may set a smaller
    /// one (see [`RecipientVerdict::AcceptedUpTo`]).
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// A certificate is configured, so STARTTLS is offered.
    pub tls_available: bool,
    /// Users are configured, so AUTH is offered (on TLS only).
    pub auth_available: bool,
    /// The client's address is on the allow-list: no AUTH needed.
    pub client_allowed: bool,
}

/// The envelope of one message (RFC 5321 §2.3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// Empty for the null reverse-path `<>` (bounces).
    pub from: String,
    /// The accepted recipients, in the order given.
    pub recipients: Vec<String>,
    pub params: MailParams,
    /// The identity that authenticated, if any.
    pub authenticated_as: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Write this reply.
    Reply(Reply),
    /// Write the replies so far, then do the TLS handshake and call
    /// [`Session::tls_started`].
    StartTls,
    /// Look this recipient up and call [`Session::recipient_checked`].
    CheckRecipient(String),
    /// Check these credentials and call [`Session::authenticated`].
    Authenticate { identity: String, password: Secret },
    /// Store the message durably (all recipients at once) and call
    /// [`Session::delivered`]; only then is it acknowledged.
    Deliver {
        envelope: Envelope,
        message: Vec<u8>,
    },
    /// Write the replies so far and close the connection.
    Close,
}

/// The answer to [`Output::CheckRecipient`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecipientVerdict {
    /// Accepted; only the listener's own size limit applies.
    Accepted,
    /// Accepted, for an organization that takes messages up to this many bytes
    /// (its `max_message_size_kb`). A size declared at MAIL (`SIZE=`) above it is
    /// refused for this recipient with 552 at RCPT.
    AcceptedUpTo(u64),
    /// No router mailbox has this address: 550.
    Unknown,
    /// The look-up failed (the store is down): 451, the client tries again.
    TemporaryFailure,
}

/// The answer to [`Output::Deliver`], per recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Durably stored: 250.
    Stored,
    /// Not stored: 451, so that the sending server tries again and nothing is lost.
    TemporaryFailure,
}

#[derive(Debug)]
struct Transaction {
    from: String,
    params: MailParams,
    recipients: Vec<String>,
    /// Each recipient's size limit in bytes (its organization's, capped by the
    /// listener's), in the order of `recipients`.
    limits: Vec<u64>,
    /// LMTP, after the data: for each recipient, the limit the message is above
    /// (answered 552), or `None` for those handed over for storing.
    too_big: Vec<Option<u64>>,
}

/// A size for a reply: in KB when it is a whole number of KB (as organizations
/// set it), else in bytes.
fn size_text(bytes: u64) -> String {
    if bytes > 0 && bytes.is_multiple_of(1024) {
        format!("{} KB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// For each recipient's limit, that limit if a message of `size` bytes is above
/// it, else `None`.
fn over_limits(size: u64, limits: &[u64]) -> Vec<Option<u64>> {
    limits
        .iter()
        .map(|limit| (size > *limit).then_some(*limit))
        .collect()
}

/// The most message text worth holding for these recipient limits: SMTP refuses
/// the message for all when it is above the smallest; LMTP stores it for those
/// whose limit it fits, so up to the largest. Never above the listener's own.
fn data_limit(protocol: Protocol, node: u64, limits: &[u64]) -> u64 {
    let limit = match protocol {
        Protocol::Smtp => limits.iter().min(),
        Protocol::Lmtp => limits.iter().max(),
    };
    limit.map_or(node, |l| (*l).min(node))
}

/// LMTP: the 552 for one recipient whose limit the message is above.
fn too_big_reply(recipient: &str, limit: u64) -> Output {
    reply(
        552,
        "5.3.4",
        format!(
            "<{recipient}> Message size exceeds the maximum message size of {} for this recipient",
            size_text(limit)
        ),
    )
}

#[derive(Debug)]
enum Mode {
    Command,
    Data {
        message: Vec<u8>,
        size: u64,
        over_size: bool,
        long_line: bool,
    },
    AuthPlain,
    AuthLoginUser,
    AuthLoginPassword {
        identity: String,
    },
    WaitRecipient(String),
    WaitAuth(String),
    WaitDelivery,
    WaitTls,
    Closed,
}

/// One connection's protocol state.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    helo: Option<String>,
    tls: bool,
    authenticated: Option<String>,
    transaction: Option<Transaction>,
    mode: Mode,
    errors: u32,
}

fn reply(code: u16, enhanced: &'static str, text: impl Into<String>) -> Output {
    Output::Reply(Reply::new(code, enhanced, text))
}

impl Session {
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            helo: None,
            tls: false,
            authenticated: None,
            transaction: None,
            mode: Mode::Command,
            errors: 0,
        }
    }

    /// The 220 greeting, sent when the connection opens.
    pub fn greeting(&self) -> Output {
        let kind = match self.config.protocol {
            Protocol::Smtp => "ESMTP",
            Protocol::Lmtp => "LMTP",
        };
        Output::Reply(Reply::plain(
            220,
            vec![format!("{} {kind} mailbridge ready", self.config.hostname)],
        ))
    }

    /// Whether the session is in the message text (for the I/O layer's line limit).
    pub fn in_data(&self) -> bool {
        matches!(self.mode, Mode::Data { .. })
    }

    pub fn is_closed(&self) -> bool {
        matches!(self.mode, Mode::Closed)
    }

    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// One line from the client, without its CRLF (or bare LF).
    pub fn feed_line(&mut self, line: &[u8]) -> Vec<Output> {
        let mode = std::mem::replace(&mut self.mode, Mode::Command);
        match mode {
            Mode::Command => self.command_line(line),
            Mode::Data {
                message,
                size,
                over_size,
                long_line,
            } => self.data_line(line, message, size, over_size, long_line),
            Mode::AuthPlain => self.auth_response(line, |s, bytes| s.auth_plain(&bytes)),
            Mode::AuthLoginUser => self.auth_response(line, |s, bytes| {
                s.mode = Mode::AuthLoginPassword {
                    identity: String::from_utf8_lossy(&bytes).into_owned(),
                };
                vec![Output::Reply(Reply::plain(
                    334,
                    vec!["UGFzc3dvcmQ6".into()],
                ))]
            }),
            Mode::AuthLoginPassword { identity } => self.auth_response(line, move |s, bytes| {
                s.mode = Mode::WaitAuth(identity.clone());
                vec![Output::Authenticate {
                    identity,
                    password: Secret::new(String::from_utf8_lossy(&bytes)),
                }]
            }),
            Mode::Closed => {
                self.mode = Mode::Closed;
                Vec::new()
            }
            waiting => {
                // The I/O layer must answer the pending request before it reads on; a
                // line now is a bug there, and the safe answer is to end the session.
                self.mode = waiting;
                self.close(reply(421, "4.3.0", "Internal error, closing connection"))
            }
        }
    }

    /// The answer to [`Output::CheckRecipient`].
    pub fn recipient_checked(&mut self, verdict: RecipientVerdict) -> Vec<Output> {
        let Mode::WaitRecipient(to) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return Vec::new();
        };
        match verdict {
            RecipientVerdict::Accepted => self.accept_recipient(to, self.config.max_message_size),
            RecipientVerdict::AcceptedUpTo(limit) => {
                let limit = limit.min(self.config.max_message_size);
                let declared = self.transaction.as_ref().and_then(|t| t.params.size);
                match declared {
                    // RFC 1870 §6.1: a size too large for this recipient is refused
                    // at RCPT, so the client need not send the data at all.
                    Some(size) if size > limit => vec![reply(
                        552,
                        "5.3.4",
                        format!(
                            "<{to}>: message size {size} bytes exceeds the maximum message size of {} of this recipient's organization",
                            size_text(limit)
                        ),
                    )],
                    _ => self.accept_recipient(to, limit),
                }
            }
            RecipientVerdict::Unknown => self.error(reply(
                550,
                "5.1.1",
                format!("<{to}>: no mailbox routes mail to this address"),
            )),
            RecipientVerdict::TemporaryFailure => {
                vec![reply(
                    451,
                    "4.3.0",
                    "Cannot check the recipient now, try again later",
                )]
            }
        }
    }

    fn accept_recipient(&mut self, to: String, limit: u64) -> Vec<Output> {
        if let Some(t) = self.transaction.as_mut() {
            t.recipients.push(to);
            t.limits.push(limit);
        }
        vec![reply(250, "2.1.5", "Recipient OK")]
    }

    /// The answer to [`Output::Authenticate`].
    pub fn authenticated(&mut self, ok: bool) -> Vec<Output> {
        let Mode::WaitAuth(identity) = std::mem::replace(&mut self.mode, Mode::Command) else {
            return Vec::new();
        };
        if ok {
            self.authenticated = Some(identity);
            vec![reply(235, "2.7.0", "Authentication successful")]
        } else {
            self.error(reply(535, "5.7.8", "Authentication credentials invalid"))
        }
    }

    /// The answer to [`Output::Deliver`]: one outcome per recipient (for SMTP the
    /// message is stored for all at once, so one outcome repeated is expected).
    pub fn delivered(&mut self, outcomes: &[DeliveryOutcome]) -> Vec<Output> {
        if !matches!(self.mode, Mode::WaitDelivery) {
            return Vec::new();
        }
        self.mode = Mode::Command;
        let (recipients, too_big) = self
            .transaction
            .take()
            .map(|t| (t.recipients, t.too_big))
            .unwrap_or_default();
        let outcome = |i: usize| {
            outcomes
                .get(i)
                .copied()
                .unwrap_or(DeliveryOutcome::TemporaryFailure)
        };
        let answer = |o: DeliveryOutcome, who: &str| match o {
            DeliveryOutcome::Stored => {
                reply(250, "2.0.0", format!("{who}Message accepted for delivery"))
            }
            DeliveryOutcome::TemporaryFailure => reply(
                451,
                "4.3.0",
                format!("{who}Message not stored, try again later"),
            ),
        };
        match self.config.protocol {
            Protocol::Smtp => {
                let all_stored =
                    (0..recipients.len().max(1)).all(|i| outcome(i) == DeliveryOutcome::Stored);
                let o = if all_stored {
                    DeliveryOutcome::Stored
                } else {
                    DeliveryOutcome::TemporaryFailure
                };
                vec![answer(o, "")]
            }
            Protocol::Lmtp => {
                // The outcomes are those of the recipients handed over, in order;
                // the ones refused for size were not handed over and get their 552.
                let mut stored = 0;
                recipients
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        if let Some(Some(limit)) = too_big.get(i) {
                            too_big_reply(r, *limit)
                        } else {
                            stored += 1;
                            answer(outcome(stored - 1), &format!("<{r}> "))
                        }
                    })
                    .collect()
            }
        }
    }

    /// The TLS handshake after STARTTLS succeeded: RFC 3207 §4.2, everything known
    /// before it is forgotten and the client must greet again.
    pub fn tls_started(&mut self) {
        self.tls = true;
        self.helo = None;
        self.authenticated = None;
        self.transaction = None;
        self.mode = Mode::Command;
    }

    fn close(&mut self, output: Output) -> Vec<Output> {
        self.mode = Mode::Closed;
        vec![output, Output::Close]
    }

    /// A refused command; too many of them end the session.
    fn error(&mut self, output: Output) -> Vec<Output> {
        self.errors += 1;
        if self.errors >= MAX_ERRORS {
            let mut out = vec![output];
            out.extend(self.close(reply(421, "4.7.0", "Too many errors, closing connection")));
            out
        } else {
            vec![output]
        }
    }

    fn authorized(&self) -> bool {
        self.config.client_allowed || self.authenticated.is_some()
    }

    fn ehlo_lines(&self, client: &str) -> Vec<String> {
        let mut lines = vec![
            format!("{} greets {client}", self.config.hostname),
            "PIPELINING".into(),
            format!("SIZE {}", self.config.max_message_size),
            "8BITMIME".into(),
            "ENHANCEDSTATUSCODES".into(),
            "SMTPUTF8".into(),
        ];
        if self.config.tls_available && !self.tls {
            lines.push("STARTTLS".into());
        }
        if self.config.auth_available && self.tls {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        lines
    }

    fn command_line(&mut self, line: &[u8]) -> Vec<Output> {
        if line.len() + 2 > MAX_COMMAND_LINE {
            return self.error(reply(500, "5.5.2", "Line too long"));
        }
        let Ok(text) = std::str::from_utf8(line) else {
            return self.error(reply(500, "5.5.2", "Command not recognized"));
        };
        let command = match parse_command(text) {
            Ok(c) => c,
            Err(CommandError::Syntax(why)) => return self.error(reply(501, "5.5.4", why)),
            Err(CommandError::UnknownParameter(p)) => {
                return self.error(reply(555, "5.5.4", format!("Unsupported parameter {p}")));
            }
        };
        let lmtp = self.config.protocol == Protocol::Lmtp;
        match command {
            Command::Helo(_) | Command::Ehlo(_) if lmtp => {
                self.error(reply(500, "5.5.1", "This is LMTP: greet with LHLO"))
            }
            Command::Lhlo(_) if !lmtp => self.error(reply(500, "5.5.2", "Command not recognized")),
            Command::Helo(client) => {
                self.helo = Some(client.clone());
                self.transaction = None;
                vec![Output::Reply(Reply::plain(
                    250,
                    vec![format!("{} greets {client}", self.config.hostname)],
                ))]
            }
            Command::Ehlo(client) | Command::Lhlo(client) => {
                let lines = self.ehlo_lines(&client);
                self.helo = Some(client);
                self.transaction = None;
                vec![Output::Reply(Reply::plain(250, lines))]
            }
            Command::Mail { from, params } => {
                if self.helo.is_none() {
                    return self.error(reply(503, "5.5.1", "Send EHLO first"));
                }
                if self.transaction.is_some() {
                    return self.error(reply(503, "5.5.1", "Nested MAIL command"));
                }
                if !self.authorized() {
                    return self.error(reply(530, "5.7.0", "Authentication required"));
                }
                if params
                    .size
                    .is_some_and(|s| s > self.config.max_message_size)
                {
                    return self.error(reply(
                        552,
                        "5.3.4",
                        "Message size exceeds fixed maximum message size",
                    ));
                }
                self.transaction = Some(Transaction {
                    from,
                    params,
                    recipients: Vec::new(),
                    limits: Vec::new(),
                    too_big: Vec::new(),
                });
                vec![reply(250, "2.1.0", "Sender OK")]
            }
            Command::Rcpt { to } => {
                let Some(t) = &self.transaction else {
                    return self.error(reply(503, "5.5.1", "Need MAIL before RCPT"));
                };
                if t.recipients.len() >= self.config.max_recipients {
                    return vec![reply(452, "4.5.3", "Too many recipients")];
                }
                self.mode = Mode::WaitRecipient(to.clone());
                vec![Output::CheckRecipient(to)]
            }
            Command::Data => {
                let Some(t) = &self.transaction else {
                    return self.error(reply(503, "5.5.1", "Need MAIL before DATA"));
                };
                if t.recipients.is_empty() {
                    return self.error(reply(554, "5.5.1", "No valid recipients"));
                }
                self.mode = Mode::Data {
                    message: Vec::new(),
                    size: 0,
                    over_size: false,
                    long_line: false,
                };
                vec![Output::Reply(Reply::plain(
                    354,
                    vec!["End data with <CR><LF>.<CR><LF>".into()],
                ))]
            }
            Command::Rset => {
                self.transaction = None;
                vec![reply(250, "2.0.0", "OK")]
            }
            Command::Noop => vec![reply(250, "2.0.0", "OK")],
            Command::Vrfy => vec![reply(252, "2.5.0", "Cannot verify, send mail to find out")],
            Command::Help => vec![reply(214, "2.0.0", "See RFC 5321")],
            Command::Quit => self.close(reply(221, "2.0.0", "Bye")),
            Command::StartTls => {
                if self.tls {
                    self.error(reply(503, "5.5.1", "TLS already active"))
                } else if !self.config.tls_available {
                    self.error(reply(502, "5.5.1", "STARTTLS not available"))
                } else {
                    self.mode = Mode::WaitTls;
                    vec![reply(220, "2.0.0", "Ready to start TLS"), Output::StartTls]
                }
            }
            Command::Auth { mechanism, initial } => self.auth(&mechanism, initial),
            Command::Unknown(_) => self.error(reply(500, "5.5.2", "Command not recognized")),
        }
    }

    fn auth(&mut self, mechanism: &str, initial: Option<String>) -> Vec<Output> {
        if !self.config.auth_available {
            return self.error(reply(502, "5.5.1", "AUTH not available"));
        }
        if !self.tls {
            return self.error(reply(
                538,
                "5.7.11",
                "Encryption required: use STARTTLS before AUTH",
            ));
        }
        if self.helo.is_none() {
            return self.error(reply(503, "5.5.1", "Send EHLO first"));
        }
        if self.authenticated.is_some() || self.transaction.is_some() {
            return self.error(reply(503, "5.5.1", "AUTH not allowed now"));
        }
        match (mechanism, initial) {
            ("PLAIN", Some(i)) => self.auth_response(i.as_bytes(), |s, b| s.auth_plain(&b)),
            ("PLAIN", None) => {
                self.mode = Mode::AuthPlain;
                vec![Output::Reply(Reply::plain(334, vec![String::new()]))]
            }
            ("LOGIN", Some(i)) => {
                self.mode = Mode::AuthLoginUser;
                self.feed_line(i.as_bytes())
            }
            ("LOGIN", None) => {
                self.mode = Mode::AuthLoginUser;
                vec![Output::Reply(Reply::plain(
                    334,
                    vec!["VXNlcm5hbWU6".into()],
                ))]
            }
            _ => self.error(reply(504, "5.5.4", "Unrecognized authentication mechanism")),
        }
    }

    /// A base64 line of an AUTH exchange (RFC 4954 §4): `*` cancels.
    fn auth_response(
        &mut self,
        line: &[u8],
        then: impl FnOnce(&mut Self, Vec<u8>) -> Vec<Output>,
    ) -> Vec<Output> {
        self.mode = Mode::Command;
        if line == b"*" {
            return self.error(reply(501, "5.7.0", "Authentication cancelled"));
        }
        match base64::engine::general_purpose::STANDARD.decode(line) {
            Ok(bytes) => then(self, bytes),
            Err(_) => self.error(reply(501, "5.5.2", "Invalid base64")),
        }
    }

    /// `authzid NUL authcid NUL passwd` (RFC 4616); an authorization identity other
    /// than the authentication identity is refused.
    fn auth_plain(&mut self, bytes: &[u8]) -> Vec<Output> {
        let parts: Vec<&[u8]> = bytes.split(|b| *b == 0).collect();
        let [authz, authc, password] = parts.as_slice() else {
            return self.error(reply(501, "5.5.2", "Malformed PLAIN response"));
        };
        if !authz.is_empty() && authz != authc {
            return self.error(reply(535, "5.7.8", "Authentication credentials invalid"));
        }
        let identity = String::from_utf8_lossy(authc).into_owned();
        self.mode = Mode::WaitAuth(identity.clone());
        vec![Output::Authenticate {
            identity,
            password: Secret::new(String::from_utf8_lossy(password)),
        }]
    }

    fn data_line(
        &mut self,
        line: &[u8],
        mut message: Vec<u8>,
        mut size: u64,
        mut over_size: bool,
        mut long_line: bool,
    ) -> Vec<Output> {
        if line == b"." {
            return self.end_of_data(message, size, over_size, long_line);
        }
        // Dot-unstuffing (RFC 5321 §4.5.2).
        let line = line.strip_prefix(b".").unwrap_or(line);
        if line.len() + 2 > MAX_TEXT_LINE {
            long_line = true;
        }
        size += line.len() as u64 + 2;
        if size > self.data_limit() {
            // Keep reading to the final dot, but stop holding the text.
            over_size = true;
            message = Vec::new();
        }
        if !over_size && !long_line {
            message.extend_from_slice(line);
            message.extend_from_slice(b"\r\n");
        }
        self.mode = Mode::Data {
            message,
            size,
            over_size,
            long_line,
        };
        Vec::new()
    }

    /// How much of this transaction's message text is held (see [`data_limit`]).
    fn data_limit(&self) -> u64 {
        let limits = self.transaction.as_ref().map_or(&[][..], |t| &t.limits);
        data_limit(self.config.protocol, self.config.max_message_size, limits)
    }

    fn end_of_data(
        &mut self,
        message: Vec<u8>,
        size: u64,
        over_size: bool,
        long_line: bool,
    ) -> Vec<Output> {
        let Some(mut t) = self.transaction.take() else {
            return Vec::new();
        };
        // Nothing above a recipient's limit is stored for that recipient.
        let too_big = over_limits(size, &t.limits);
        if over_size || too_big.iter().any(Option::is_some) {
            match self.config.protocol {
                Protocol::Smtp => {
                    let node = self.config.max_message_size;
                    let limit = data_limit(Protocol::Smtp, node, &t.limits);
                    let whose = if limit >= node {
                        "this server's"
                    } else {
                        "a recipient's organization's"
                    };
                    let text = format!(
                        "Message size exceeds {whose} maximum message size of {}",
                        size_text(limit)
                    );
                    return vec![reply(552, "5.3.4", text)];
                }
                Protocol::Lmtp if too_big.iter().all(Option::is_some) => {
                    return t
                        .recipients
                        .iter()
                        .zip(&too_big)
                        .map(|(r, limit)| too_big_reply(r, limit.unwrap_or_default()))
                        .collect();
                }
                Protocol::Lmtp => {}
            }
        }
        if long_line {
            let text = "A line of the message is longer than 998 characters";
            let count = match self.config.protocol {
                Protocol::Smtp => 1,
                Protocol::Lmtp => t.recipients.len(),
            };
            return (0..count).map(|_| reply(554, "5.6.0", text)).collect();
        }
        // A message over the largest LMTP limit was not held, and every recipient
        // refused it above; here it fits at least one.
        let envelope = Envelope {
            from: t.from.clone(),
            recipients: t
                .recipients
                .iter()
                .zip(&too_big)
                .filter(|(_, over)| over.is_none())
                .map(|(r, _)| r.clone())
                .collect(),
            params: t.params.clone(),
            authenticated_as: self.authenticated.clone(),
        };
        t.too_big = too_big;
        self.transaction = Some(t);
        self.mode = Mode::WaitDelivery;
        vec![Output::Deliver { envelope, message }]
    }
}
