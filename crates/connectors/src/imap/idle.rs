//! Waiting for news with IDLE (RFC 2177), or with NOOP polling on servers
//! without it, leaving the session usable afterwards.

use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::imap_proto::{MailboxDatum, Response, Status};
use mailbridge_domain::error_model::SyncError;
use tokio::time::Instant;

use super::{IdleOutcome, ImapSession};

/// How often a server without IDLE is asked for news.
const POLL_INTERVAL: Duration = Duration::from_secs(10);

/// What a response seen while idling means.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Change,
    Bye(String),
    Nothing,
}

fn seen(response: &Response<'_>) -> Seen {
    match response {
        Response::MailboxData(MailboxDatum::Exists(_))
        | Response::Fetch(..)
        | Response::Expunge(_) => Seen::Change,
        Response::MailboxData(MailboxDatum::Recent(n)) if *n > 0 => Seen::Change,
        Response::Data {
            status: Status::Bye,
            outcome,
        } => Seen::Bye(outcome.information.as_deref().unwrap_or("").to_owned()),
        _ => Seen::Nothing,
    }
}

impl ImapSession {
    /// Waits on the selected folder until the server reports new or changed
    /// messages (EXISTS, RECENT, FETCH, EXPUNGE) or `timeout` passes, then ends
    /// the IDLE (DONE) and hands the session back. Returns `Changed` at once when
    /// news arrived since the last fetch. Servers without IDLE are polled with NOOP.
    ///
    /// # Errors
    /// A classified [`SyncError`]; the session is gone then: connect again.
    pub async fn idle(
        mut self,
        timeout: Duration,
    ) -> Result<(ImapSession, IdleOutcome), SyncError> {
        self.drain_unsolicited();
        if std::mem::take(&mut self.changed) {
            return Ok((self, IdleOutcome::Changed));
        }
        if !self.capabilities.idle {
            return self.poll(timeout).await;
        }
        let deadline = Instant::now() + timeout;
        let op_timeout = self.timeout;
        let endpoint = self.endpoint.clone();
        let receiver = self.session.unsolicited_responses.clone();
        let ImapSession {
            session,
            capabilities,
            endpoint: _,
            username,
            timeout: _,
            mut selected,
            changed: _,
        } = self;
        let mut handle = session.idle();
        match tokio::time::timeout(op_timeout, handle.init()).await {
            Err(_) => return Err(endpoint.timed_out("IDLE", op_timeout)),
            Ok(Err(e)) => return Err(super::errors::classify(&endpoint, "IDLE", &e)),
            Ok(Ok(())) => {}
        }
        // Responses that came before the server's `+ idling` went to the channel.
        let mut outcome = None;
        while let Ok(response) = receiver.try_recv() {
            use async_imap::types::UnsolicitedResponse as U;
            match response {
                U::Exists(n) => {
                    if let Some((_, exists)) = &mut selected {
                        *exists = n;
                    }
                    outcome = Some(IdleOutcome::Changed);
                }
                U::Recent(n) if n > 0 => outcome = Some(IdleOutcome::Changed),
                U::Expunge(_) => outcome = Some(IdleOutcome::Changed),
                _ => {}
            }
        }
        while outcome.is_none() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                outcome = Some(IdleOutcome::Timeout);
                break;
            }
            // The stop source must live while the wait runs: dropping it ends the wait.
            let (wait, _stop) = handle.wait_with_timeout(remaining);
            match wait.await {
                Ok(IdleResponse::Timeout) => outcome = Some(IdleOutcome::Timeout),
                Ok(IdleResponse::ManualInterrupt) => {
                    return Err(
                        endpoint.connection_lost("the server closed the connection during IDLE")
                    );
                }
                Ok(IdleResponse::NewData(data)) => match seen(data.parsed()) {
                    Seen::Change => {
                        if let (Response::MailboxData(MailboxDatum::Exists(n)), Some((_, exists))) =
                            (data.parsed(), &mut selected)
                        {
                            *exists = *n;
                        }
                        outcome = Some(IdleOutcome::Changed);
                    }
                    Seen::Bye(text) => {
                        return Err(
                            endpoint.connection_lost(&format!("the server said BYE: {text}"))
                        );
                    }
                    Seen::Nothing => {}
                },
                Err(e) => return Err(super::errors::classify(&endpoint, "IDLE", &e)),
            }
        }
        let session = match tokio::time::timeout(op_timeout, handle.done()).await {
            Err(_) => return Err(endpoint.timed_out("DONE (the end of IDLE)", op_timeout)),
            Ok(Err(e)) => return Err(super::errors::classify(&endpoint, "DONE", &e)),
            Ok(Ok(session)) => session,
        };
        let mut session = ImapSession {
            session,
            capabilities,
            endpoint,
            username,
            timeout: op_timeout,
            selected,
            changed: false,
        };
        // EXISTS that came with the end of IDLE: already reported as Changed, or
        // for the next idle to report.
        session.drain_unsolicited();
        let outcome = outcome.unwrap_or(IdleOutcome::Timeout);
        if outcome == IdleOutcome::Changed {
            session.changed = false;
        }
        Ok((session, outcome))
    }

    /// Without IDLE: NOOP every [`POLL_INTERVAL`] until news or the timeout.
    async fn poll(mut self, timeout: Duration) -> Result<(ImapSession, IdleOutcome), SyncError> {
        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok((self, IdleOutcome::Timeout));
            }
            tokio::time::sleep(remaining.min(POLL_INTERVAL)).await;
            self.noop().await?;
            if std::mem::take(&mut self.changed) {
                return Ok((self, IdleOutcome::Changed));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Response<'_> {
        Response::parse(line.as_bytes()).expect("a response").1
    }

    #[test]
    fn what_idle_responses_mean() {
        let cases = [
            ("* 4 EXISTS\r\n", Seen::Change),
            ("* 1 RECENT\r\n", Seen::Change),
            ("* 0 RECENT\r\n", Seen::Nothing),
            ("* 2 EXPUNGE\r\n", Seen::Change),
            ("* 3 FETCH (FLAGS (\\Seen))\r\n", Seen::Change),
            ("* OK Still here\r\n", Seen::Nothing),
            (
                "* BYE shutting down\r\n",
                Seen::Bye("shutting down".to_owned()),
            ),
        ];
        for (line, expected) in cases {
            assert_eq!(seen(&parse(line)), expected, "{line}");
        }
    }
}
