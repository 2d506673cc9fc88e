#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    mailbridge_fuzz::let_the_engine_catch_parser_panics();
    mailbridge_fuzz::ingest::ingest_message(data);
});
