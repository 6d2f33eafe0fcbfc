//! Claim validation: correctly signed tokens with arbitrary headers and payloads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_rotation_fuzz::{Mode, drive, request, sign};

fuzz_target!(|data: &[u8]| {
    // First byte: where the header ends in the input; the rest splits into header/payload.
    let Some((&split, rest)) = data.split_first() else { return };
    let split = (split as usize).min(rest.len());
    let (header, payload) = rest.split_at(split);
    let header: &[u8] = if header.is_empty() { br#"{"alg":"HS256","typ":"JWT"}"# } else { header };
    let token = sign(header, payload);
    drive(Mode::Header, request(Mode::Header, "/refresh", token.as_bytes(), None), None);
});
