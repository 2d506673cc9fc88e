//! The conversation before login: the greeting, CAPABILITY and STARTTLS. It is a
//! few lines of text, spoken here directly so that STARTTLS can hand over a clean
//! stream; everything after login goes through async-imap.

use std::time::Duration;

use mailbridge_domain::error_model::SyncError;
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::errors::Endpoint;
use crate::tls::Stream;

/// The longest pre-login line accepted; a greeting is a few hundred bytes.
const MAX_LINE: usize = 64 * 1024;

/// What the greeting said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Greeting {
    /// `* PREAUTH`: already logged in (not accepted: mailbridge always logs in).
    pub preauth: bool,
    /// Capabilities in a `[CAPABILITY ...]` response code, when present.
    pub capabilities: Option<Vec<String>>,
}

/// Reads the greeting line: `* OK`, `* PREAUTH`, or `* BYE` (refused).
pub(super) fn parse_greeting(line: &str) -> Result<Greeting, String> {
    let line = line.trim_end();
    let (preauth, rest) = if let Some(rest) = strip_prefix_ci(line, "* OK") {
        (false, rest)
    } else if let Some(rest) = strip_prefix_ci(line, "* PREAUTH") {
        (true, rest)
    } else if let Some(rest) = strip_prefix_ci(line, "* BYE") {
        return Err(format!("the server refused the connection:{rest}"));
    } else {
        return Err(format!("`{}` is not an IMAP greeting", shorten(line)));
    };
    Ok(Greeting {
        preauth,
        capabilities: capability_code(rest),
    })
}

/// The atoms of `* CAPABILITY a b c`.
pub(super) fn parse_capability_line(line: &str) -> Option<Vec<String>> {
    strip_prefix_ci(line.trim_end(), "* CAPABILITY ")
        .map(|rest| rest.split_ascii_whitespace().map(str::to_owned).collect())
}

/// The atoms of a `[CAPABILITY a b c]` response code at the start of `text`.
fn capability_code(text: &str) -> Option<Vec<String>> {
    let inner = strip_prefix_ci(text.trim_start(), "[CAPABILITY ")?;
    let (atoms, _) = inner.split_once(']')?;
    Some(atoms.split_ascii_whitespace().map(str::to_owned).collect())
}

/// `Some(ok, text)` when `line` is the tagged completion of `tag`.
pub(super) fn tagged_status(line: &str, tag: &str) -> Option<(bool, String)> {
    let rest = line.trim_end().strip_prefix(tag)?.strip_prefix(' ')?;
    let (status, text) = rest.split_once(' ').unwrap_or((rest, ""));
    Some((status.eq_ignore_ascii_case("OK"), text.to_owned()))
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    (s.len() >= prefix.len() && s.is_char_boundary(prefix.len()))
        .then(|| s.split_at(prefix.len()))
        .filter(|(head, _)| head.eq_ignore_ascii_case(prefix))
        .map(|(_, rest)| rest)
}

fn shorten(line: &str) -> String {
    line.chars().take(120).collect()
}

/// A connection before login.
pub(super) struct PreAuth<'a> {
    reader: BufReader<Stream>,
    endpoint: &'a Endpoint,
    timeout: Duration,
    next_tag: u32,
}

impl<'a> PreAuth<'a> {
    pub fn new(stream: Stream, endpoint: &'a Endpoint, timeout: Duration) -> PreAuth<'a> {
        PreAuth {
            reader: BufReader::new(stream),
            endpoint,
            timeout,
            next_tag: 1,
        }
    }

    pub fn is_tls(&self) -> bool {
        self.reader.get_ref().is_tls()
    }

    pub async fn greeting(&mut self) -> Result<Greeting, SyncError> {
        let line = self.read_line("the greeting").await?;
        parse_greeting(&line).map_err(|e| {
            if line.len() >= 5 && line[..5].eq_ignore_ascii_case("* BYE") {
                self.endpoint.connection_lost(&e)
            } else {
                self.endpoint.protocol(&e)
            }
        })
    }

    /// `CAPABILITY`, before login.
    pub async fn capability(&mut self) -> Result<Vec<String>, SyncError> {
        let mut capabilities = Vec::new();
        let (ok, text) = self
            .command("CAPABILITY", |line| {
                if let Some(atoms) = parse_capability_line(line) {
                    capabilities.extend(atoms);
                }
            })
            .await?;
        if !ok {
            return Err(self
                .endpoint
                .protocol(&format!("CAPABILITY failed: {text}")));
        }
        Ok(capabilities)
    }

    /// `STARTTLS`; on OK, the plain stream to run the handshake on.
    pub async fn starttls(mut self) -> Result<tokio::net::TcpStream, SyncError> {
        let (ok, text) = self.command("STARTTLS", |_| {}).await?;
        if !ok {
            return Err(self
                .endpoint
                .tls_failed(&format!("the server refused STARTTLS: {text}")));
        }
        // Bytes after the OK would have been injected before the handshake (a known
        // STARTTLS attack): refuse them rather than carry them into TLS.
        if !self.reader.buffer().is_empty() {
            return Err(self
                .endpoint
                .protocol("the server sent data after agreeing to STARTTLS"));
        }
        self.reader
            .into_inner()
            .into_tcp()
            .ok_or_else(|| self.endpoint.protocol("STARTTLS on a TLS connection"))
    }

    /// The stream, for async-imap.
    pub fn into_stream(self) -> Result<Stream, SyncError> {
        if !self.reader.buffer().is_empty() {
            return Err(self
                .endpoint
                .protocol("the server sent data before it was asked anything"));
        }
        Ok(self.reader.into_inner())
    }

    /// Sends `command` with a fresh tag and reads up to its completion, handing
    /// untagged lines to `untagged`.
    async fn command(
        &mut self,
        command: &str,
        mut untagged: impl FnMut(&str),
    ) -> Result<(bool, String), SyncError> {
        let tag = format!("p{}", self.next_tag);
        self.next_tag += 1;
        let line = format!("{tag} {command}\r\n");
        let write = async {
            let stream = self.reader.get_mut();
            stream.write_all(line.as_bytes()).await?;
            stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Err(_) => return Err(self.endpoint.timed_out(command, self.timeout)),
            Ok(Err(e)) => return Err(self.endpoint.io(&e)),
            Ok(Ok(())) => {}
        }
        loop {
            let line = self.read_line(command).await?;
            if let Some(done) = tagged_status(&line, &tag) {
                return Ok(done);
            }
            untagged(&line);
        }
    }

    async fn read_line(&mut self, what: &str) -> Result<String, SyncError> {
        let mut buf = Vec::new();
        let read = async {
            loop {
                let available = self.reader.fill_buf().await?;
                if available.is_empty() {
                    return Err(std::io::Error::from(std::io::ErrorKind::UnexpectedEof));
                }
                let (used, done) = match available.iter().position(|&b| b == b'\n') {
                    Some(i) => (i + 1, true),
                    None => (available.len(), false),
                };
                buf.extend_from_slice(&available[..used]);
                self.reader.consume(used);
                if done {
                    return Ok(());
                }
                if buf.len() > MAX_LINE {
                    return Err(std::io::Error::other("a line longer than 64 KiB"));
                }
            }
        };
        match tokio::time::timeout(self.timeout, read).await {
            Err(_) => Err(self.endpoint.timed_out(what, self.timeout)),
            Ok(Err(e)) => Err(self.endpoint.io(&e)),
            Ok(Ok(())) => Ok(String::from_utf8_lossy(&buf).into_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn greetings() {
        let dovecot = "* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN] Dovecot (Debian) ready.\r\n";
        let g = parse_greeting(dovecot).expect("a greeting");
        assert!(!g.preauth);
        let caps = g.capabilities.expect("capabilities");
        assert!(caps.contains(&"AUTH=PLAIN".to_owned()));
        assert!(caps.contains(&"IDLE".to_owned()));

        let cases: [(&str, Result<bool, &str>); 4] = [
            ("* OK IMAP4rev1 ready\r\n", Ok(false)),
            ("* PREAUTH welcome\r\n", Ok(true)),
            (
                "* BYE too many connections\r\n",
                Err("refused the connection: too many"),
            ),
            (
                "220 smtp.example.org ESMTP\r\n",
                Err("is not an IMAP greeting"),
            ),
        ];
        for (line, expected) in cases {
            match (parse_greeting(line), expected) {
                (Ok(g), Ok(preauth)) => assert_eq!(g.preauth, preauth, "{line}"),
                (Err(e), Err(words)) => assert!(e.contains(words), "{line}: {e}"),
                (got, _) => panic!("{line}: {got:?}"),
            }
        }
    }

    #[test]
    fn capability_and_tagged_lines() {
        assert_eq!(
            parse_capability_line("* CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED\r\n"),
            Some(vec![
                "IMAP4rev1".to_owned(),
                "STARTTLS".to_owned(),
                "LOGINDISABLED".to_owned()
            ])
        );
        assert_eq!(parse_capability_line("* OK still here"), None);
        let cases = [
            (
                "p1 OK Begin TLS negotiation now.\r\n",
                "p1",
                Some((true, "Begin TLS negotiation now.")),
            ),
            (
                "p2 BAD unknown command\r\n",
                "p2",
                Some((false, "unknown command")),
            ),
            ("p1 OK done", "p2", None),
            ("p10 OK done", "p1", None),
            ("* CAPABILITY IMAP4rev1", "p1", None),
        ];
        for (line, tag, expected) in cases {
            assert_eq!(
                tagged_status(line, tag),
                expected.map(|(ok, text)| (ok, text.to_owned())),
                "{line}"
            );
        }
    }
}
