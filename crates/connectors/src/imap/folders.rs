//! Folders: listing with special uses, finding the Sent (or another special-use)
//! folder, selecting, and creating a missing folder.

use futures::TryStreamExt as _;
use mailbridge_domain::error_model::SyncError;

use super::errors::{folder_missing, is_nonexistent, response_text};
use super::{Folder, FolderState, ImapSession, SpecialUse};

/// The usual names of each special-use folder on servers without SPECIAL-USE,
/// most common first (Dovecot and Cyrus, Exchange, Apple, Courier-style `INBOX.`,
/// Gmail).
fn usual_names(use_: SpecialUse) -> &'static [&'static str] {
    match use_ {
        SpecialUse::Sent => &[
            "Sent",
            "Sent Items",
            "Sent Messages",
            "INBOX.Sent",
            "INBOX/Sent",
            "Sent Mail",
            "[Gmail]/Sent Mail",
        ],
        SpecialUse::Drafts => &["Drafts", "INBOX.Drafts", "INBOX/Drafts", "[Gmail]/Drafts"],
        SpecialUse::Trash => &[
            "Trash",
            "Deleted Items",
            "Deleted Messages",
            "INBOX.Trash",
            "INBOX/Trash",
            "[Gmail]/Trash",
        ],
        SpecialUse::Junk => &[
            "Junk",
            "Spam",
            "Junk E-mail",
            "Junk Email",
            "INBOX.Junk",
            "INBOX/Junk",
            "INBOX.Spam",
            "[Gmail]/Spam",
        ],
        SpecialUse::Archive => &["Archive", "Archives", "INBOX.Archive", "INBOX/Archive"],
        SpecialUse::All => &["[Gmail]/All Mail", "All Mail"],
    }
}

/// The folder for `use_`: the one marked with it, else the first usual name found
/// (case-insensitively).
pub(super) fn pick_special_use(folders: &[Folder], use_: SpecialUse) -> Option<String> {
    if let Some(marked) = folders.iter().find(|f| f.special_use == Some(use_)) {
        return Some(marked.name.clone());
    }
    usual_names(use_).iter().find_map(|usual| {
        folders
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(usual))
            .map(|f| f.name.clone())
    })
}

fn special_use(attributes: &[async_imap::types::NameAttribute<'_>]) -> Option<SpecialUse> {
    use async_imap::types::NameAttribute as A;
    attributes.iter().find_map(|a| match a {
        A::Sent => Some(SpecialUse::Sent),
        A::Drafts => Some(SpecialUse::Drafts),
        A::Trash => Some(SpecialUse::Trash),
        A::Junk => Some(SpecialUse::Junk),
        A::Archive => Some(SpecialUse::Archive),
        A::All => Some(SpecialUse::All),
        _ => None,
    })
}

fn selectable(attributes: &[async_imap::types::NameAttribute<'_>]) -> bool {
    use async_imap::types::NameAttribute as A;
    !attributes.iter().any(|a| match a {
        A::NoSelect => true,
        A::Extension(e) => e.eq_ignore_ascii_case("\\NonExistent"),
        _ => false,
    })
}

impl ImapSession {
    /// Every selectable folder, with its special use (RFC 6154) when marked.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn list_folders(&mut self) -> Result<Vec<Folder>, SyncError> {
        self.list("*").await
    }

    /// The folder with `use_`: by SPECIAL-USE attributes, else by the usual names
    /// ("Sent", "Sent Items", "Sent Messages", "INBOX.Sent", ...).
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn find_special_use(
        &mut self,
        use_: SpecialUse,
    ) -> Result<Option<String>, SyncError> {
        let folders = self.list_folders().await?;
        Ok(pick_special_use(&folders, use_))
    }

    /// Selects `folder` read-write, enabling CONDSTORE when offered.
    ///
    /// # Errors
    /// Permanent for the mailbox when the folder does not exist; else classified.
    pub async fn select(&mut self, folder: &str) -> Result<FolderState, SyncError> {
        let timeout = self.timeout;
        self.selected = None;
        self.changed = false;
        let what = format!("SELECT {folder}");
        let result = if self.capabilities.condstore {
            tokio::time::timeout(timeout, self.session.select_condstore(folder)).await
        } else {
            tokio::time::timeout(timeout, self.session.select(folder)).await
        };
        let mailbox = match result {
            Ok(Err(async_imap::error::Error::No(text)))
                if is_nonexistent(&response_text(&text)) =>
            {
                return Err(folder_missing(&self.endpoint, &self.username, folder));
            }
            other => self.finish(&what, other)?,
        };
        let Some(uidvalidity) = mailbox.uid_validity else {
            return Err(self
                .endpoint
                .protocol(&format!("SELECT {folder} gave no UIDVALIDITY")));
        };
        let uidnext = match mailbox.uid_next {
            Some(uidnext) => uidnext,
            // QUIRK_NO_UIDNEXT: RFC 3501 makes UIDNEXT in SELECT a SHOULD; STATUS has it.
            None => self.status_uidnext(folder).await?,
        };
        self.selected = Some((folder.to_owned(), mailbox.exists));
        Ok(FolderState {
            uidvalidity,
            uidnext,
            exists: mailbox.exists,
            highestmodseq: mailbox.highest_modseq,
        })
    }

    async fn status_uidnext(&mut self, folder: &str) -> Result<u32, SyncError> {
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.session.status(folder, "(UIDNEXT)")).await;
        let status = self.finish(&format!("STATUS {folder}"), result)?;
        status.uid_next.ok_or_else(|| {
            self.endpoint
                .protocol(&format!("neither SELECT nor STATUS {folder} gave UIDNEXT"))
        })
    }

    /// Creates `folder` unless it exists (and subscribes to it, so that mail
    /// programs show it).
    pub(super) async fn ensure_folder(&mut self, folder: &str) -> Result<(), SyncError> {
        let pattern = quoted(folder);
        if !self.list(&pattern).await?.is_empty() {
            return Ok(());
        }
        let timeout = self.timeout;
        let result = tokio::time::timeout(timeout, self.session.create(folder)).await;
        match result {
            // Created by someone else in between.
            Ok(Err(async_imap::error::Error::No(text)))
                if response_text(&text).to_ascii_lowercase().contains("exists") => {}
            other => self.finish(&format!("CREATE {folder}"), other)?,
        }
        let result = tokio::time::timeout(timeout, self.session.subscribe(folder)).await;
        // A folder that cannot be subscribed to is still usable.
        let _ = self.finish(&format!("SUBSCRIBE {folder}"), result);
        Ok(())
    }

    /// Whether `folder` exists.
    pub(super) async fn folder_exists(&mut self, folder: &str) -> Result<bool, SyncError> {
        Ok(!self.list(&quoted(folder)).await?.is_empty())
    }

    async fn list(&mut self, pattern: &str) -> Result<Vec<Folder>, SyncError> {
        let timeout = self.timeout;
        let listing = async {
            let names = self.session.list(Some(""), Some(pattern)).await?;
            names.try_collect::<Vec<_>>().await
        };
        let result = tokio::time::timeout(timeout, listing).await;
        let names = self.finish(&format!("LIST {pattern}"), result)?;
        Ok(names
            .iter()
            .filter(|n| selectable(n.attributes()))
            .map(|n| Folder {
                name: n.name().to_owned(),
                special_use: special_use(n.attributes()),
            })
            .collect())
    }
}

/// A folder name as an IMAP quoted string (for LIST patterns, which async-imap
/// passes through unquoted). `%` and `*` in a name still act as wildcards there,
/// so callers compare names exactly.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(name: &str, special_use: Option<SpecialUse>) -> Folder {
        Folder {
            name: name.to_owned(),
            special_use,
        }
    }

    #[test]
    fn special_use_by_attribute_then_by_usual_name() {
        let marked = [
            folder("INBOX", None),
            folder("Sent Items", None),
            folder("Gesendet", Some(SpecialUse::Sent)),
        ];
        let named = [
            folder("INBOX", None),
            folder("INBOX.Sent", None),
            folder("sent items", None),
        ];
        let cases: [(&[Folder], SpecialUse, Option<&str>); 5] = [
            (&marked, SpecialUse::Sent, Some("Gesendet")),
            (&named, SpecialUse::Sent, Some("sent items")),
            (&named, SpecialUse::Trash, None),
            (
                &[folder("Deleted Items", None)],
                SpecialUse::Trash,
                Some("Deleted Items"),
            ),
            (&[folder("Spam", None)], SpecialUse::Junk, Some("Spam")),
        ];
        for (folders, use_, expected) in cases {
            assert_eq!(
                pick_special_use(folders, use_).as_deref(),
                expected,
                "{use_:?} in {folders:?}"
            );
        }
    }

    #[test]
    fn quoted_names() {
        assert_eq!(quoted("Undeliverable"), "\"Undeliverable\"");
        assert_eq!(quoted("a\"b\\c"), "\"a\\\"b\\\\c\"");
    }
}
