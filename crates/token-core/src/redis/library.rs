//! The store's Redis Functions library: its Lua source, its name, and its functions.

use sha2::Digest as _;

use crate::config::millis;
use crate::{StoreConfig, StoreError};

/// The store's Redis Functions library: the Lua files of `scripts/` joined into one source,
/// behind the store's constants, and named after a digest of that source
/// (`token_rotation_<hex>`), so two app versions (or configurations) on one Redis never call
/// each other's functions, and a server that lost the library (a restart without
/// persistence, a new replica promoted) gets it again on the first call that misses it.
pub(super) struct Library {
    /// The library's name, also the prefix of its function names.
    pub(super) name: String,
    /// The source as `FUNCTION LOAD` takes it.
    pub(super) source: String,
}

impl std::fmt::Debug for Library {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Library")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// The scripts, in the order they build on each other.
pub(super) const SCRIPTS: &str = concat!(
    include_str!("scripts/common.lua"),
    include_str!("scripts/rules.lua"),
    include_str!("scripts/register.lua"),
    include_str!("scripts/adopt.lua"),
    include_str!("scripts/rotate.lua"),
    include_str!("scripts/revoke.lua"),
    include_str!("scripts/list.lua"),
);

impl Library {
    /// The library for `config`. `rotate`, the store's hottest call, reads the policy from
    /// constants written into the source rather than from four more arguments on every call
    /// (each argument costs Redis a Lua string per call); stores with different policies on
    /// one server load different libraries.
    pub(super) fn for_config(config: &StoreConfig) -> Library {
        let body = functions_source(config);
        let digest = sha2::Sha256::digest(body.as_bytes());
        let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
        let name = format!("token_rotation_{hex}");
        let mut source = format!("#!lua name={name}\n{body}\n");
        for (function, callback, flags) in FUNCTIONS {
            source.push_str(&format!(
                "redis.register_function{{function_name='{name}_{function}', \
                 callback={callback}, flags={{{flags}}}}}\n"
            ));
        }
        Library { name, source }
    }
}

/// The Lua of the store's functions for `config`: its policy as constants, then the scripts.
pub(super) fn functions_source(config: &StoreConfig) -> String {
    {
        let grace = millis(config.replay_window());
        let constants = format!(
            "-- The store's policy (StoreConfig), for rotate: the replay window (the longer of\n\
             -- the grace and retry windows; 0 without grace) in ms,\n\
             -- the idle lifetime in ms, the replay cap (-1: none), revoke_all_on_reuse; how long\n\
             -- a spent DPoP proof is remembered (PROOF_JTI_LIFETIME, as PX); for adoption, the\n\
             -- absolute lifetime and how long a revocation mark is kept, in ms.\n\
             local GRACE, IDLE_LIFETIME, REPLAY_CAP, REVOKE_EVERYTHING = {grace}, {idle}, {cap}, {all}\n\
             local PROOF_PX = '{proof}'\n\
             local ABSOLUTE_LIFETIME, REVOCATION_MARK_TTL = {absolute}, {marks}\n",
            idle = millis(config.idle_lifetime),
            cap = config.max_grace_replays.map_or(-1, i64::from),
            all = config.revoke_all_on_reuse,
            proof = millis(crate::PROOF_JTI_LIFETIME),
            absolute = config.policy().absolute,
            marks = crate::rules::revocation_mark_ttl_ms(&config.policy()),
        );
        format!("{constants}{SCRIPTS}")
    }
}

/// Each function of the library, the Lua function that implements it, and its flags
/// (`no-writes` lets `FCALL_RO` run it on a replica).
const FUNCTIONS: [(&str, &str, &str); 9] = [
    ("register", "register", ""),
    ("spend_proof", "spend_proof_alone", ""),
    ("adopt", "adopt", ""),
    ("rotate", "rotate", ""),
    ("revoke", "revoke_one", ""),
    ("revoke_all", "revoke_every", ""),
    ("revoke_client", "revoke_of_client", ""),
    ("list", "list", "'no-writes'"),
    ("prune", "prune_ended", ""),
];

/// Whether Redis answered that a function is not loaded.
pub(super) fn function_missing(err: &StoreError) -> bool {
    matches!(err, StoreError::Redis(e) if e.to_string().contains("Function not found"))
}
