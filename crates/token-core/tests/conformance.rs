//! The store conformance suite (`token_core::kit`): the same tests, written by
//! `conformance_tests!`, run against `MemoryStore` and against `RedisStore` on each connection
//! source (each test on its own `redis-server`), and on a local three-master Redis Cluster,
//! in both modes (a family claim in every token, or none).

mod support;

use support::{Backend, Memory, Mode, Redis};

/// The suite against every store, with tokens naming their family as `$mode` says.
macro_rules! every_store {
    ($mode:expr) => {
        mod memory {
            use super::*;
            token_core::conformance_tests!(Memory($mode));
        }
        mod redis_connection_manager {
            use super::*;
            token_core::conformance_tests!(Redis(Backend::RedisManager, $mode));
        }
        mod redis_bb8_redis {
            use super::*;
            token_core::conformance_tests!(Redis(Backend::RedisBb8Redis, $mode));
        }
        mod redis_bb8_client {
            use super::*;
            token_core::conformance_tests!(Redis(Backend::RedisBb8Client, $mode));
        }
        mod redis_cluster {
            use super::*;
            token_core::conformance_tests!(Redis(Backend::RedisCluster, $mode));
        }
    };
}

mod family_claim {
    use super::*;
    every_store!(Mode::FamilyClaim);
}

mod token_index {
    use super::*;
    every_store!(Mode::TokenIndex);
}
