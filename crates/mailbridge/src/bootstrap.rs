//! First start: the store key and the system administrator's token, each written
//! to a file that only the service's user can read. The token's value is never
//! logged; the log names the file.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use mailbridge_store::{Cipher, Store};

use crate::config::Settings;

/// Where the store key comes from, and whether it was just created.
pub struct StoreKey {
    pub cipher: Cipher,
    pub created_file: Option<PathBuf>,
}

/// Writes `contents` to a new file readable and writable by its owner only.
fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("create {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// The store key from the settings, from its file, or a new one in `<data_dir>/secret.key`.
pub fn store_key(settings: &Settings) -> anyhow::Result<StoreKey> {
    let from_text = |text: &str, source: &str| {
        Cipher::from_base64(text).map_err(|e| anyhow::anyhow!("{source}: {e}"))
    };
    if let Some(text) = &settings.secret_key {
        return Ok(StoreKey {
            cipher: from_text(text, "secret_key setting")?,
            created_file: None,
        });
    }
    let path = settings
        .secret_key_file
        .clone()
        .unwrap_or_else(|| settings.data_dir.join("secret.key"));
    if path.exists() {
        let text =
            std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
        return Ok(StoreKey {
            cipher: from_text(&text, &path.display().to_string())?,
            created_file: None,
        });
    }
    if settings.secret_key_file.is_some() {
        bail!("the secret_key_file {} does not exist", path.display());
    }
    let key = Cipher::generate_key();
    write_private(&path, &format!("{key}\n"))?;
    Ok(StoreKey {
        cipher: from_text(&key, "new key")?,
        created_file: Some(path),
    })
}

/// Refuses a key made just now for a store that already holds data (its secrets
/// were sealed with another key), and checks the key against the store.
pub async fn check_key(store: &Store, key: &StoreKey) -> anyhow::Result<()> {
    if let Some(path) = &key.created_file {
        if !store.is_empty().await? {
            let _ = std::fs::remove_file(path);
            bail!(
                "the store already holds data but no secret key was found ({} is missing); restore the original key file or set secret_key",
                path.display()
            );
        }
        tracing::info!(path = %path.display(), "created the store's secret key");
    }
    store.verify_key().await?;
    Ok(())
}

/// On the first start, issues the system administrator's token into `admin.token`.
pub async fn admin_token(store: &Store, data_dir: &Path) -> anyhow::Result<()> {
    if store.has_system_admin_token().await? {
        return Ok(());
    }
    let issued = store
        .issue_system_admin_token("system administrator")
        .await?;
    let path = data_dir.join("admin.token");
    write_private(&path, &format!("{}\n", issued.token))?;
    tracing::info!(path = %path.display(), "created the system administrator's API token; read it from this file");
    Ok(())
}

/// This node's name: from the settings, else from `<data_dir>/node.id` (created
/// on the first start).
pub fn node_id(settings: &Settings) -> anyhow::Result<String> {
    if let Some(id) = &settings.node_id {
        return Ok(id.clone());
    }
    let path = settings.data_dir.join("node.id");
    if let Ok(text) = std::fs::read_to_string(&path) {
        let id = text.trim();
        if !id.is_empty() {
            return Ok(id.to_owned());
        }
    }
    let id = format!("node-{}", mailbridge_domain::ids::new_id());
    write_private(&path, &format!("{id}\n"))?;
    Ok(id)
}
