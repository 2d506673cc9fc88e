//! Resolving and connecting, each bounded by the configured timeout, recorded as
//! the `resolve` and `connect` steps of Test Connection.

use std::net::SocketAddr;
use std::time::Duration;

use mailbridge_domain::error_model::SyncError;
use tokio::net::TcpStream;

use crate::Trace;
use crate::errors::Endpoint;

/// Resolves the endpoint's host and connects to the first address that answers.
pub(crate) async fn connect_tcp(
    endpoint: &Endpoint,
    timeout: Duration,
    trace: &mut Trace<'_>,
) -> Result<TcpStream, SyncError> {
    let addrs = trace.step("resolve", resolve(endpoint, timeout).await, |addrs| {
        let list: Vec<String> = addrs.iter().map(|a| a.ip().to_string()).collect();
        format!("{} resolved to {}", endpoint.host, list.join(", "))
    })?;
    let tcp = trace.step(
        "connect",
        connect_any(endpoint, &addrs, timeout).await,
        |tcp| match tcp.peer_addr() {
            Ok(peer) => format!("connected to {peer}"),
            Err(_) => format!("connected to {endpoint}"),
        },
    )?;
    // Commands are small and latency matters more than packet count.
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn resolve(endpoint: &Endpoint, timeout: Duration) -> Result<Vec<SocketAddr>, SyncError> {
    let lookup = tokio::net::lookup_host((endpoint.host.as_str(), endpoint.port));
    match tokio::time::timeout(timeout, lookup).await {
        Err(_) => {
            Err(endpoint.dns_failed(&format!("no answer within {} s", timeout.as_secs_f32())))
        }
        Ok(Err(e)) => Err(endpoint.dns_failed(&e.to_string())),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() {
                Err(endpoint.dns_failed("the name has no addresses"))
            } else {
                Ok(addrs)
            }
        }
    }
}

/// Tries each address in turn; the last failure is the one reported.
async fn connect_any(
    endpoint: &Endpoint,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Result<TcpStream, SyncError> {
    let mut last = None;
    for addr in addrs {
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = Some(endpoint.unreachable(&format!("{addr}: {e}"))),
            Err(_) => {
                last = Some(endpoint.unreachable(&format!(
                    "{addr}: no answer within {} s",
                    timeout.as_secs_f32()
                )))
            }
        }
    }
    Err(last.unwrap_or_else(|| endpoint.dns_failed("the name has no addresses")))
}
