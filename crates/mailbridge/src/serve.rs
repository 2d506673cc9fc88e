//! `mailbridge serve`: open the store, bootstrap, start the engine and the HTTP
//! API, and stop cleanly on SIGTERM or Ctrl-C.

use anyhow::Context;
use mailbridge_store::Store;
use tokio::net::TcpListener;

use crate::bootstrap;
use crate::config::Settings;

pub async fn run(settings: Settings) -> anyhow::Result<()> {
    create_private_dir(&settings.data_dir)?;
    let key = bootstrap::store_key(&settings)?;
    let database = settings.database_url();
    let store = Store::open(&database, key.cipher.clone())
        .await
        .with_context(|| format!("open the store ({})", redact_url(&database)))?;
    tracing::info!(backend = ?store.backend(), database = %redact_url(&database), "store open, migrations applied");
    bootstrap::check_key(&store, &key).await?;
    bootstrap::admin_token(&store, &settings.data_dir).await?;
    let engine_config = settings.engine_config(bootstrap::node_id(&settings)?)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let engine = mailbridge_engine::Engine::new(store.clone(), engine_config);
    // Without the engine (`engine = false`) the API still serves; other nodes'
    // engines find the work it queues on their next tick, and readiness does not
    // wait for an engine that will not start.
    let app = match settings.engine {
        true => mailbridge_http::app_for_engine(&engine),
        false => mailbridge_http::app_with(store.clone(), engine.config.clone()),
    };
    let app = match settings.metrics_token.as_deref().filter(|t| !t.is_empty()) {
        Some(token) => mailbridge_http::with_metrics_token(app, token),
        None => app,
    };
    let inbound = start_inbound(&settings, &store, &engine, stopped.clone()).await?;
    let engine = settings.engine.then(|| tokio::spawn(engine.run(stopped)));

    let listener = TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("listen on {}", settings.listen))?;
    let address = listener.local_addr()?;
    tracing::info!(%address, web_admin = %format!("http://{address}/"), "HTTP API and web admin listening");
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        })
        .await
        .context("serve HTTP")?;
    for task in &inbound.listeners {
        // No new connections; those in progress finish (a message is stored
        // before its 250, so one cut off is only retried by its sender).
        task.abort();
    }
    if let Some(worker) = inbound.worker {
        let _ = worker.await;
    }
    if let Some(engine) = engine {
        // The engine finishes the runs in flight and releases their leases.
        let _ = engine.await;
    }
    store.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// The push route's tasks: the SMTP/LMTP listeners (when configured) and the
/// worker that processes what they store (on every node running the engine, so
/// a cluster shares it whichever node received the mail).
struct Inbound {
    listeners: Vec<tokio::task::JoinHandle<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

async fn start_inbound(
    settings: &Settings,
    store: &Store,
    engine: &std::sync::Arc<mailbridge_engine::Engine>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Inbound> {
    use mailbridge_engine::inbound::{InboundListener, worker};
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let mut listeners = Vec::new();
    if let Some(mut config) = settings.inbound_config()? {
        config.stored = Some(wake.clone());
        config.metrics = Some(engine.metrics.clone());
        let listener = InboundListener::bind(store.clone(), config)
            .await
            .context("bind the inbound listener (smtp_listen / lmtp_listen)")?;
        for (protocol, address) in [
            ("SMTP", listener.smtp_addr()),
            ("LMTP", listener.lmtp_addr()),
        ] {
            if let Some(address) = address {
                tracing::info!(%address, protocol, "inbound listener accepting mail for router mailboxes");
            }
        }
        listeners = listener.spawn();
    }
    let worker_config = settings.inbound_worker_config()?;
    let worker = settings
        .engine
        .then(|| tokio::spawn(worker::run(engine.clone(), worker_config, wake, stopped)));
    Ok(Inbound { listeners, worker })
}

/// Creates the data directory readable by the service's user only (it holds the
/// store key, the admin token and the embedded database).
fn create_private_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("create the data directory {}", dir.display()))?;
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C (SIGINT).
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("a SIGTERM handler can be installed");
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown requested; finishing requests in flight");
}

/// A database URL without its password, for logs.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_passwords_are_not_logged() {
        assert_eq!(
            super::redact_url("postgres://mb:s3cret@db:5432/mb"),
            "postgres://mb:***@db:5432/mb"
        );
        assert_eq!(super::redact_url("postgres://db/mb"), "postgres://db/mb");
        assert_eq!(
            super::redact_url("mailbridge-data/mailbridge.db"),
            "mailbridge-data/mailbridge.db"
        );
    }
}
