//! A TCP relay on 127.0.0.1 that holds every chunk a server sends for a fixed
//! time before passing it on, as a distant server would: each SMTP command then
//! costs one round trip, so that a queue of emails takes seconds to send and a
//! fault can land while sending. It can also hold the server's answers until
//! told to let them go, so that a fault lands in the middle of every session.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

pub struct Relay {
    pub addr: SocketAddr,
    holding: Arc<AtomicBool>,
}

impl Relay {
    /// Starts relaying to `upstream`; it runs until the test's runtime ends.
    pub async fn start(upstream: SocketAddr, delay: Duration) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let holding = Arc::new(AtomicBool::new(false));
        let held = holding.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(relay(client, upstream, delay, held.clone()));
            }
        });
        Relay { addr, holding }
    }

    /// While on, the server's answers wait in the relay (its clients wait for
    /// them, as for a slow server); off lets them go.
    pub fn hold(&self, on: bool) {
        self.holding.store(on, Ordering::SeqCst);
    }
}

async fn relay(client: TcpStream, upstream: SocketAddr, delay: Duration, holding: Arc<AtomicBool>) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let _ = tokio::io::copy(&mut client_read, &mut server_write).await;
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let mut buf = vec![0u8; 16 * 1024];
        while let Ok(n) = server_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tokio::time::sleep(delay).await;
            while holding.load(Ordering::SeqCst) {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}
