//! The fuzz targets' regression inputs for the engine's parse path
//! (`fuzz/regressions/{ingest_message,address}/`), and the hostile corpus,
//! replayed through the fuzz targets' own checks on the stable toolchain.

#[path = "../../../fuzz/src/address.rs"]
mod address;
#[path = "../../../fuzz/src/ingest.rs"]
mod ingest;

#[test]
fn ingest_message_regressions() {
    replay("ingest_message", ingest::ingest_message);
}

#[test]
fn address_regressions() {
    replay("address", address::address);
}

/// Every message of the hostile corpus goes through the same checks: no panic,
/// and the facts keep the invariants the store relies on.
#[test]
fn the_hostile_corpus_parses() {
    use mailbridge_testkit::hostile;
    let mut corpus = hostile::corpus(hostile::DEFAULT_SEED);
    corpus.extend(hostile::regressions());
    let failed: Vec<&str> = corpus
        .iter()
        .filter(|m| std::panic::catch_unwind(|| ingest::ingest_message(&m.raw)).is_err())
        .map(|m| m.name.as_str())
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
}

/// Runs `check` on every file of `fuzz/regressions/<target>/` (crashes the fuzzer
/// found, kept after their fix), and names the inputs that fail again.
fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("a directory entry").path())
        // `.gitkeep` keeps an empty folder in git; it is not an input.
        .filter(|p| {
            p.is_file()
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    files.sort();
    let failed: Vec<String> = files
        .iter()
        .filter(|path| {
            let data = std::fs::read(path).expect("a regression input");
            std::panic::catch_unwind(|| check(&data)).is_err()
        })
        .map(|path| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "{target}: these inputs fail again: {failed:#?}"
    );
}
