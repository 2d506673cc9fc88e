//! The fuzz targets' regression inputs for the iCalendar and vCard readers
//! (`fuzz/regressions/{ical,vcard}/`), replayed through the fuzz targets' own
//! checks on the stable toolchain.

#[path = "../../../fuzz/src/dav.rs"]
mod dav;

#[test]
fn ical_regressions() {
    replay("ical", dav::ical);
}

#[test]
fn vcard_regressions() {
    replay("vcard", dav::vcard);
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
