//! The store kit on a store from outside the library crates: token-core's conformance suite,
//! in both modes, and its model test, on a `CountingStore` around the memory store.

use counting_store::{CountingStore, Operation};
use token_core::kit::model::{ModelKit, agrees_with_the_rules};
use token_core::kit::{Fixture, Mode, StoreKit, config};
use token_core::{ClockOffset, MemoryStore, RotationStore, StoreConfig, TokenRef};

/// A fresh counting store around a fresh memory store, for each test.
struct Counting(Mode);

impl StoreKit for Counting {
    type Store = CountingStore<MemoryStore>;
    type Backend = ();

    fn make(&self, tune: impl FnOnce(StoreConfig) -> StoreConfig) -> Fixture<Self::Store> {
        let clock = ClockOffset::default();
        let store = CountingStore::new(MemoryStore::new(tune(config(&clock))));
        Fixture::new(store, self.0, clock, ())
    }
}

mod family_claim {
    use super::*;
    token_core::conformance_tests!(Counting(Mode::FamilyClaim));
}

mod token_index {
    use super::*;
    token_core::conformance_tests!(Counting(Mode::TokenIndex));
}

#[tokio::test]
async fn each_operation_is_counted_once_per_call() {
    let store = CountingStore::new(MemoryStore::new(StoreConfig::default()));
    let exp = 4_102_444_800;
    let token = TokenRef::new("t0", exp);
    store.register("alice", token, None).await.unwrap();
    store.list("alice").await.unwrap();
    store.introspect("alice", token).await.unwrap();
    store.revoke_all("alice").await.unwrap();
    assert_eq!(store.calls(Operation::Register), 1);
    assert_eq!(store.calls(Operation::Read), 2);
    assert_eq!(store.calls(Operation::Revoke), 1);
    assert_eq!(store.calls(Operation::Rotate), 0);
    assert_eq!(
        store.clone().calls(Operation::Register),
        1,
        "clones share the counts"
    );
}

/// The model test's kit: a counting store around a memory store, which decides every expiry
/// by the store's clock, so nothing needs aging.
struct CountingModel;

impl ModelKit for CountingModel {
    type Store = CountingStore<MemoryStore>;

    async fn store(&self, config: StoreConfig) -> Self::Store {
        CountingStore::new(MemoryStore::new(config))
    }
}

#[test]
fn counting_store_agrees_with_the_rules() {
    agrees_with_the_rules(&CountingModel, 32);
}
