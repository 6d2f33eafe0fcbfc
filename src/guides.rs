//! One page per concern. Each is a Markdown file under `docs/guides/` in the repository,
//! included here so that docs.rs shows it and its Rust examples compile as doctests.
//!
//! - [`integrating`](crate::guides::integrating): adding the layer to an existing Axum
//!   app, configuration, and what each outcome means for the client.
//! - [`oauth`](crate::guides::oauth): in front of an OAuth 2.0 token endpoint, with
//!   revocation, introspection and a curl transcript.
//! - [`dpop`](crate::guides::dpop): sessions bound to a key the client holds (DPoP,
//!   RFC 9449).
//! - [`sessions_page`](crate::guides::sessions_page): the web setup we recommend, and a page
//!   listing a user's sessions.
//! - [`operating`](crate::guides::operating): Redis, Cluster, Sentinel, what a failover can
//!   lose, sizing, metrics and alerts, `token-admin`.
//! - [`upgrading`](crate::guides::upgrading): adopting the tokens issued before the layer,
//!   and upgrading.

// Empty modules whose documentation is the page: nothing to import, only to read.
#[doc = include_str!("../docs/guides/integrating.md")]
pub mod integrating {}

#[doc = include_str!("../docs/guides/oauth.md")]
pub mod oauth {}

#[doc = include_str!("../docs/guides/dpop.md")]
pub mod dpop {}

#[doc = include_str!("../docs/guides/sessions-page.md")]
pub mod sessions_page {}

#[doc = include_str!("../docs/guides/operating.md")]
pub mod operating {}

#[doc = include_str!("../docs/guides/upgrading.md")]
pub mod upgrading {}
