//! A tiny LMTP client (RFC 2033) that delivers one message to one recipient in Dovecot.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// How long a whole delivery may take before it fails with [`LmtpError::Timeout`].
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(20);

/// Why an LMTP delivery failed.
#[derive(Debug, thiserror::Error)]
pub enum LmtpError {
    #[error("could not connect to LMTP at {addr}: {source}")]
    Connect {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("LMTP connection failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("LMTP delivery did not finish within {0:?}")]
    Timeout(Duration),
    #[error("LMTP server closed the connection while we waited for the reply to {step}")]
    Closed { step: &'static str },
    #[error("LMTP server answered {step} with {code} {text}")]
    Rejected {
        step: &'static str,
        code: u16,
        text: String,
    },
    #[error("malformed LMTP reply line {0:?}")]
    MalformedReply(String),
}

/// Delivers `raw` for `to` with envelope sender `from`; any reply outside the expected
/// class is an error.
pub(crate) async fn deliver(
    addr: SocketAddr,
    from: &str,
    to: &str,
    raw: &[u8],
) -> Result<(), LmtpError> {
    tokio::time::timeout(DELIVERY_TIMEOUT, dialogue(addr, from, to, raw))
        .await
        .map_err(|_| LmtpError::Timeout(DELIVERY_TIMEOUT))?
}

async fn dialogue(addr: SocketAddr, from: &str, to: &str, raw: &[u8]) -> Result<(), LmtpError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|source| LmtpError::Connect { addr, source })?;
    let mut lmtp = Connection {
        stream: BufReader::new(stream),
    };
    lmtp.expect("the greeting", 2).await?;
    lmtp.command("LHLO mailbridge-testkit", "LHLO", 2).await?;
    lmtp.command(&format!("MAIL FROM:<{from}>"), "MAIL FROM", 2)
        .await?;
    lmtp.command(&format!("RCPT TO:<{to}>"), "RCPT TO", 2)
        .await?;
    lmtp.command("DATA", "DATA", 3).await?;
    lmtp.stream.write_all(&data_payload(raw)).await?;
    // With one recipient LMTP gives exactly one reply after the final dot.
    lmtp.expect("the message data", 2).await?;
    // The message is delivered; a failing QUIT changes nothing.
    let _ = lmtp.command("QUIT", "QUIT", 2).await;
    Ok(())
}

struct Connection {
    stream: BufReader<TcpStream>,
}

impl Connection {
    async fn command(
        &mut self,
        line: &str,
        step: &'static str,
        class: u16,
    ) -> Result<(), LmtpError> {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .await?;
        self.expect(step, class).await
    }

    /// Reads one (possibly multi-line) reply and checks its first digit.
    async fn expect(&mut self, step: &'static str, class: u16) -> Result<(), LmtpError> {
        let mut text = Vec::new();
        loop {
            let mut line = String::new();
            if self.stream.read_line(&mut line).await? == 0 {
                return Err(LmtpError::Closed { step });
            }
            let (code, last, rest) = parse_reply_line(&line)?;
            text.push(rest.to_owned());
            if last {
                if code / 100 == class {
                    return Ok(());
                }
                return Err(LmtpError::Rejected {
                    step,
                    code,
                    text: text.join(" "),
                });
            }
        }
    }
}

/// Splits `250-text` / `250 text` into (code, is the last line, text).
fn parse_reply_line(line: &str) -> Result<(u16, bool, &str), LmtpError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let malformed = || LmtpError::MalformedReply(line.to_owned());
    let code = line
        .get(..3)
        .filter(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|digits| digits.parse().ok())
        .ok_or_else(malformed)?;
    match line.as_bytes().get(3) {
        None => Ok((code, true, "")),
        Some(b' ') => Ok((code, true, &line[4..])),
        Some(b'-') => Ok((code, false, &line[4..])),
        Some(_) => Err(malformed()),
    }
}

/// The DATA payload for `raw`: every line ends in CRLF (bare LF is converted), lines
/// that start with a dot get a second one (RFC 5321 section 4.5.2), and the final
/// `.` line ends the data.
fn data_payload(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + raw.len() / 32 + 5);
    let mut at_line_start = true;
    for (index, &byte) in raw.iter().enumerate() {
        if at_line_start && byte == b'.' {
            out.push(b'.');
        }
        match byte {
            b'\n' if index == 0 || raw[index - 1] != b'\r' => out.extend_from_slice(b"\r\n"),
            _ => out.push(byte),
        }
        at_line_start = byte == b'\n';
    }
    if !raw.is_empty() && !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::{LmtpError, data_payload, parse_reply_line};

    #[test]
    fn data_payload_cases() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"", b".\r\n"),
            (b"a\r\nb\r\n", b"a\r\nb\r\n.\r\n"),
            (b"a\nb", b"a\r\nb\r\n.\r\n"),
            (
                b".hidden\r\n..two\r\nx.y\r\n",
                b"..hidden\r\n...two\r\nx.y\r\n.\r\n",
            ),
            (b"a\n.\nb\n", b"a\r\n..\r\nb\r\n.\r\n"),
            (b".", b"..\r\n.\r\n"),
            (b"a\r\n\r\n", b"a\r\n\r\n.\r\n"),
        ];
        for (raw, expected) in cases {
            assert_eq!(
                data_payload(raw),
                *expected,
                "{:?}",
                String::from_utf8_lossy(raw)
            );
        }
    }

    #[test]
    fn parse_reply_line_cases() {
        assert_eq!(
            parse_reply_line("250-PIPELINING\r\n").ok(),
            Some((250, false, "PIPELINING"))
        );
        assert_eq!(
            parse_reply_line("550 5.1.1 no such user\r\n").ok(),
            Some((550, true, "5.1.1 no such user"))
        );
        assert_eq!(parse_reply_line("354\r\n").ok(), Some((354, true, "")));
        for bad in ["", "25", "abc def", "250_x"] {
            assert!(
                matches!(parse_reply_line(bad), Err(LmtpError::MalformedReply(_))),
                "{bad:?}"
            );
        }
    }
}
