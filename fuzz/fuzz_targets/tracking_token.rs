#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| mailbridge_fuzz::token::tracking_token(data));
