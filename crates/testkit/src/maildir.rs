//! Writing messages straight into a user's Maildir: much faster than LMTP for filling
//! large mailboxes (Dovecot indexes them at its next sync of the folder).

use std::fs;
use std::os::unix::fs::{MetadataExt as _, chown};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `raw` into `<maildir>/new/` by way of `tmp/` (the Maildir delivery
/// protocol), creating the Maildir if needed. Everything created is given to the owner
/// of `mail_root`, the user Dovecot reads mail as (`nobody` when run as root).
pub(crate) fn write_new_message(mail_root: &Path, maildir: &Path, raw: &[u8]) -> PathBuf {
    let owner = fs::metadata(mail_root)
        .unwrap_or_else(|error| panic!("reading {}: {error}", mail_root.display()));
    let give = |path: &Path| {
        chown(path, Some(owner.uid()), Some(owner.gid())).unwrap_or_else(|error| {
            panic!(
                "giving {} to uid {} (Dovecot's mail user): {error}",
                path.display(),
                owner.uid()
            )
        });
    };
    for dir in [
        maildir.parent().unwrap_or(mail_root),
        maildir,
        &maildir.join("cur"),
        &maildir.join("new"),
        &maildir.join("tmp"),
    ] {
        if !dir.is_dir() {
            fs::create_dir_all(dir)
                .unwrap_or_else(|error| panic!("creating {}: {error}", dir.display()));
            give(dir);
        }
    }

    let name = unique_name();
    let tmp = maildir.join("tmp").join(&name);
    let new = maildir.join("new").join(&name);
    fs::write(&tmp, raw).unwrap_or_else(|error| panic!("writing {}: {error}", tmp.display()));
    give(&tmp);
    fs::rename(&tmp, &new)
        .unwrap_or_else(|error| panic!("moving {} to new/: {error}", tmp.display()));
    new
}

/// `<seconds>.M<micros>P<pid>Q<counter>.mailbridge-testkit`, unique across processes.
fn unique_name() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!(
        "{}.M{}P{}Q{}.mailbridge-testkit",
        now.as_secs(),
        now.subsec_micros(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

#[cfg(test)]
mod tests {
    use super::write_new_message;

    #[test]
    fn write_new_message_creates_the_maildir_and_lands_in_new() {
        let root = tempfile::tempdir().expect("temp dir");
        let maildir = root.path().join("erin").join("Maildir");
        let first = write_new_message(root.path(), &maildir, b"Subject: 1\r\n\r\n");
        let second = write_new_message(root.path(), &maildir, b"Subject: 2\r\n\r\n");
        assert_ne!(first, second);
        assert_eq!(first.parent(), Some(maildir.join("new").as_path()));
        assert_eq!(std::fs::read(&second).expect("read"), b"Subject: 2\r\n\r\n");
        assert!(maildir.join("cur").is_dir());
        let tmp_entries = std::fs::read_dir(maildir.join("tmp")).expect("tmp").count();
        assert_eq!(tmp_entries, 0);
    }
}
