//! `ImapSession::move_to` against scripted servers with and without MOVE and
//! UIDPLUS: the exact commands sent after SELECT, and what is left in the folders.
//! INBOX holds UIDs 7, 8 and 9; 9 was marked `\Deleted` by another mail program and
//! awaits its expunge, so a move of 8 that expunges more than 8 shows.

#[path = "support/fake.rs"]
mod fake;
#[path = "support/mailboxes.rs"]
mod mailboxes;
#[path = "support/scripted.rs"]
mod scripted;

use std::net::SocketAddr;
use std::time::Duration;

use fake::TestCa;
use mailboxes::{Extensions, Folder, MailboxServer, Mailboxes, Message};
use mailbridge_connectors::{Auth, ImapConfig, ImapSession};
use mailbridge_domain::error_model::{ErrorClass, ErrorScope, SyncError};
use mailbridge_domain::location::TlsPolicy;
use mailbridge_domain::secret::Secret;
use scripted::{Transcript, bounded, serve};

/// The connectors' bound of each operation.
const TIMEOUT: Duration = Duration::from_secs(10);

const INBOX_UIDVALIDITY: u32 = 1_111;
const DEST: &str = "Undeliverable";

/// INBOX with UIDs 7 (seen), 8 and 9 (`\Deleted` by someone else); `Undeliverable`
/// too when `with_dest`.
fn mailboxes(with_dest: bool) -> Mailboxes {
    let inbox = Folder::new(
        INBOX_UIDVALIDITY,
        vec![
            Message::new(7, &["\\Seen"]),
            Message::new(8, &["$Forwarded"]),
            Message::new(9, &["\\Seen", "\\Deleted"]),
        ],
    );
    let mut folders = vec![("INBOX", inbox)];
    if with_dest {
        folders.push((DEST, Folder::new(2_222, vec![Message::new(1, &[])])));
    }
    Mailboxes::new(folders)
}

fn config(addr: SocketAddr) -> ImapConfig {
    ImapConfig {
        host: "localhost".to_owned(),
        port: addr.port(),
        tls: TlsPolicy::None,
        auth: Auth::Password {
            username: "alice".to_owned(),
            password: Secret::new("pw-alice"),
        },
        timeout: TIMEOUT,
        extra_roots: Vec::new(),
    }
}

/// The commands heard, without tags.
fn commands(transcript: &Transcript) -> Vec<String> {
    transcript
        .heard()
        .iter()
        .map(|h| {
            let line = h.line();
            line.split_once(' ').map_or(line, |(_, c)| c).to_owned()
        })
        .collect()
}

/// The commands heard after `SELECT "INBOX"`, up to LOGOUT.
fn after_select(transcript: &Transcript) -> Vec<String> {
    let commands = commands(transcript);
    let at = commands
        .iter()
        .position(|c| c == "SELECT \"INBOX\"")
        .expect("a SELECT of INBOX");
    commands[at + 1..]
        .iter()
        .take_while(|c| *c != "LOGOUT")
        .cloned()
        .collect()
}

/// Connects to a server with `extensions`, selects INBOX, moves UID 8 to
/// `Undeliverable`, checks the connection still works and logs out.
async fn move_8(
    extensions: Extensions,
    mailboxes: &Mailboxes,
) -> (Result<(), SyncError>, Vec<String>) {
    let ca = TestCa::new();
    let shared = mailboxes.clone();
    let (addr, transcript) = serve(ca.server_cert("localhost", false), move || {
        MailboxServer::new(extensions, shared.clone())
    })
    .await;
    let mut session = bounded(ImapSession::connect(&config(addr)))
        .await
        .expect("logged in");
    let caps = session.capabilities();
    assert_eq!(
        (caps.move_, caps.uidplus),
        (extensions.move_, extensions.uidplus),
        "{caps:?}"
    );
    let state = bounded(session.select("INBOX")).await.expect("selected");
    assert_eq!(
        (state.uidvalidity, state.uidnext, state.exists),
        (INBOX_UIDVALIDITY, 10, 3)
    );
    let result = bounded(session.move_to(8, DEST)).await;
    // Whatever happened, client and server still agree on the conversation.
    bounded(session.noop())
        .await
        .expect("the connection is usable");
    bounded(session.logout()).await;
    let mut heard = after_select(&transcript);
    assert_eq!(heard.pop().as_deref(), Some("NOOP"), "{heard:?}");
    (result, heard)
}

fn flags(folder: &Folder, uid: u32) -> Vec<String> {
    let message = folder.messages.iter().find(|m| m.uid == uid);
    message.expect("the message").flags.clone()
}

#[tokio::test]
async fn uidplus_without_move_copies_flags_and_expunges_only_that_uid() {
    let boxes = mailboxes(false);
    let extensions = Extensions {
        move_: false,
        uidplus: true,
        refuse_copy: None,
    };
    let (result, heard) = move_8(extensions, &boxes).await;
    result.expect("moved");
    assert_eq!(
        heard,
        [
            "LIST \"\" \"Undeliverable\"",
            "CREATE \"Undeliverable\"",
            "SUBSCRIBE \"Undeliverable\"",
            "UID COPY 8 \"Undeliverable\"",
            "UID STORE 8 +FLAGS.SILENT (\\Deleted)",
            "UID EXPUNGE 8",
        ]
    );
    let inbox = boxes.folder("INBOX").expect("INBOX");
    // 9 stays: its owner may still undelete it.
    assert_eq!(inbox.uids(), [7, 9]);
    assert_eq!(flags(&inbox, 9), ["\\Seen", "\\Deleted"]);
    assert_eq!(flags(&inbox, 7), ["\\Seen"]);
    let dest = boxes.folder(DEST).expect("created");
    assert!(dest.subscribed);
    assert_eq!(dest.uids(), [1]);
    // The copy was taken before `\Deleted` was set.
    assert_eq!(flags(&dest, 1), ["$Forwarded"]);
}

#[tokio::test]
async fn without_uidplus_or_move_a_plain_expunge_ends_the_move() {
    let boxes = mailboxes(true);
    let extensions = Extensions {
        move_: false,
        uidplus: false,
        refuse_copy: None,
    };
    let (result, heard) = move_8(extensions, &boxes).await;
    result.expect("moved");
    // The folder exists: listed, neither created nor subscribed again.
    assert_eq!(
        heard,
        [
            "LIST \"\" \"Undeliverable\"",
            "UID COPY 8 \"Undeliverable\"",
            "UID STORE 8 +FLAGS.SILENT (\\Deleted)",
            "EXPUNGE",
        ]
    );
    let inbox = boxes.folder("INBOX").expect("INBOX");
    // QUIRK_NO_UIDPLUS: the plain EXPUNGE also removes 9, which another mail
    // program had marked `\Deleted`; RFC 3501 offers nothing narrower.
    assert_eq!(inbox.uids(), [7]);
    let dest = boxes.folder(DEST).expect("Undeliverable");
    assert_eq!(dest.uids(), [1, 2]);
    assert_eq!(flags(&dest, 2), ["$Forwarded"]);
}

#[tokio::test]
async fn move_is_a_single_uid_move() {
    for uidplus in [true, false] {
        let boxes = mailboxes(false);
        let extensions = Extensions {
            move_: true,
            uidplus,
            refuse_copy: None,
        };
        let (result, heard) = move_8(extensions, &boxes).await;
        result.expect("moved");
        assert_eq!(
            heard,
            [
                "LIST \"\" \"Undeliverable\"",
                "CREATE \"Undeliverable\"",
                "SUBSCRIBE \"Undeliverable\"",
                "UID MOVE 8 \"Undeliverable\"",
            ],
            "UIDPLUS {uidplus}"
        );
        let inbox = boxes.folder("INBOX").expect("INBOX");
        assert_eq!(inbox.uids(), [7, 9], "UIDPLUS {uidplus}");
        assert_eq!(flags(&inbox, 9), ["\\Seen", "\\Deleted"]);
        let dest = boxes.folder(DEST).expect("created");
        assert_eq!(dest.uids(), [1], "UIDPLUS {uidplus}");
        assert_eq!(flags(&dest, 1), ["$Forwarded"]);
    }
}

#[tokio::test]
async fn a_refused_copy_deletes_nothing() {
    let cases = [
        (
            // Quota errors are retried later (the reference), not disabling.
            "NO [OVERQUOTA] Quota exceeded (mailbox for user is full)",
            ErrorClass::Transient { retry_after: None },
            "Quota exceeded",
        ),
        (
            // The folder went away between LIST and COPY.
            "NO [TRYCREATE] Mailbox doesn't exist: Undeliverable",
            ErrorClass::Permanent,
            "Mailbox doesn't exist",
        ),
        (
            "NO [UNAVAILABLE] Internal error occurred. Refer to server log for more information.",
            ErrorClass::Transient { retry_after: None },
            "Internal error",
        ),
    ];
    for uidplus in [true, false] {
        for (refusal, class, words) in cases {
            let boxes = mailboxes(true);
            let extensions = Extensions {
                move_: false,
                uidplus,
                refuse_copy: Some(refusal),
            };
            let (result, heard) = move_8(extensions, &boxes).await;
            let e = result.expect_err("the copy was refused");
            assert_eq!((e.class, e.scope), (class, ErrorScope::Mailbox), "{e:?}");
            assert!(
                e.message.contains("UID COPY 8") && e.message.contains(words),
                "{}",
                e.message
            );
            assert_eq!(
                heard,
                [
                    "LIST \"\" \"Undeliverable\"",
                    "UID COPY 8 \"Undeliverable\""
                ],
                "{refusal}, UIDPLUS {uidplus}"
            );
            let inbox = boxes.folder("INBOX").expect("INBOX");
            assert_eq!(inbox.uids(), [7, 8, 9], "{refusal}");
            assert_eq!(flags(&inbox, 8), ["$Forwarded"], "{refusal}");
            assert_eq!(boxes.folder(DEST).expect(DEST).uids(), [1], "{refusal}");
        }
    }
}
