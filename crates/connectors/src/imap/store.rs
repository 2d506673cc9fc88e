//! Changing the mailbox: moving a message to another folder and appending one.

use futures::TryStreamExt as _;
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};

use super::ImapSession;
use super::errors::{folder_missing, is_nonexistent, response_text};
use crate::errors::error;

/// A flag as IMAP sends it: a system flag (`\Seen`) or a keyword atom.
pub(super) fn valid_flag(flag: &str) -> bool {
    let atom = flag.strip_prefix('\\').unwrap_or(flag);
    !atom.is_empty()
        && atom.bytes().all(|b| {
            b.is_ascii_graphic()
                && !matches!(b, b'(' | b')' | b'{' | b'%' | b'*' | b'"' | b'\\' | b']')
        })
}

impl ImapSession {
    /// Moves message `uid` of the selected folder to `dest`, creating `dest` when
    /// missing: MOVE when offered, else UID COPY, `\Deleted` and UID EXPUNGE (or
    /// EXPUNGE without UIDPLUS). A UID that is no longer there moves nothing and is
    /// not an error, so moving twice is harmless.
    ///
    /// # Errors
    /// A classified [`SyncError`].
    pub async fn move_to(&mut self, uid: u32, dest: &str) -> Result<(), SyncError> {
        self.ensure_folder(dest).await?;
        let timeout = self.timeout;
        let uid_text = uid.to_string();
        if self.capabilities.move_ {
            let result = tokio::time::timeout(timeout, self.session.uid_mv(&uid_text, dest)).await;
            return self.finish(&format!("UID MOVE {uid} {dest}"), result);
        }
        let result = tokio::time::timeout(timeout, self.session.uid_copy(&uid_text, dest)).await;
        self.finish(&format!("UID COPY {uid} {dest}"), result)?;
        let store = async {
            let updates = self
                .session
                .uid_store(&uid_text, "+FLAGS.SILENT (\\Deleted)")
                .await?;
            updates.try_collect::<Vec<_>>().await
        };
        let result = tokio::time::timeout(timeout, store).await;
        self.finish(&format!("UID STORE {uid} +FLAGS (\\Deleted)"), result)?;
        if self.capabilities.uidplus {
            let expunge = async {
                let expunged = self.session.uid_expunge(&uid_text).await?;
                expunged.try_collect::<Vec<_>>().await
            };
            let result = tokio::time::timeout(timeout, expunge).await;
            self.finish(&format!("UID EXPUNGE {uid}"), result)?;
        } else {
            // QUIRK_NO_UIDPLUS: plain EXPUNGE also removes other messages marked
            // \Deleted by someone else; without UIDPLUS there is no narrower way.
            let expunge = async {
                let expunged = self.session.expunge().await?;
                expunged.try_collect::<Vec<_>>().await
            };
            let result = tokio::time::timeout(timeout, expunge).await;
            self.finish("EXPUNGE", result)?;
        }
        Ok(())
    }

    /// Appends `message` to `folder` with `flags` (e.g. `\Seen`).
    ///
    /// # Errors
    /// Permanent for the mailbox when the folder does not exist; permanent for the
    /// item when the server refuses the message or a flag is not valid.
    pub async fn append(
        &mut self,
        folder: &str,
        flags: &[&str],
        message: &[u8],
    ) -> Result<(), SyncError> {
        if let Some(bad) = flags.iter().find(|f| !valid_flag(f)) {
            return Err(error(
                ErrorClass::Permanent,
                ErrorScope::Item,
                format!("`{bad}` is not a valid IMAP flag"),
                "Use system flags such as \\Seen or keywords without spaces or brackets",
            ));
        }
        let flags = (!flags.is_empty()).then(|| format!("({})", flags.join(" ")));
        let timeout = self.timeout;
        let append = self.session.append(folder, flags.as_deref(), None, message);
        let result = tokio::time::timeout(timeout, append).await;
        let what = format!("APPEND to {folder}");
        match result {
            // async-imap reports a NO before the literal (TRYCREATE, ...) without its
            // words: tell a missing folder from other refusals by asking.
            Ok(Err(async_imap::error::Error::Append)) => {
                self.drain_unsolicited();
                if self.folder_exists(folder).await? {
                    Err(refused_message(&what, "the server refused the message"))
                } else {
                    Err(folder_missing(&self.endpoint, &self.username, folder))
                }
            }
            Ok(Err(async_imap::error::Error::No(text))) => {
                self.drain_unsolicited();
                let text = response_text(&text);
                if is_nonexistent(&text) {
                    Err(folder_missing(&self.endpoint, &self.username, folder))
                } else {
                    Err(refused_message(&what, &text))
                }
            }
            other => self.finish(&what, other),
        }
    }
}

fn refused_message(what: &str, text: &str) -> SyncError {
    error(
        ErrorClass::Permanent,
        ErrorScope::Item,
        format!("the IMAP server refused {what}: {text}"),
        "Check the message size against the server's limit and the mailbox's quota",
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn flags() {
        let cases = [
            ("\\Seen", true),
            ("$Forwarded", true),
            ("mailbridge-tracked", true),
            ("two words", false),
            ("(x", false),
            ("", false),
            ("\\", false),
        ];
        for (flag, ok) in cases {
            assert_eq!(super::valid_flag(flag), ok, "{flag:?}");
        }
    }
}
