//! Finding the issued token in the app's response on an issuing route: JSON body or
//! `Set-Cookie`.
#![no_main]

use bytes::Bytes;
use http::{Response, header};
use http_body_util::Full;
use libfuzzer_sys::fuzz_target;
use token_rotation_fuzz::{Mode, drive, request};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    let mode = Mode::from_byte(first);
    let mut response = Response::builder().header(header::CONTENT_TYPE, "application/json");
    let body = match mode {
        Mode::Cookie => {
            if let Ok(value) = header::HeaderValue::from_bytes(rest) {
                response = response.header(header::SET_COOKIE, value);
            }
            Bytes::new()
        }
        _ => Bytes::copy_from_slice(rest),
    };
    let inner = response.body(Full::new(body)).expect("valid response");
    drive(mode, request(mode, "/login", b"", Some(b"{}")), Some(inner));
});
