//! libFuzzer entry point of [`s3logd_fuzz::config`].

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| s3logd_fuzz::config::run(data));
