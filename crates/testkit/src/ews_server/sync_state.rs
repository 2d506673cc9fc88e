//! Sync states: opaque base64 to the client, to the server a versioned record of
//! (mailbox, folder or hierarchy, the folder's epoch, the change number the client
//! has seen) sealed with an HMAC of a key only this server knows, so that a forged,
//! edited or foreign state is refused (ErrorInvalidSyncStateData), as is one made
//! before the folder's states were invalidated (its epoch moved on).

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The format version, the first byte of every state.
const VERSION: u8 = 1;
const TAG_LEN: usize = 16;

/// What a sync state stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyncMark {
    pub mailbox: String,
    /// A folder id, or `""` for the folder hierarchy.
    pub scope: String,
    pub epoch: u64,
    /// The change number up to which the client knows the folder.
    pub seq: u64,
}

pub(crate) struct SyncSealer {
    key: hmac::Key,
}

impl SyncSealer {
    /// A sealer with a fresh random key.
    pub fn new() -> SyncSealer {
        let mut secret = Vec::with_capacity(32);
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        secret.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        SyncSealer {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
        }
    }

    pub fn seal(&self, mark: &SyncMark) -> String {
        let mut bytes = vec![VERSION];
        bytes.extend_from_slice(payload(mark).as_bytes());
        let tag = hmac::sign(&self.key, &bytes);
        bytes.extend_from_slice(&tag.as_ref()[..TAG_LEN]);
        STANDARD.encode(bytes)
    }

    /// The mark a state stands for, or `None` for anything this server did not seal.
    pub fn open(&self, state: &str) -> Option<SyncMark> {
        let bytes = STANDARD.decode(state.trim()).ok()?;
        if bytes.len() <= 1 + TAG_LEN || bytes[0] != VERSION {
            return None;
        }
        let (body, tag) = bytes.split_at(bytes.len() - TAG_LEN);
        let expected = hmac::sign(&self.key, body);
        // Constant time is not needed in a test server; equality is.
        if &expected.as_ref()[..TAG_LEN] != tag {
            return None;
        }
        let text = std::str::from_utf8(&body[1..]).ok()?;
        let mut parts = text.split('\n');
        let mark = SyncMark {
            mailbox: parts.next()?.to_owned(),
            scope: parts.next()?.to_owned(),
            epoch: parts.next()?.parse().ok()?,
            seq: parts.next()?.parse().ok()?,
        };
        parts.next().is_none().then_some(mark)
    }
}

fn payload(mark: &SyncMark) -> String {
    format!(
        "{}\n{}\n{}\n{}",
        mark.mailbox, mark.scope, mark.epoch, mark.seq
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mark() -> SyncMark {
        SyncMark {
            mailbox: "bob@example.org".into(),
            scope: "AAAkSW5ib3g=".into(),
            epoch: 1,
            seq: 42,
        }
    }

    #[test]
    fn a_sealed_state_opens_to_its_mark() {
        let sealer = SyncSealer::new();
        let state = sealer.seal(&mark());
        assert_eq!(sealer.open(&state), Some(mark()));
    }

    #[test]
    fn forged_edited_and_foreign_states_are_refused() {
        let sealer = SyncSealer::new();
        let state = sealer.seal(&mark());
        let mut edited = STANDARD.decode(&state).expect("base64");
        let at = edited.len() - TAG_LEN - 1;
        edited[at] ^= 1;
        let unsealed = STANDARD.encode(format!("\u{1}{}", payload(&mark())));
        let foreign = SyncSealer::new().seal(&mark());
        for bad in [
            "",
            "not base64 at all",
            "H4sIAAAAAAAEAO29B2AcSZYlJi9tynt/SvVK1+B0ugXX4HShX4/Q==",
            &STANDARD.encode(edited),
            &unsealed,
            &foreign,
        ] {
            assert_eq!(sealer.open(bad), None, "{bad:?}");
        }
    }
}
