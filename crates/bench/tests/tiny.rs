//! The benchmarks at the tiny size, through the library: they run and produce
//! sane numbers (not the targets). Needs the test servers (./scripts/test).

use mailbridge_bench::{Database, Report, Size, ingest, mailboxes, outgoing, push, router};

fn check(r: &Report) {
    eprintln!("{r}");
    assert!(
        !r.headline.contains("NaN") && !r.headline.contains("inf"),
        "{r}"
    );
    assert!(!r.details.is_empty(), "{r}");
}

#[tokio::test]
async fn ingest_tiny() {
    assert!(ingest::mbsync_installed(), "{}", ingest::MBSYNC_MISSING);
    let r = ingest::run(&ingest::Options {
        size: Size::Tiny,
        database: Database::Sqlite,
        drop_caches: false,
    })
    .await
    .expect("the ingest benchmark runs");
    check(&r);
    // ingest::run fails unless exactly 50 emails were tracked and mbsync mirrored 50.
    assert!(r.headline.starts_with("mailbridge "), "{r}");
}

#[tokio::test]
async fn outgoing_tiny() {
    let r = outgoing::run(&outgoing::Options {
        size: Size::Tiny,
        database: Database::Sqlite,
    })
    .await
    .expect("the outgoing benchmark runs (it fails unless all 10 are sent)");
    check(&r);
}

#[tokio::test]
async fn push_tiny() {
    let r = push::run(&push::Options {
        size: Size::Tiny,
        database: Database::Sqlite,
    })
    .await
    .expect("the push benchmark runs (it fails unless all 5 reach the store)");
    check(&r);
    assert!(r.headline.contains("p50"), "{r}");
}

#[tokio::test]
async fn mailboxes_tiny() {
    let r = mailboxes::run(&mailboxes::Options {
        size: Size::Tiny,
        database: Database::Sqlite,
    })
    .await
    .expect("the mailboxes benchmark runs");
    check(&r);
    let rss = r
        .details
        .iter()
        .find(|(k, _)| k.starts_with("RSS mean"))
        .expect("RSS figures");
    assert!(!rss.1.starts_with("0.0 MiB"), "{rss:?}");
}

#[test]
fn percentiles() {
    use std::time::Duration;
    let v: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(
        mailbridge_bench::percentile(&v, 50.0),
        Duration::from_millis(50)
    );
    assert_eq!(
        mailbridge_bench::percentile(&v, 99.0),
        Duration::from_millis(99)
    );
}

#[tokio::test]
async fn router_tiny() {
    let r = router::run(&router::Options {
        size: Size::Tiny,
        database: Database::Sqlite,
    })
    .await
    .expect("the router benchmark runs (it fails unless exactly 30 emails are tracked)");
    check(&r);
    assert!(r.headline.starts_with("mailbridge accepted 30"), "{r}");
}
