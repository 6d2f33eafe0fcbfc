//! Counters and a latency histogram through the [`metrics`](https://docs.rs/metrics) facade,
//! behind the `metrics` cargo feature and [`RotationLayerBuilder::metrics`](crate::RotationLayerBuilder::metrics).
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `token_rotation_rotations_total` | counter | `outcome`: `rotated`, `grace_replay`, `reuse_detected`, `revoked`, `expired`, `unknown` |
//! | `token_rotation_unknown_tokens_total` | counter | – (validly signed tokens the store does not know) |
//! | `token_rotation_registrations_total` | counter | – |
//! | `token_rotation_rejections_total` | counter | `reason`: [`RejectReason::name`](crate::RejectReason::name) |
//! | `token_rotation_store_duration_seconds` | histogram | `operation`: `rotate`, `register` |
//! | `token_rotation_store_errors_total` | counter | `operation`; `kind`: `unavailable`, `timeout`, `refused` |
//!
//! The layer records them here rather than through the event hook because only the layer
//! sees how long each store call took. Without an installed recorder the facade drops them.
//! The names are constants below, for dashboards and alerts kept in code.

/// Refresh requests the store answered, by `outcome`.
pub const ROTATIONS_TOTAL: &str = "token_rotation_rotations_total";
/// Validly signed refresh tokens the store does not know.
pub const UNKNOWN_TOKENS_TOTAL: &str = "token_rotation_unknown_tokens_total";
/// Tokens recorded from issuing routes (logins).
pub const REGISTRATIONS_TOTAL: &str = "token_rotation_registrations_total";
/// Requests the layer refused, by `reason`.
pub const REJECTIONS_TOTAL: &str = "token_rotation_rejections_total";
/// How long each store call took, by `operation`.
pub const STORE_DURATION_SECONDS: &str = "token_rotation_store_duration_seconds";
/// Store calls that failed, by `operation` and `kind`.
pub const STORE_ERRORS_TOTAL: &str = "token_rotation_store_errors_total";

#[cfg(feature = "metrics")]
use std::time::Duration;

use crate::layer::Shared;
use crate::rejection::RejectReason;

/// How a store call ended, for the error counter.
#[derive(Clone, Copy)]
pub(crate) enum StoreCall {
    Answered,
    Unavailable,
    TimedOut,
    Refused,
}

#[cfg(feature = "metrics")]
pub(crate) fn store_call<St>(
    shared: &Shared<St>,
    operation: &'static str,
    took: Duration,
    call: StoreCall,
) {
    if !shared.metrics {
        return;
    }
    metrics::histogram!(STORE_DURATION_SECONDS, "operation" => operation)
        .record(took.as_secs_f64());
    let kind = match call {
        StoreCall::Answered => return,
        StoreCall::Unavailable => "unavailable",
        StoreCall::TimedOut => "timeout",
        StoreCall::Refused => "refused",
    };
    metrics::counter!(STORE_ERRORS_TOTAL, "operation" => operation, "kind" => kind).increment(1);
}

#[cfg(not(feature = "metrics"))]
pub(crate) fn store_call<St>(
    _: &Shared<St>,
    _: &'static str,
    _: std::time::Duration,
    _: StoreCall,
) {
}

/// A store answer to `rotate` (`RotationOutcome::name`).
pub(crate) fn rotation<St>(shared: &Shared<St>, outcome: &'static str) {
    #[cfg(feature = "metrics")]
    if shared.metrics {
        metrics::counter!(ROTATIONS_TOTAL, "outcome" => outcome).increment(1);
    }
    let _ = (shared, outcome);
}

/// A validly signed token the store does not know.
pub(crate) fn unknown_token<St>(shared: &Shared<St>) {
    #[cfg(feature = "metrics")]
    if shared.metrics {
        metrics::counter!(UNKNOWN_TOKENS_TOTAL).increment(1);
    }
    let _ = shared;
}

pub(crate) fn registration<St>(shared: &Shared<St>) {
    #[cfg(feature = "metrics")]
    if shared.metrics {
        metrics::counter!(REGISTRATIONS_TOTAL).increment(1);
    }
    let _ = shared;
}

pub(crate) fn rejection<St>(shared: &Shared<St>, reason: RejectReason) {
    #[cfg(feature = "metrics")]
    if shared.metrics {
        metrics::counter!(REJECTIONS_TOTAL, "reason" => reason.name()).increment(1);
    }
    let _ = (shared, reason);
}
