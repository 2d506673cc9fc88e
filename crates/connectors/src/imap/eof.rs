//! QUIRK_EOF_BETWEEN_RESPONSES: async-imap (0.12) takes a read of 0 bytes with
//! nothing buffered for the end of the stream, and its parsers then return what
//! they had so far as a complete answer: a connection the server (or a network
//! device) closes in order between two responses makes `UID SEARCH` answer "no
//! messages" and `UID FETCH` answer "nothing". A sync could then take a message
//! in Sent for missing and send it again (found by the fault proxy of the
//! testkit). Under IMAP a command's answer always ends with its tagged line, so
//! an end of stream before it is an error: this wrapper reports every 0-byte
//! read as `UnexpectedEof`, and the command fails as a lost connection (a
//! transient error) instead of succeeding with nothing.

use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A stream whose end is an error.
#[derive(Debug)]
pub struct EofIsError<S>(pub S);

impl<S: AsyncRead + Unpin> AsyncRead for EofIsError<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Ok(())) if buf.filled().len() == before && buf.remaining() > 0 => {
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "the IMAP server closed the connection before its answer was complete",
                )))
            }
            other => other,
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for EofIsError<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        b: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, b)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::EofIsError;

    #[tokio::test]
    async fn data_passes_and_the_end_is_an_error() {
        let (mut server, client) = tokio::io::duplex(64);
        let mut client = EofIsError(client);
        server.write_all(b"* OK ready\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"* OK ready\r\n");
        client.write_all(b"a LOGOUT\r\n").await.unwrap();
        let n = server.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"a LOGOUT\r\n");
        drop(server);
        let e = client.read(&mut buf).await.unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof);
    }
}
