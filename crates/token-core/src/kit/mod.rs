//! The store kit: the conformance suite every store of this crate passes, published so a
//! store written elsewhere (on Postgres, DynamoDB, or a wrapper around one of these) can
//! prove it keeps the same rules. Behind the `kit` feature.
//!
//! A store joins the suite with a [`StoreKit`]: it makes a fresh store (and whatever backs
//! it) for each test, from a configuration the test tunes, on a [`ClockOffset`](crate::ClockOffset) the test
//! moves. [`conformance_tests!`](crate::conformance_tests) then writes one `#[tokio::test]`
//! per rule, so a failure names the rule it broke:
//!
//! ```
//! use token_core::kit::{Fixture, Mode, StoreKit};
//! use token_core::{ClockOffset, MemoryStore, StoreConfig};
//!
//! /// My store, made fresh for each test (here: the memory store itself).
//! struct MyKit(Mode);
//!
//! impl StoreKit for MyKit {
//!     type Store = MemoryStore;
//!     type Backend = ();
//!     fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<MemoryStore> {
//!         let clock = ClockOffset::default();
//!         let config = tune(token_core::kit::config(&clock));
//!         Fixture::new(MemoryStore::new(config), self.0, clock, ())
//!     }
//! }
//!
//! mod family_claim {
//!     use super::*;
//!     token_core::conformance_tests!(MyKit(Mode::FamilyClaim));
//! }
//! ```
//!
//! Run it in both [`Mode`]s: with a family claim in every token and without one (the store
//! finds families through its token index). The suite needs `tokio` with the `macros` and
//! `rt-multi-thread` features among the caller's dev-dependencies. The crate's own memory
//! and Redis stores run exactly this suite.
//!
//! A store that keeps real time for expiry (as Redis does with its TTLs) should answer
//! [`StoreKit::keys_left`], so the test of expired sessions can check that nothing stayed.

mod fixture;
pub mod model;
pub mod suite;

pub use self::fixture::{ByJti, EXP, Fixture, ISSUED, Memory, Mode, StoreKit, config, next};

/// Writes the store conformance suite for a [`StoreKit`](crate::kit::StoreKit): one
/// `#[tokio::test]` per rule, named after it, each on a fresh store from the kit
/// expression. Invoke it once per [`Mode`](crate::kit::Mode), each in a module of its own.
/// See the [`kit`](crate::kit) module.
#[macro_export]
macro_rules! conformance_tests {
    ($kit:expr) => {
        $crate::__conformance_tests!(
            $kit;
            register_then_rotate_is_rotated,
            retry_within_grace_gets_same_successor,
            grace_window_is_not_extended_by_retries,
            reuse_after_grace_revokes_family,
            token_older_than_predecessor_is_reuse_even_within_grace,
            grace_zero_makes_any_second_use_reuse,
            replays_past_the_cap_are_refused_and_the_session_goes_on,
            a_replay_cap_of_zero_allows_no_replay,
            replays_are_capped_by_default,
            sixteen_parallel_presentations_end_no_session,
            a_retry_after_the_grace_window_gets_the_successor_nobody_used,
            a_spent_token_after_its_successor_was_used_is_reuse,
            a_retry_after_the_retry_window_is_reuse,
            grace_zero_turns_the_retry_window_off,
            logins_beyond_the_session_cap_drop_the_oldest,
            unknown_tokens_are_refused,
            duplicate_jtis_are_refused,
            absolute_lifetime_is_never_extended,
            idle_lifetime_ends_family_and_rotation_renews_it,
            an_ended_family_is_gone_before_it_is_pruned,
            ended_families_answer_alike_once_their_keys_expired,
            eviction_follows_last_use_when_idle_equals_absolute,
            expiries_out_of_range_are_refused_alike,
            revoke_by_jti_revokes_its_family,
            revoke_family_ends_one_session,
            a_revoked_session_serves_no_replay,
            revoke_all_counts_live_families,
            list_shows_live_sessions,
            reuse_revokes_only_that_family_by_default,
            reuse_can_revoke_every_family_of_the_user,
            reuse_is_detected_however_many_rotations_ago,
            a_repeated_rotation_is_rotated_again,
            eviction_drops_ended_then_revoked_then_least_recently_used,
            unknown_tokens_reach_the_hook,
            a_family_id_is_registered_once,
            cleanup_removes_ended_families,
            hostile_user_ids_cannot_reach_other_users,
            concurrent_rotations_yield_one_successor,
            concurrent_rotations_without_grace_grant_exactly_one,
            events_reach_the_hook,
            family_ids_are_unique,
            another_client_is_refused_and_consumes_nothing,
            another_client_cannot_replay_or_revoke_the_owners_family,
            a_family_without_a_client_admits_any_client,
            the_client_binding_survives_rotations,
            revoke_leaves_another_clients_family_alone,
            one_clients_sessions_are_listed_and_revoked_together,
            introspection_finds_only_current_tokens_of_live_families,
            an_unknown_token_is_adopted_once_as_the_current_token_of_a_new_family,
            a_spent_adopted_token_is_never_adopted_again,
            concurrent_adoptions_of_one_token_make_one_family,
            a_registered_token_is_known_not_adopted,
            adoption_respects_the_session_cap_and_the_client_binding,
            a_long_expired_token_is_not_adopted,
            a_key_bound_family_rotates_only_with_proofs_by_its_key,
            a_grace_replay_is_served_only_to_the_same_key,
            a_dpop_proof_is_good_for_one_call,
            a_dpop_proof_refreshes_one_session_of_one_user_only,
            a_bearer_family_is_not_bound_by_a_later_proof,
            a_revoke_all_ends_the_adoption_of_tokens_issued_before,
            a_reuse_that_revokes_everything_ends_adoption_too,
            revoking_a_client_ends_the_adoption_of_its_tokens_issued_before,
            a_legacy_token_older_than_a_session_is_not_adopted,
            revoking_one_session_leaves_other_legacy_tokens_adoptable,
            a_token_adopted_after_its_session_ended_rotates_in_its_new_session,
            a_binding_proof_binds_a_bearer_family_to_its_key,
            a_key_bound_session_lists_its_key_thumbprint,
            a_thief_who_binds_first_is_exposed_by_the_owners_spent_token,
            an_adoption_with_a_proof_binds_the_family_to_its_key,
            another_client_is_refused_as_such_before_the_key_is_checked,
            a_certificate_bound_family_rotates_only_with_its_certificate,
        );
    };
}

/// The tests of [`conformance_tests!`], one per name.
#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($kit:expr; $($test:ident),* $(,)?) => {
        $(
            #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $test() {
                $crate::kit::suite::$test($kit).await
            }
        )*
    };
}
