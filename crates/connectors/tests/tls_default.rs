//! Certificate verification is on by default for every connector: IMAP, SMTP,
//! the Microsoft Graph client and the CalDAV/CardDAV client, each against a
//! loopback TLS server whose certificate is self-signed (rcgen), refuse it with
//! a permanent, profile-wide error that names the fix, and accept it only when
//! that certificate is given as an extra root. And no source file outside the
//! tests turns verification off.

#[path = "support/common.rs"]
mod common;
#[path = "support/fake.rs"]
mod fake;

use std::net::SocketAddr;
use std::sync::Arc;

use fake::{FakeImap, FakeSmtp, ServerCert, acceptor, serve};
use mailbridge_connectors::dav::{DavClient, DavConfig, DavError};
use mailbridge_connectors::graph::{GraphClient, GraphConfig, StaticToken};
use mailbridge_connectors::{Auth, ImapConfig, ImapSession, SmtpConfig, smtp_test};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A self-signed certificate for `localhost` (no CA behind it), and its DER.
fn self_signed() -> (ServerCert, Vec<u8>) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("self-signed");
    let der = certified.cert.der().to_vec();
    let cert = ServerCert {
        chain: vec![certified.cert.der().clone()],
        key: certified.signing_key.serialize_der(),
    };
    (cert, der)
}

/// The refusal: permanent for the profile, saying the certificate is not trusted
/// and how to fix it.
#[track_caller]
fn assert_refused(e: &SyncError, who: &str) {
    assert_eq!(
        (e.class, e.scope),
        (ErrorClass::Permanent, ErrorScope::Profile),
        "{who}: {e:?}"
    );
    assert!(
        e.message.contains("certificate that is not trusted"),
        "{who}: {}",
        e.message
    );
    let fix = e.fix.as_deref().unwrap_or("");
    assert!(
        fix.contains("trusted authority")
            && fix.contains("add its CA to the profile's trusted certificates"),
        "{who} names the fix: {fix}"
    );
}

fn password() -> Auth {
    Auth::Password {
        username: "alice".to_owned(),
        password: Secret::new("pw-alice"),
    }
}

#[tokio::test]
async fn imap_refuses_a_self_signed_certificate_unless_it_is_an_extra_root() {
    let (cert, der) = self_signed();
    let addr = serve(Some(cert), FakeImap::default).await;
    let config = |extra_roots| ImapConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::Implicit,
        auth: password(),
        timeout: common::TIMEOUT,
        extra_roots,
    };
    let Err(e) = ImapSession::connect(&config(Vec::new())).await else {
        panic!("IMAP: a self-signed certificate is accepted by default");
    };
    assert_refused(&e, "IMAP");
    let session = ImapSession::connect(&config(vec![der]))
        .await
        .expect("trusted once given as an extra root");
    session.logout().await;
}

#[tokio::test]
async fn smtp_refuses_a_self_signed_certificate_unless_it_is_an_extra_root() {
    let (cert, der) = self_signed();
    let addr = serve(Some(cert), FakeSmtp::default).await;
    let config = |extra_roots| SmtpConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::Implicit,
        auth: Some(password()),
        timeout: common::TIMEOUT,
        extra_roots,
        hello_name: "mailbridge.test".to_owned(),
    };
    let mut steps = Vec::new();
    let e = smtp_test(&config(Vec::new()), &mut steps)
        .await
        .expect_err("refused by default");
    assert_refused(&e, "SMTP");
    let mut steps = Vec::new();
    smtp_test(&config(vec![der]), &mut steps)
        .await
        .expect("trusted once given as an extra root");
}

/// An HTTPS server on loopback that answers every request with `status` and `body`.
async fn https(cert: ServerCert, status: &'static str, body: &'static str) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let acceptor = acceptor(&cert);
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake here.
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn graph_refuses_a_self_signed_certificate_unless_it_is_an_extra_root() {
    let (cert, der) = self_signed();
    let addr = https(cert, "200 OK", r#"{"value":[]}"#).await;
    let client = |extra_roots| {
        GraphClient::new(
            GraphConfig {
                base_url: format!("https://localhost:{}/v1.0", addr.port()),
                timeout: common::TIMEOUT,
                extra_roots,
                ..GraphConfig::default()
            },
            Arc::new(StaticToken(Secret::new("token"))),
        )
        .expect("client")
    };
    let e = client(Vec::new())
        .mailbox("alice@example.org")
        .list_folders()
        .await
        .expect_err("refused by default");
    assert_refused(&e, "Graph");
    let folders = client(vec![der])
        .mailbox("alice@example.org")
        .list_folders()
        .await
        .expect("trusted once given as an extra root");
    assert!(folders.is_empty());
}

#[tokio::test]
async fn dav_refuses_a_self_signed_certificate_unless_it_is_an_extra_root() {
    let (cert, der) = self_signed();
    let addr = https(cert, "204 No Content", "").await;
    let client = |extra_roots| {
        let mut cfg = DavConfig::new(
            format!("https://localhost:{}/dav/", addr.port()),
            "alice",
            Secret::new("pw-alice"),
        );
        cfg.extra_roots = extra_roots;
        DavClient::new(cfg).expect("client")
    };
    match client(Vec::new()).delete("/dav/cal/a.ics", "\"1\"").await {
        Err(DavError::Failed(e)) => assert_refused(&e, "DAV"),
        other => panic!("DAV: expected a refused certificate, got {other:?}"),
    }
    client(vec![der])
        .delete("/dav/cal/a.ics", "\"1\"")
        .await
        .expect("trusted once given as an extra root");
}

/// What would turn certificate or host name verification off, in rustls, reqwest,
/// lettre or native-tls spelling.
const DISABLING: &[&str] = &[
    "danger_accept_invalid",
    "accept_invalid_certs",
    "accept_invalid_hostnames",
    ".dangerous()",
    "dangerous_configuration",
    "impl ServerCertVerifier",
    "ServerCertVerifier for",
    "tls_built_in_root_certs(false)",
    "builder_dangerous",
];

/// Where a disabling call is allowed, and why.
const ALLOWED: &[(&str, &str)] = &[(
    "crates/bench/src/outgoing.rs",
    "builder_dangerous: the benchmark's plain-lettre baseline against the local test SMTP server in the clear; not part of the service",
)];

#[test]
fn no_source_outside_the_tests_turns_verification_off() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut found = Vec::new();
    let mut scanned = 0;
    let mut stack = vec![root.join("crates")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("dir") {
            let path = entry.expect("entry").path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                // Tests and their support may build servers that need no trust.
                if !matches!(name, "tests" | "target" | "benches") {
                    stack.push(path);
                }
                continue;
            }
            if !name.ends_with(".rs") {
                continue;
            }
            scanned += 1;
            let text = std::fs::read_to_string(&path).expect("source");
            let relative = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .display()
                .to_string();
            for pattern in DISABLING {
                if text.contains(pattern)
                    && !ALLOWED
                        .iter()
                        .any(|(file, why)| *file == relative && why.starts_with(pattern))
                {
                    found.push(format!("{relative}: {pattern}"));
                }
            }
        }
    }
    assert!(scanned > 100, "the scan reads the crates ({scanned} files)");
    assert!(
        found.is_empty(),
        "certificate verification must stay on outside tests: {found:?}"
    );
}
