//! Mail-server events: Dovecot's push hook (contrib/dovecot/mailbridge-push.lua,
//! configured by the test harness for users that have a `mailbridge_push_url`)
//! calls the profile's mail-events endpoint after each delivery, and the mailbox
//! is synced at once.

use std::time::{Duration, Instant};

use crate::common::{Backend, World, fast_engine, message, wait};

#[tokio::test]
async fn dovecot_push_hook_syncs_the_mailbox_at_once() {
    // No IDLE and a 10-minute poll: only the event can bring the email in quickly.
    let mut engine = fast_engine();
    engine.push = false;
    engine.timing.poll = Duration::from_secs(600);
    engine.timing.max_idle_poll = Duration::from_secs(600);
    let w = World::start(Backend::Sqlite, engine).await;
    let (_, hooked, hooked_login) = w.member_with_push_hook("all").await;
    // The control: a mailbox on the same Dovecot whose user has no hook.
    let (_, plain, plain_login) = w.member("all").await;
    let job = w.test_and_enable(&[&hooked, &plain]).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    // Test & Enable sends each mailbox a "now connected" message (delivered before
    // the job ends); the first run, right after, decides it.
    for id in [&hooked, &plain] {
        wait(
            "the first incoming run",
            Duration::from_secs(10),
            || async { (!w.decisions(id, "").await.is_empty()).then_some(()) },
        )
        .await;
    }

    let (raw, plain_id) = message(
        "Carl <carl@fabrikam.com>",
        &[&plain_login.address],
        "To the mailbox without a hook",
        "",
    );
    w.servers.deliver(&plain_login.address, &raw).await.unwrap();
    let (raw, hooked_id) = message(
        "Carl <carl@fabrikam.com>",
        &[&hooked_login.address],
        "To the mailbox with a hook",
        "",
    );
    let started = Instant::now();
    w.servers
        .deliver(&hooked_login.address, &raw)
        .await
        .unwrap();
    let email = wait(
        "the email announced by the hook",
        Duration::from_secs(10),
        || async {
            w.emails(&format!("&message_id={hooked_id}"))
                .await
                .into_iter()
                .next()
        },
    )
    .await;
    let took = started.elapsed();
    assert_eq!(email["subject"], "To the mailbox with a hook", "{email}");
    assert!(
        took < Duration::from_secs(5),
        "the hooked mailbox took {took:?}"
    );
    // The mailbox without a hook waits for its poll, ten minutes away.
    assert!(
        w.emails(&format!("&message_id={plain_id}"))
            .await
            .is_empty(),
        "the mailbox without a hook was synced too: the event woke the wrong mailbox"
    );
}
