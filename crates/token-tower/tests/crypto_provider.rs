//! jsonwebtoken 11 resolves a process-wide crypto provider from its features and panics at
//! the first verify when an application enables both `rust_crypto` and `aws_lc_rs` (or
//! none) without installing one. This test binary installs a provider that panics on any
//! use, which is what such a process gets, and shows the layer still works: it verifies
//! with its own `rust_crypto` provider, never the process default.

mod common;

use common::*;
use token_core::StoreConfig;
use token_tower::jsonwebtoken::crypto::{CryptoProvider, KeyUtils};
use token_tower::jsonwebtoken::{self, Algorithm, DecodingKey, Validation};

static PANICKING: CryptoProvider = CryptoProvider {
    signer_factory: |_, _| panic!("the process default crypto provider was used"),
    verifier_factory: |_, _| panic!("the process default crypto provider was used"),
    key_utils: KeyUtils::new_unimplemented(),
};

#[tokio::test]
async fn layer_ignores_a_broken_process_default_crypto_provider() {
    PANICKING
        .install_default()
        .expect("nothing used jsonwebtoken before this point");

    // The process default really is broken here.
    let token = refresh_token("alice");
    let decoded = std::panic::catch_unwind(|| {
        jsonwebtoken::decode::<serde_json::Value>(
            &token,
            &DecodingKey::from_secret(SECRET),
            &Validation::new(Algorithm::HS256),
        )
    });
    assert!(
        decoded.is_err(),
        "decode through the default provider should panic"
    );

    let app = serve(
        Mode::Json,
        layer(memory_store(StoreConfig::default())).build().unwrap(),
    )
    .await;
    let first = app.login("alice").await;
    let second = app.refresh(&first).await;
    app.refresh(&second).await;
    assert_eq!(
        app.refresh_response(&access_token("alice")).await.status(),
        401
    );
}
