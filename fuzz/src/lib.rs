//! The checks behind mailbridge's fuzz targets, one module per parser. Each is
//! also compiled into a normal test of the crate that owns the parser (with
//! `#[path]`), which replays `fuzz/regressions/<target>/*` through the same
//! function on the stable toolchain.

pub mod address;
pub mod dav;
pub mod ingest;
pub mod token;

/// The engine's parse catches a panic of mail-parser and records the message as
/// unreadable (`crates/engine/src/parse.rs`); libFuzzer's panic hook would abort on
/// it before the unwinding reaches that catch. This hook lets panics raised inside
/// mail-parser unwind to it, and hands every other panic to libFuzzer's hook.
/// Called once by the targets that parse messages.
pub fn let_the_engine_catch_parser_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let fuzzer_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_parser = info
                .location()
                .is_some_and(|l| l.file().contains("/mail-parser-"));
            if !in_parser {
                fuzzer_hook(info);
            }
        }));
    });
}
