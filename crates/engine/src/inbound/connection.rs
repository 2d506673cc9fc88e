//! One connection: reads lines (bounded in length and time), feeds them to the
//! session, answers its requests (recipient look-ups, logins, the durable write,
//! the TLS handshake) and writes its replies.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;

use mailbridge_domain::inbound::command::{MAX_COMMAND_LINE, MAX_TEXT_LINE};
use mailbridge_domain::inbound::session::RecipientVerdict;
use mailbridge_domain::inbound::{
    DeliveryOutcome, Envelope, Output, Protocol, RecipientMatch, Reply, Session, SessionConfig,
    cidr,
};
use mailbridge_store::{InboundRecipient, ReceivedMessage};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use super::Shared;
use crate::metrics::{EngineMetrics, InboundMessageOutcome, InboundRecipientOutcome};

trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// The bytes kept of one line: one more than the longest allowed, so that the
/// session sees an over-long line as such; the rest of it is read and dropped.
const LINE_CAP: usize = MAX_TEXT_LINE + 1;

/// Answers a connection over the limit and closes it.
pub(super) async fn refuse_busy(mut stream: TcpStream) {
    let reply = Reply::new(421, "4.7.0", "Too many connections, try again later");
    let _ = stream.write_all(reply.to_wire().as_bytes()).await;
    let _ = stream.shutdown().await;
}

pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    protocol: Protocol,
    shared: &Shared,
) {
    let config = &shared.config;
    let mut session = Session::new(SessionConfig {
        protocol,
        hostname: config.hostname.clone(),
        max_message_size: config.max_message_size,
        max_recipients: config.max_recipients,
        tls_available: config.tls.is_some(),
        auth_available: !config.users.is_empty(),
        client_allowed: cidr::allowed(&config.allowed_clients, peer.ip()),
    });
    let mut conn = Connection {
        reader: BufReader::new(Box::new(stream)),
        peer,
        protocol,
        shared,
        accepted: HashMap::new(),
    };
    if let Err(e) = conn.run(&mut session).await {
        tracing::debug!(%peer, error = %e, "inbound connection ended");
    }
}

struct Connection<'a> {
    reader: BufReader<Box<dyn Io>>,
    peer: SocketAddr,
    protocol: Protocol,
    shared: &'a Shared,
    /// The router mailbox of each recipient accepted on this connection.
    accepted: HashMap<String, RecipientMatch>,
}

enum Line {
    Eof,
    Read(Vec<u8>),
}

impl Connection<'_> {
    async fn run(&mut self, session: &mut Session) -> std::io::Result<()> {
        let mut out = String::new();
        self.answer(session, vec![session.greeting()], &mut out)
            .await?;
        loop {
            let timeout = if session.in_data() {
                self.shared.config.data_timeout
            } else {
                self.shared.config.command_timeout
            };
            let line = match tokio::time::timeout(timeout, read_line(&mut self.reader)).await {
                Ok(line) => line?,
                Err(_) => {
                    let reply = Reply::new(421, "4.4.2", "Timeout, closing connection");
                    self.write(&reply.to_wire()).await?;
                    return Ok(());
                }
            };
            let Line::Read(line) = line else {
                return Ok(());
            };
            let in_data = session.in_data();
            let outputs = session.feed_line(&line);
            self.count_refusals(in_data, &outputs);
            if !self.answer(session, outputs, &mut out).await? {
                return Ok(());
            }
        }
    }

    /// Carries out the session's outputs (and those they lead to); false once the
    /// connection is to be closed.
    async fn answer(
        &mut self,
        session: &mut Session,
        outputs: Vec<Output>,
        out: &mut String,
    ) -> std::io::Result<bool> {
        let mut pending: VecDeque<Output> = outputs.into();
        while let Some(output) = pending.pop_front() {
            match output {
                Output::Reply(r) => {
                    if r.code == 535
                        && let Some(metrics) = self.metrics()
                    {
                        metrics.inbound_auth_failure(self.protocol.into());
                    }
                    out.push_str(&r.to_wire());
                }
                Output::Close => {
                    self.write(out).await?;
                    out.clear();
                    let _ = self.reader.get_mut().shutdown().await;
                    return Ok(false);
                }
                Output::StartTls => {
                    self.write(out).await?;
                    out.clear();
                    // RFC 3207 §4.2: anything the client sent after STARTTLS and before
                    // the handshake is an injection attempt; end the connection.
                    if !self.reader.buffer().is_empty() {
                        return Ok(false);
                    }
                    let Some(tls) = self.shared.config.tls.clone() else {
                        return Ok(false);
                    };
                    let placeholder = BufReader::new(Box::new(tokio::io::empty()) as Box<dyn Io>);
                    let plain = std::mem::replace(&mut self.reader, placeholder).into_inner();
                    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
                    let handshake = acceptor.accept(plain);
                    let timeout = self.shared.config.command_timeout;
                    let stream = match tokio::time::timeout(timeout, handshake).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => return Err(e),
                        Err(_) => return Ok(false),
                    };
                    self.reader = BufReader::new(Box::new(stream));
                    self.accepted.clear();
                    session.tls_started();
                }
                Output::CheckRecipient(to) => {
                    let verdict = self.check_recipient(&to).await;
                    let replies = session.recipient_checked(verdict);
                    self.count_recipient(verdict, &replies);
                    pending.extend(replies);
                }
                Output::Authenticate { identity, password } => {
                    let ok =
                        super::auth::verify(&self.shared.config.users, &identity, &password).await;
                    if !ok {
                        tracing::info!(peer = %self.peer, user = %identity, "inbound AUTH refused");
                    }
                    pending.extend(session.authenticated(ok));
                }
                Output::Deliver { envelope, message } => {
                    let outcome = self.store(&envelope, &message).await;
                    if let Some(metrics) = self.metrics() {
                        let counted = match outcome {
                            DeliveryOutcome::Stored => InboundMessageOutcome::Stored,
                            DeliveryOutcome::TemporaryFailure => InboundMessageOutcome::StoreFailed,
                        };
                        metrics.inbound_message(self.protocol.into(), counted);
                    }
                    let outcomes = vec![outcome; envelope.recipients.len()];
                    pending.extend(session.delivered(&outcomes));
                }
            }
        }
        self.write(out).await?;
        out.clear();
        Ok(true)
    }

    fn metrics(&self) -> Option<&EngineMetrics> {
        self.shared.config.metrics.as_deref()
    }

    /// Counts what the session refused by itself on reading a line (it decides
    /// these without a request to the I/O layer, so they are known by their reply):
    /// after the text, a message over a size limit (552) or with an over-long line
    /// (554); on a command line, a size declared at MAIL over the listener's limit
    /// (552, the only 552 a command line gets) and a recipient over `max_recipients`
    /// (452 4.5.3). A message handed over for storing is counted with the write.
    fn count_refusals(&self, in_data: bool, outputs: &[Output]) {
        let Some(metrics) = self.metrics() else {
            return;
        };
        let protocol = self.protocol.into();
        if in_data {
            if outputs.iter().any(|o| matches!(o, Output::Deliver { .. })) {
                return;
            }
            // LMTP refuses once per recipient: still one message.
            let refused = outputs.iter().find_map(|o| match o {
                Output::Reply(r) if r.code == 552 => Some(InboundMessageOutcome::TooLarge),
                Output::Reply(r) if r.code == 554 => Some(InboundMessageOutcome::LineTooLong),
                _ => None,
            });
            if let Some(outcome) = refused {
                metrics.inbound_message(protocol, outcome);
            }
            return;
        }
        for output in outputs {
            let Output::Reply(r) = output else {
                continue;
            };
            match (r.code, r.enhanced) {
                (552, _) => metrics.inbound_message(protocol, InboundMessageOutcome::TooLarge),
                (452, Some("4.5.3")) => {
                    metrics.inbound_recipient(protocol, InboundRecipientOutcome::TooMany)
                }
                _ => {}
            }
        }
    }

    /// Counts the verdict on one `RCPT TO`: the look-up's, or 552 when the session
    /// refused an accepted address for the size declared at MAIL.
    fn count_recipient(&self, verdict: RecipientVerdict, replies: &[Output]) {
        let Some(metrics) = self.metrics() else {
            return;
        };
        let too_large = replies
            .iter()
            .any(|o| matches!(o, Output::Reply(r) if r.code == 552));
        let outcome = match verdict {
            RecipientVerdict::Unknown => InboundRecipientOutcome::Unknown,
            RecipientVerdict::TemporaryFailure => InboundRecipientOutcome::LookupFailed,
            RecipientVerdict::Accepted | RecipientVerdict::AcceptedUpTo(_) if too_large => {
                InboundRecipientOutcome::TooLarge
            }
            RecipientVerdict::Accepted | RecipientVerdict::AcceptedUpTo(_) => {
                InboundRecipientOutcome::Accepted
            }
        };
        metrics.inbound_recipient(self.protocol.into(), outcome);
    }

    async fn write(&mut self, text: &str) -> std::io::Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let stream = self.reader.get_mut();
        stream.write_all(text.as_bytes()).await?;
        stream.flush().await
    }

    async fn check_recipient(&mut self, to: &str) -> RecipientVerdict {
        match self.shared.router().await {
            Ok(router) => match router.resolve(to) {
                Some(m) => {
                    let verdict = match m.max_message_size {
                        Some(limit) => RecipientVerdict::AcceptedUpTo(limit),
                        None => RecipientVerdict::Accepted,
                    };
                    // Kept even if the session refuses it for size: only the
                    // recipients the session hands over at DATA are stored.
                    self.accepted.insert(to.to_owned(), m);
                    verdict
                }
                None => RecipientVerdict::Unknown,
            },
            Err(e) => {
                tracing::warn!(error = %e, "inbound: the router mailboxes could not be read");
                RecipientVerdict::TemporaryFailure
            }
        }
    }

    /// The durable write before the acknowledgement; all recipients or none.
    async fn store(&self, envelope: &Envelope, message: &[u8]) -> DeliveryOutcome {
        let mut recipients = Vec::with_capacity(envelope.recipients.len());
        for to in &envelope.recipients {
            let Some(m) = self.accepted.get(to) else {
                return DeliveryOutcome::TemporaryFailure;
            };
            recipients.push(InboundRecipient {
                org_id: m.org_id.clone(),
                mailbox_id: m.mailbox_id.clone(),
                recipient: to.clone(),
                tag: m.tag.as_ref().map(|t| t.raw.clone()),
            });
        }
        let client = self.peer.ip().to_string();
        let received = ReceivedMessage {
            raw: message,
            envelope_from: &envelope.from,
            client_address: &client,
            recipients: &recipients,
        };
        match self.shared.store.store_inbound_message(&received).await {
            Ok(_) => {
                if let Some(stored) = &self.shared.config.stored {
                    stored.notify_one();
                }
                DeliveryOutcome::Stored
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "inbound: message not stored, answered 451");
                DeliveryOutcome::TemporaryFailure
            }
        }
    }
}

/// One line without its CRLF (or bare LF), at most [`LINE_CAP`] bytes kept.
async fn read_line<R: AsyncBufRead + Unpin>(reader: &mut R) -> std::io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let buf = reader.fill_buf().await?;
        if buf.is_empty() {
            // End of stream: a partial last line is dropped, as it was never ended.
            return Ok(Line::Eof);
        }
        let (chunk, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (&buf[..i], Some(i + 1)),
            None => (buf, None),
        };
        let room = LINE_CAP.saturating_sub(line.len());
        line.extend_from_slice(&chunk[..chunk.len().min(room)]);
        let used = done.unwrap_or(buf.len());
        reader.consume(used);
        if done.is_some() {
            if line.last() == Some(&b'\r') && line.len() <= LINE_CAP {
                line.pop();
            }
            return Ok(Line::Read(line));
        }
    }
}

// The command limit is the session's to enforce; this keeps the two in step.
const _: () = assert!(MAX_COMMAND_LINE < LINE_CAP);

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_split_and_capped() {
        let long = vec![b'x'; LINE_CAP + 50];
        let mut input = b"EHLO a\r\nbare\n".to_vec();
        input.extend_from_slice(&long);
        input.extend_from_slice(b"\r\nlast\r\npartial");
        let mut reader = BufReader::with_capacity(64, input.as_slice());
        let mut got = Vec::new();
        for _ in 0..10 {
            match read_line(&mut reader).await.expect("read") {
                Line::Eof => break,
                Line::Read(l) => got.push(l),
            }
        }
        assert_eq!(got.len(), 4, "the unended last line is dropped");
        assert_eq!(got[0], b"EHLO a");
        assert_eq!(got[1], b"bare");
        assert_eq!(got[2].len(), LINE_CAP);
        assert_eq!(got[3], b"last");
    }
}
