//! The packed family record, as the Redis functions write it (`pack_family` in
//! `redis/scripts/common.lua`) and as Rust reads it back (`list`, operators' tools):
//!
//! ```text
//! flags   u8       1 revoked, 2 has a predecessor, 4 bound (to a client, or with 8 to a
//!                  DPoP key and the client, if any), 16 (with 8) bound to its key by a
//!                  rotation rather than at login
//! n       u16      grace replays served for the predecessor
//! t l a i i48 × 4  created, last rotated, absolute end, idle end (ms since the epoch,
//!                  good until the year 6429)
//! c       12 bytes digest of the current jti
//! p       12 bytes digest of the predecessor (flag 2 only)
//! k       12 bytes digest of the bound client, or with flag 8 of the client and the key
//!                  (flag 4 only)
//! ```
//!
//! All integers big-endian. 39 to 63 bytes, so a user's hash stays in Redis's compact
//! listpack encoding. Metadata is kept in a field of its own beside the record.

use crate::StoreError;
use crate::digest::Digest;
use crate::rules::Family;

// The flags byte, as `redis/scripts/common.lua` names its bits (compared by a test there).
pub(crate) const REVOKED: u8 = 1;
pub(crate) const HAS_PREVIOUS: u8 = 2;
pub(crate) const BOUND: u8 = 4;
pub(crate) const KEY_BOUND: u8 = 8;
pub(crate) const BOUND_LATE: u8 = 16;

/// Where the current jti's digest starts: after the flags, the replay count and four times.
#[cfg(test)]
pub(crate) const CURRENT_AT: usize = 1 + 2 + 4 * 6;

/// The length of a record without its optional digests.
#[cfg(test)]
pub(crate) const HEAD_LEN: usize = CURRENT_AT + 12;

/// Reads a record (its metadata and client id, kept apart, are left `None`).
pub(crate) fn decode(raw: &[u8]) -> Result<Family, StoreError> {
    let corrupt = || StoreError::Corrupt("family record".to_owned());
    let mut rest = raw;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        if rest.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let flags = take(1)?[0];
    let replays = u16::from_be_bytes(take(2)?.try_into().map_err(|_| corrupt())?);
    let mut times = [0i64; 4];
    for time in &mut times {
        let bytes = take(6)?;
        let mut wide = [0u8; 8];
        wide[2..].copy_from_slice(bytes);
        // Sign-extend the 48-bit value.
        *time = (i64::from_be_bytes(wide) << 16) >> 16;
    }
    let mut digest =
        || -> Result<Digest, StoreError> { take(12)?.try_into().map_err(|_| corrupt()) };
    let current = digest()?;
    let previous = if flags & HAS_PREVIOUS != 0 {
        Some(digest()?)
    } else {
        None
    };
    let client = if flags & BOUND != 0 {
        Some(digest()?)
    } else {
        None
    };
    if !rest.is_empty() {
        return Err(corrupt());
    }
    let [created, last_rotated, absolute_end, idle_end] = times;
    Ok(Family {
        current,
        previous,
        replays,
        created,
        last_rotated,
        absolute_end,
        idle_end,
        revoked: flags & REVOKED != 0,
        metadata: None,
        client,
        key_bound: flags & KEY_BOUND != 0 && client.is_some(),
        bound_late: flags & (KEY_BOUND | BOUND_LATE) == KEY_BOUND | BOUND_LATE && client.is_some(),
        client_id: None,
        key_thumbprint: None,
    })
}

/// Packs a record as the scripts do (tests check the two agree byte for byte).
#[cfg(test)]
pub(crate) fn encode(f: &Family) -> Vec<u8> {
    let mut flags = 0;
    if f.revoked {
        flags |= REVOKED;
    }
    if f.previous.is_some() {
        flags |= HAS_PREVIOUS;
    }
    if f.client.is_some() {
        flags |= BOUND;
        if f.key_bound {
            flags |= KEY_BOUND;
            if f.bound_late {
                flags |= BOUND_LATE;
            }
        }
    }
    let mut out = Vec::with_capacity(HEAD_LEN + 24);
    out.push(flags);
    out.extend_from_slice(&f.replays.to_be_bytes());
    for time in [f.created, f.last_rotated, f.absolute_end, f.idle_end] {
        out.extend_from_slice(&time.to_be_bytes()[2..]);
    }
    out.extend_from_slice(&f.current);
    for digest in [f.previous, f.client].into_iter().flatten() {
        out.extend_from_slice(&digest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::{Policy, Presenter};

    /// The latest time a record can hold: 2^47 - 1 ms, in the year 6429.
    const LATEST: i64 = (1 << 47) - 1;

    #[test]
    fn records_round_trip_and_fit_a_listpack_value() {
        let policy = Policy {
            grace: 0,
            replay_cap: None,
            absolute: 1000,
            idle: 500,
        };
        let start = LATEST - policy.absolute;
        let mut f = Family::new([1; 12], start, &policy, None, Some([3; 12]));
        assert_eq!(decode(&encode(&f)).unwrap(), f);
        f.key_bound = true;
        assert_eq!(decode(&encode(&f)).unwrap(), f);
        f.rotate([1; 12], [2; 12], &Presenter::default(), start + 10, &policy);
        assert_eq!(decode(&encode(&f)).unwrap(), f);
        let mut late = Family::new([1; 12], start, &policy, None, None);
        let binder = Presenter {
            keyed: Some([4; 12]),
            binds: true,
            ..Presenter::default()
        };
        late.rotate([1; 12], [2; 12], &binder, start + 10, &policy);
        assert!(late.key_bound && late.bound_late);
        assert_eq!(decode(&encode(&late)).unwrap(), late);
        f.replays = u16::MAX;
        assert!(f.revoke(start + 20));
        let packed = encode(&f);
        assert!(packed.len() <= 64, "{} bytes", packed.len());
        assert_eq!(decode(&packed).unwrap(), f);
        let unbound = Family::new([1; 12], -5, &policy, None, None);
        assert_eq!(encode(&unbound).len(), HEAD_LEN);
        assert_eq!(decode(&encode(&unbound)).unwrap(), unbound);
    }

    #[test]
    fn truncated_or_padded_records_are_corrupt() {
        let policy = Policy {
            grace: 0,
            replay_cap: None,
            absolute: 1000,
            idle: 500,
        };
        let packed = encode(&Family::new([1; 12], 0, &policy, None, None));
        assert!(decode(&packed[..packed.len() - 1]).is_err());
        let mut padded = packed.clone();
        padded.push(0);
        assert!(decode(&padded).is_err());
    }
}
