//! The DPoP proof reader (compact JWS, JOSE header, JWK and its thumbprint, claims, `htu`
//! normalisation, replay), reached through the layer by any client: arbitrary `DPoP`
//! headers, valid proofs with bytes changed, and proofs signed by a valid key over any
//! header and claims. Each must get 200, 400 or 401, never a panic or a 5xx, and no answer
//! echoes the proof; an unchanged valid proof must be accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use token_rotation_fuzz::{drive_dpop, signed_proof, valid_proof};

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else { return };
    match first % 3 {
        // Arbitrary bytes as the header.
        0 => {
            drive_dpop(rest);
        }
        // A valid proof, then with bytes changed: pairs of (position, xor).
        1 => {
            let proof = valid_proof().into_bytes();
            if rest.is_empty() {
                assert_eq!(drive_dpop(&proof).as_u16(), 200, "a valid proof was refused");
                return;
            }
            let mut changed = proof.clone();
            for pair in rest.chunks(2) {
                let at = usize::from(pair[0]) * changed.len() / 256;
                changed[at] ^= pair.get(1).copied().unwrap_or(1).max(1);
            }
            drive_dpop(&changed);
        }
        // Signed by a valid key over a header and claims of the input's choosing, split at
        // the first 0xFF byte.
        _ => {
            let (header, claims) = match rest.iter().position(|&b| b == 0xFF) {
                Some(at) => (&rest[..at], &rest[at + 1..]),
                None => (rest, &b"{}"[..]),
            };
            drive_dpop(signed_proof(header, claims).as_bytes());
        }
    }
});
