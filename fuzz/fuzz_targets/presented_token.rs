//! Reading the presented token from a refresh request: JSON body, cookie or header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_rotation_fuzz::{Mode, drive, request};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let mode = Mode::from_byte(first);
    // JSON mode: the raw bytes are the body; other modes: they are the token.
    let req = match mode {
        Mode::Json => request(mode, "/refresh", b"", Some(rest)),
        _ => request(mode, "/refresh", rest, None),
    };
    drive(mode, req, None);
});
