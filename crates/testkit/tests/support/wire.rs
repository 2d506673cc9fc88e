//! Minimal line-based IMAP, SMTP and HTTP clients for the smoke tests, each read
//! bounded by a timeout. Real clients live in the connectors; these only prove that
//! the servers answer as the harness promises.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::time::timeout;

pub const IO_TIMEOUT: Duration = Duration::from_secs(10);

/// A TCP connection read line by line, every operation bounded by [`IO_TIMEOUT`].
pub struct Wire {
    stream: BufReader<TcpStream>,
}

impl Wire {
    pub async fn connect(addr: SocketAddr) -> Wire {
        let stream = timeout(IO_TIMEOUT, TcpStream::connect(addr))
            .await
            .expect("connect timed out")
            .expect("connect");
        Wire {
            stream: BufReader::new(stream),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        timeout(IO_TIMEOUT, self.stream.write_all(bytes))
            .await
            .expect("write timed out")
            .expect("write");
    }

    pub async fn send_line(&mut self, line: &str) {
        self.send(format!("{line}\r\n").as_bytes()).await;
    }

    /// One line with its CRLF; panics if the peer closed the connection.
    pub async fn read_line(&mut self) -> Vec<u8> {
        let mut line = Vec::new();
        let read = timeout(IO_TIMEOUT, self.stream.read_until(b'\n', &mut line))
            .await
            .expect("read timed out")
            .expect("read");
        assert!(read > 0, "the server closed the connection");
        line
    }

    pub async fn read_exact(&mut self, count: usize) -> Vec<u8> {
        let mut bytes = vec![0; count];
        timeout(IO_TIMEOUT, self.stream.read_exact(&mut bytes))
            .await
            .expect("read timed out")
            .expect("read");
        bytes
    }

    pub async fn read_to_end(&mut self) -> Vec<u8> {
        let mut bytes = Vec::new();
        timeout(IO_TIMEOUT, self.stream.read_to_end(&mut bytes))
            .await
            .expect("read timed out")
            .expect("read");
        bytes
    }
}

/// An IMAP connection with numbered tags.
pub struct Imap {
    wire: Wire,
    next_tag: u32,
    pub greeting: String,
}

/// The answer to one IMAP command.
pub struct ImapResponse {
    /// Everything before the tagged line, literals included, as received.
    pub untagged: Vec<u8>,
    /// The tagged status line without the tag, e.g. `OK Logged in`.
    pub status: String,
}

impl ImapResponse {
    pub fn is_ok(&self) -> bool {
        self.status.starts_with("OK")
    }

    pub fn untagged_text(&self) -> String {
        String::from_utf8_lossy(&self.untagged).into_owned()
    }
}

impl Imap {
    pub async fn connect(addr: SocketAddr) -> Imap {
        let mut wire = Wire::connect(addr).await;
        let greeting = String::from_utf8_lossy(&wire.read_line().await).into_owned();
        Imap {
            wire,
            next_tag: 1,
            greeting,
        }
    }

    pub async fn login(addr: SocketAddr, login: &str, password: &str) -> Imap {
        let mut imap = Imap::connect(addr).await;
        let answer = imap.command(&format!("LOGIN {login} {password}")).await;
        assert!(answer.is_ok(), "LOGIN {login}: {}", answer.status);
        imap
    }

    /// Sends `command` and reads up to its tagged answer, following `{n}` literals.
    pub async fn command(&mut self, command: &str) -> ImapResponse {
        let tag = format!("t{}", self.next_tag);
        self.next_tag += 1;
        self.wire.send_line(&format!("{tag} {command}")).await;
        let mut untagged = Vec::new();
        loop {
            let line = self.wire.read_line().await;
            if let Some(status) = line.strip_prefix(format!("{tag} ").as_bytes()) {
                let status = String::from_utf8_lossy(status).trim_end().to_owned();
                return ImapResponse { untagged, status };
            }
            let literal = literal_length(&line);
            untagged.extend_from_slice(&line);
            if let Some(length) = literal {
                untagged.extend_from_slice(&self.wire.read_exact(length).await);
            }
        }
    }

    /// The UIDs that `UID SEARCH <criteria>` returns in the selected mailbox.
    pub async fn uid_search(&mut self, criteria: &str) -> Vec<u32> {
        let answer = self.command(&format!("UID SEARCH {criteria}")).await;
        assert!(answer.is_ok(), "UID SEARCH {criteria}: {}", answer.status);
        answer
            .untagged_text()
            .lines()
            .filter_map(|line| line.strip_prefix("* SEARCH"))
            .flat_map(|uids| {
                uids.split_whitespace()
                    .map(|uid| uid.parse::<u32>().expect("a UID"))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    /// The full message with `uid` (`BODY.PEEK[]`) in the selected mailbox.
    pub async fn fetch_body(&mut self, uid: u32) -> Vec<u8> {
        let answer = self
            .command(&format!("UID FETCH {uid} (BODY.PEEK[])"))
            .await;
        assert!(answer.is_ok(), "UID FETCH {uid}: {}", answer.status);
        // Dovecot answers `* n FETCH (UID u BODY[] {length}` and then the literal.
        let untagged = answer.untagged;
        let first_line_end = untagged
            .iter()
            .position(|&b| b == b'\n')
            .expect("a FETCH line")
            + 1;
        let length = literal_length(&untagged[..first_line_end]).expect("BODY[] as a literal");
        untagged[first_line_end..first_line_end + length].to_vec()
    }
}

/// `n` when `line` ends with the literal announcement `{n}\r\n`.
fn literal_length(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"\r\n")?;
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|&b| b == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

/// An SMTP connection.
pub struct Smtp {
    wire: Wire,
}

impl Smtp {
    /// Connects and checks the 220 greeting.
    pub async fn connect(addr: SocketAddr) -> Smtp {
        let mut smtp = Smtp {
            wire: Wire::connect(addr).await,
        };
        let (code, text) = smtp.reply().await;
        assert_eq!(code, 220, "SMTP greeting: {text}");
        smtp
    }

    /// Reads one reply, joining the lines of a multi-line one.
    pub async fn reply(&mut self) -> (u16, String) {
        let mut text = Vec::new();
        loop {
            let line = String::from_utf8_lossy(&self.wire.read_line().await).into_owned();
            let line = line.trim_end();
            let code = line
                .get(..3)
                .and_then(|c| c.parse().ok())
                .unwrap_or_else(|| panic!("malformed SMTP reply {line:?}"));
            text.push(line.get(4..).unwrap_or("").to_owned());
            if line.as_bytes().get(3) != Some(&b'-') {
                return (code, text.join("\n"));
            }
        }
    }

    pub async fn command(&mut self, line: &str) -> (u16, String) {
        self.wire.send_line(line).await;
        self.reply().await
    }

    /// Sends DATA, the dot-stuffed message and the final dot; returns the last reply.
    pub async fn data(&mut self, raw: &[u8]) -> (u16, String) {
        let (code, text) = self.command("DATA").await;
        assert_eq!(code, 354, "DATA: {text}");
        let mut stuffed = Vec::new();
        for line in raw.split_inclusive(|&b| b == b'\n') {
            if line.starts_with(b".") {
                stuffed.push(b'.');
            }
            stuffed.extend_from_slice(line);
        }
        if !stuffed.ends_with(b"\r\n") {
            stuffed.extend_from_slice(b"\r\n");
        }
        stuffed.extend_from_slice(b".\r\n");
        self.wire.send(&stuffed).await;
        self.reply().await
    }
}

/// Sends one HTTP/1.1 request (with `Connection: close`) and returns the status code
/// and the body.
pub async fn http_request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> (u16, String) {
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        let _ = write!(request, "{name}: {value}\r\n");
    }
    request.push_str("\r\n");
    request.push_str(body);
    let mut wire = Wire::connect(addr).await;
    wire.send(request.as_bytes()).await;
    let response = String::from_utf8_lossy(&wire.read_to_end().await).into_owned();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("malformed HTTP response {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (status, body)
}
