//! Scripted loopback servers that can turn TLS on in the middle of the conversation
//! (STARTTLS) and record every line they hear, and whether it came over TLS: for
//! STARTTLS and SASL exchanges that the real test servers cannot show. The IMAP and
//! SMTP dialogues are in tests/support/dialogues.rs.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::{AsyncBufReadExt as _, AsyncRead, AsyncWrite, AsyncWriteExt as _, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::fake::{ServerCert, acceptor};

/// The bound of a whole test step (the connectors' own timeouts are shorter).
pub const STEP: Duration = Duration::from_secs(30);

/// Runs `step`, failing the test when it takes longer than [`STEP`].
pub async fn bounded<F: Future>(step: F) -> F::Output {
    tokio::time::timeout(STEP, step)
        .await
        .expect("the step finished in time")
}

/// One line the server heard, with its line end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heard {
    pub tls: bool,
    pub raw: String,
}

impl Heard {
    /// The line without its line end.
    pub fn line(&self) -> &str {
        self.raw.trim_end_matches(['\r', '\n'])
    }
}

/// Everything heard, on every connection, in order.
#[derive(Debug, Clone, Default)]
pub struct Transcript(Arc<Mutex<Vec<Heard>>>);

impl Transcript {
    pub fn heard(&self) -> Vec<Heard> {
        self.0.lock().expect("transcript").clone()
    }

    fn push(&self, tls: bool, raw: String) {
        self.0.lock().expect("transcript").push(Heard { tls, raw });
    }

    /// The lines heard in the clear, without line ends.
    pub fn plaintext(&self) -> Vec<String> {
        let heard = self.heard();
        heard
            .iter()
            .filter(|h| !h.tls)
            .map(|h| h.line().to_owned())
            .collect()
    }

    /// The first line containing `words` (ASCII case-insensitive).
    pub fn find(&self, words: &str) -> Option<Heard> {
        let words = words.to_ascii_uppercase();
        let heard = self.heard();
        heard
            .into_iter()
            .find(|h| h.line().to_ascii_uppercase().contains(&words))
    }

    /// The line heard right after the first line containing `words`.
    pub fn after(&self, words: &str) -> Option<Heard> {
        let words = words.to_ascii_uppercase();
        let heard = self.heard();
        let at = heard
            .iter()
            .position(|h| h.line().to_ascii_uppercase().contains(&words))?;
        heard.get(at + 1).cloned()
    }
}

/// Decodes a SASL response line (base64) to text.
pub fn decode(line: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .expect("a base64 SASL response");
    String::from_utf8(bytes).expect("a UTF-8 SASL response")
}

pub fn encode(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// What the server does after a line.
pub enum Reply {
    Send(Vec<String>),
    /// Sends these lines, then runs the TLS handshake (STARTTLS).
    StartTls(Vec<String>),
    /// Sends these lines, then closes the connection.
    Close(Vec<String>),
}

/// One conversation: the greeting, then a reply to each line heard.
pub trait Dialogue: Send + 'static {
    fn greeting(&self) -> String;
    /// The reply to `line` (without its line end), heard over TLS or not.
    fn reply(&mut self, line: &str, tls: bool) -> Reply;
}

/// Serves connections on a fresh loopback port, each with a new `dialogue()`;
/// STARTTLS presents `cert`. A failed handshake ends that connection.
pub async fn serve<D: Dialogue>(
    cert: ServerCert,
    dialogue: impl Fn() -> D + Send + Sync + 'static,
) -> (SocketAddr, Transcript) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let transcript = Transcript::default();
    let heard = transcript.clone();
    let acceptor = acceptor(&cert);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let conversation = converse(tcp, acceptor.clone(), dialogue(), heard.clone());
            tokio::spawn(conversation);
        }
    });
    (addr, transcript)
}

async fn converse<D: Dialogue>(
    tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    mut dialogue: D,
    transcript: Transcript,
) {
    let mut reader = BufReader::new(tcp);
    let greeting = vec![dialogue.greeting()];
    if send(reader.get_mut(), &greeting).await.is_err() {
        return;
    }
    if !exchange(&mut reader, &mut dialogue, false, &transcript).await {
        return;
    }
    // Anything the client sent after STARTTLS and before the handshake would be
    // carried into TLS by a careless server: record it as heard in the clear.
    if !reader.buffer().is_empty() {
        let early = String::from_utf8_lossy(reader.buffer()).into_owned();
        transcript.push(false, early);
        return;
    }
    let Ok(tls) = acceptor.accept(reader.into_inner()).await else {
        return;
    };
    let mut reader = BufReader::new(tls);
    exchange(&mut reader, &mut dialogue, true, &transcript).await;
}

/// Reads and answers lines; true when the dialogue asked for STARTTLS.
async fn exchange<T: AsyncRead + AsyncWrite + Unpin>(
    reader: &mut BufReader<T>,
    dialogue: &mut impl Dialogue,
    tls: bool,
    transcript: &Transcript,
) -> bool {
    loop {
        let mut raw = String::new();
        match reader.read_line(&mut raw).await {
            Ok(0) | Err(_) => return false,
            Ok(_) => {}
        }
        let line = raw.trim_end_matches(['\r', '\n']).to_owned();
        transcript.push(tls, raw);
        let (lines, then_tls, then_close) = match dialogue.reply(&line, tls) {
            Reply::Send(lines) => (lines, false, false),
            Reply::StartTls(lines) => (lines, !tls, false),
            Reply::Close(lines) => (lines, false, true),
        };
        if send(reader.get_mut(), &lines).await.is_err() || then_close {
            return false;
        }
        if then_tls {
            return true;
        }
    }
}

async fn send<T: AsyncWrite + Unpin>(stream: &mut T, lines: &[String]) -> std::io::Result<()> {
    let text: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
    stream.write_all(text.as_bytes()).await?;
    stream.flush().await
}
