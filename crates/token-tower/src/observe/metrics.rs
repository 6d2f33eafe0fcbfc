//! Counters and a latency histogram through the [`metrics`](https://docs.rs/metrics) facade,
//! behind the `metrics` cargo feature and [`RotationLayerBuilder::metrics`](crate::RotationLayerBuilder::metrics).
//!
//! | metric | kind | labels |
//! |---|---|---|
//! | `token_rotation_rotations_total` | counter | `outcome`: `rotated`, `grace_replay`, `replay_refused`, `reuse_detected`, `revoked`, `wrong_client`, `wrong_key`, `proof_replayed`, `unknown` |
//! | `token_rotation_unknown_tokens_total` | counter | – |
//! | `token_rotation_registrations_total` | counter | – |
//! | `token_rotation_adoptions_total` | counter | – |
//! | `token_rotation_rejections_total` | counter | `reason`: `body_too_large`, `malformed_body`, `unsupported_content_type`, `missing_token`, `duplicate_cookie`, `duplicate_parameter`, `missing_grant_type`, `ambiguous_client`, `malformed_client_credentials`, `token_too_large`, `malformed_token`, `algorithm_not_allowed`, `invalid_signature`, `expired`, `expiry_out_of_range`, `not_yet_valid`, `wrong_issuer`, `wrong_audience`, `missing_claim`, `wrong_token_type`, `unknown_token`, `replay_refused`, `reuse_detected`, `revoked`, `wrong_client`, `dpop_proof_required`, `invalid_dpop_proof`, `dpop_nonce_required`, `dpop_key_mismatch`, `dpop_proof_replayed`, `store_unavailable`, `invalid_response`, `cross_origin_request` |
//! | `token_rotation_store_duration_seconds` | histogram | `operation`: `rotate`, `register`, `revoke`, `adopt`, `introspect` |
//! | `token_rotation_store_errors_total` | counter | `operation`: `rotate`, `register`, `revoke`, `adopt`, `introspect`; `kind`: `unavailable`, `timeout`, `refused` |
//!
//! - `rotations_total` counts the store's answers to `rotate`; `unknown_tokens_total` the
//!   validly signed tokens among them that the store does not know (`outcome="unknown"`), kept
//!   apart so a spike (a leaked signing key, a lost Redis) can be alerted on by name.
//! - `rejections_total` counts every refusal, with [`RejectReason::name`](crate::RejectReason::name)
//!   as `reason`: a store outage is `store_unavailable` (503), whatever the store error.
//! - `store_duration_seconds` times every store call, failed ones included: `rotate` (the
//!   refresh route and the token endpoint), `register` (issuing routes), `revoke` (the
//!   revocation route), `adopt` (a legacy token's refresh while adopting).
//! - `adoptions_total` counts the legacy tokens adopted as new sessions
//!   ([`adopt_tokens_issued_before`](crate::RotationLayerBuilder::adopt_tokens_issued_before)):
//!   it falls to zero as the old tokens are used up, which tells when to end adoption.
//! - `store_errors_total` counts the failed ones by `kind`: `timeout` when the call ran past
//!   its deadline (the store's own, [`StoreError::Timeout`] or [`StoreError::PoolTimedOut`],
//!   a Redis reply timeout, or the layer's
//!   [`store_timeout`](crate::RotationLayerBuilder::store_timeout)): a hung Redis, or a write
//!   whose connection broke and that could not be sent again within
//!   [`outcome_wait`](token_core::StoreConfig::outcome_wait); `unavailable` when the store
//!   could not be reached at all (the call was never sent) or too few replicas acknowledged
//!   a write; `refused` when the store answered with an error that is no outage (500,
//!   `invalid_response`).
//!
//! [`METRICS`] lists the same in code. The layer describes each metric to the recorder (its
//! `# HELP` line and unit in the Prometheus exposition) the first time it records one; see
//! [`describe`].
//!
//! **Histogram buckets.** Export the latency as a histogram with fixed buckets, not a summary:
//! quantiles of a summary cannot be added up across app instances, bucket counters can
//! (`histogram_quantile(0.99, sum by (le) (rate(..._bucket[5m])))`). With
//! `metrics-exporter-prometheus`, set [`STORE_DURATION_BUCKETS`] for
//! [`STORE_DURATION_SECONDS`] (its default is a summary); the Axum example does.
//!
//! The layer records them here rather than through the event hook because only the layer
//! sees how long each store call took. Without an installed recorder the facade drops them.
//! The names are constants below, for dashboards and alerts kept in code.

use token_core::StoreError;

use crate::reply::rejection::RejectReason;

/// Refresh requests the store answered, by `outcome`.
pub const ROTATIONS_TOTAL: &str = "token_rotation_rotations_total";
/// Validly signed refresh tokens the store does not know.
pub const UNKNOWN_TOKENS_TOTAL: &str = "token_rotation_unknown_tokens_total";
/// Tokens recorded from issuing routes (logins).
pub const REGISTRATIONS_TOTAL: &str = "token_rotation_registrations_total";
/// Refresh tokens minted before the layer recorded tokens, adopted as new sessions.
pub const ADOPTIONS_TOTAL: &str = "token_rotation_adoptions_total";
/// Requests the layer refused, by `reason`.
pub const REJECTIONS_TOTAL: &str = "token_rotation_rejections_total";
/// How long each store call took, by `operation`.
pub const STORE_DURATION_SECONDS: &str = "token_rotation_store_duration_seconds";
/// Store calls that failed, by `operation` and `kind`.
pub const STORE_ERRORS_TOTAL: &str = "token_rotation_store_errors_total";

/// Upper bounds (seconds) of the buckets to export [`STORE_DURATION_SECONDS`] with: from
/// half a millisecond (a Redis round trip on the same host) to ten seconds. A read gives up
/// at the store's timeout (500 ms by default); a write whose reply is late is waited for
/// [`outcome_wait`](token_core::StoreConfig::outcome_wait) longer (5 s by default), and the
/// layer 100 ms past that: such a call still lands in a finite bucket, not only in `+Inf`.
pub const STORE_DURATION_BUCKETS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The kind of a metric, as the Prometheus exposition names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MetricKind {
    /// A monotonic counter (`# TYPE … counter`).
    Counter,
    /// A histogram (`# TYPE … histogram` once exported with buckets).
    Histogram,
}

/// A label of a metric and every value the layer gives it.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Label {
    /// The label's name.
    pub name: &'static str,
    /// Every value the layer records it with.
    pub values: &'static [&'static str],
}

/// One metric the layer records: its name, kind, unit, description and labels.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Metric {
    /// The metric's name, one of the constants of this module.
    pub name: &'static str,
    /// Counter or histogram.
    pub kind: MetricKind,
    /// The unit, as [`metrics::Unit::as_str`](https://docs.rs/metrics/latest/metrics/enum.Unit.html#method.as_str)
    /// spells it: `count` or `seconds`.
    pub unit: &'static str,
    /// The description the recorder gets (the `# HELP` line).
    pub help: &'static str,
    /// Its labels, each with every value it takes.
    pub labels: &'static [Label],
}

/// Every [`RotationOutcome`](token_core::RotationOutcome) name, the `outcome` label.
const OUTCOMES: &[&str] = &[
    "rotated",
    "grace_replay",
    "replay_refused",
    "reuse_detected",
    "revoked",
    "wrong_client",
    "wrong_key",
    "proof_replayed",
    "unknown",
];

/// Every [`RejectReason::name`], the `reason` label.
const REASONS: &[&str] = &[
    "body_too_large",
    "malformed_body",
    "unsupported_content_type",
    "missing_token",
    "duplicate_cookie",
    "duplicate_parameter",
    "missing_grant_type",
    "ambiguous_client",
    "malformed_client_credentials",
    "token_too_large",
    "malformed_token",
    "algorithm_not_allowed",
    "invalid_signature",
    "expired",
    "expiry_out_of_range",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "missing_claim",
    "wrong_token_type",
    "unknown_token",
    "reuse_detected",
    "revoked",
    "replay_refused",
    "wrong_client",
    "dpop_proof_required",
    "invalid_dpop_proof",
    "dpop_nonce_required",
    "dpop_key_mismatch",
    "dpop_proof_replayed",
    "store_unavailable",
    "invalid_response",
    "cross_origin_request",
];

/// The store calls the layer makes, the `operation` label.
const OPERATIONS: &[&str] = &["rotate", "register", "revoke", "adopt", "introspect"];

/// How a failed store call failed, the `kind` label ([`StoreCall::kind`]).
const ERROR_KINDS: &[&str] = &["unavailable", "timeout", "refused"];

/// Every metric the layer records, with every label value it uses: the table above in code.
/// The Metrics section of the operating guide (`docs/guides/operating.md`) lists the same, and a test holds the three together.
pub const METRICS: [Metric; 7] = [
    Metric {
        name: ROTATIONS_TOTAL,
        kind: MetricKind::Counter,
        unit: "count",
        help: "Refresh requests the token store answered, by outcome.",
        labels: &[Label {
            name: "outcome",
            values: OUTCOMES,
        }],
    },
    Metric {
        name: UNKNOWN_TOKENS_TOTAL,
        kind: MetricKind::Counter,
        unit: "count",
        help: "Validly signed refresh tokens the token store does not know (never recorded, \
               or their session ended or was evicted).",
        labels: &[],
    },
    Metric {
        name: REGISTRATIONS_TOTAL,
        kind: MetricKind::Counter,
        unit: "count",
        help: "Refresh tokens recorded from issuing routes (logins).",
        labels: &[],
    },
    Metric {
        name: ADOPTIONS_TOTAL,
        kind: MetricKind::Counter,
        unit: "count",
        help: "Refresh tokens minted before the rotation layer recorded tokens, adopted as \
               new sessions.",
        labels: &[],
    },
    Metric {
        name: REJECTIONS_TOTAL,
        kind: MetricKind::Counter,
        unit: "count",
        help: "Requests the rotation layer refused, by reason.",
        labels: &[Label {
            name: "reason",
            values: REASONS,
        }],
    },
    Metric {
        name: STORE_DURATION_SECONDS,
        kind: MetricKind::Histogram,
        unit: "seconds",
        help: "Duration of each token store call, failed ones included, by operation.",
        labels: &[Label {
            name: "operation",
            values: OPERATIONS,
        }],
    },
    Metric {
        name: STORE_ERRORS_TOTAL,
        kind: MetricKind::Counter,
        unit: "count",
        help: "Token store calls that failed, by operation and kind \
               (unavailable, timeout, refused).",
        labels: &[
            Label {
                name: "operation",
                values: OPERATIONS,
            },
            Label {
                name: "kind",
                values: ERROR_KINDS,
            },
        ],
    },
];

/// Describes every metric in [`METRICS`] (description and unit) to the installed recorder,
/// which the Prometheus exporter prints as `# HELP` lines.
///
/// The layer calls this itself the first time it records, so that the descriptions reach
/// the same recorder as the samples. Call it again if the app installs its recorder later
/// than that, or records into a scoped (local) recorder.
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe() {
    for metric in &METRICS {
        let unit = metrics::Unit::from_string(metric.unit);
        match (metric.kind, unit) {
            (MetricKind::Histogram, Some(unit)) => {
                metrics::describe_histogram!(metric.name, unit, metric.help);
            }
            (MetricKind::Histogram, None) => metrics::describe_histogram!(metric.name, metric.help),
            (MetricKind::Counter, Some(unit)) => {
                metrics::describe_counter!(metric.name, unit, metric.help);
            }
            (MetricKind::Counter, None) => metrics::describe_counter!(metric.name, metric.help),
        }
    }
}

/// The layer's switch for recording (set by
/// [`RotationLayerBuilder::metrics`](crate::RotationLayerBuilder::metrics)): the layer
/// records through it, so this module needs nothing of the layer's configuration.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Recorder {
    /// Always false without the `metrics` feature.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    enabled: bool,
}

impl Recorder {
    #[cfg(feature = "metrics")]
    pub(crate) fn new(enabled: bool) -> Self {
        Recorder { enabled }
    }

    /// Whether the layer records metrics; describes them on the first use, so every app
    /// that turns metrics on gets their `# HELP` lines without a call of its own.
    #[cfg(feature = "metrics")]
    fn enabled(self) -> bool {
        static DESCRIBED: std::sync::Once = std::sync::Once::new();
        if self.enabled {
            DESCRIBED.call_once(describe);
        }
        self.enabled
    }

    /// A store call that ended as `call` after `took`.
    #[cfg(feature = "metrics")]
    pub(crate) fn store_call(
        self,
        operation: &'static str,
        took: std::time::Duration,
        call: StoreCall,
    ) {
        debug_assert!(
            OPERATIONS.contains(&operation),
            "store operation {operation:?} is not in metrics::METRICS (nor in the docs)"
        );
        if !self.enabled() {
            return;
        }
        metrics::histogram!(STORE_DURATION_SECONDS, "operation" => operation)
            .record(took.as_secs_f64());
        if let Some(kind) = call.kind() {
            metrics::counter!(STORE_ERRORS_TOTAL, "operation" => operation, "kind" => kind)
                .increment(1);
        }
    }

    /// A store call that ended as `call` after `took`.
    #[cfg(not(feature = "metrics"))]
    pub(crate) fn store_call(self, _: &'static str, _: std::time::Duration, _: StoreCall) {}

    /// A store answer to `rotate` (`RotationOutcome::name`).
    pub(crate) fn rotation(self, outcome: &'static str) {
        #[cfg(feature = "metrics")]
        if self.enabled() {
            metrics::counter!(ROTATIONS_TOTAL, "outcome" => outcome).increment(1);
        }
        let _ = outcome;
    }

    /// A validly signed token the store does not know.
    pub(crate) fn unknown_token(self) {
        #[cfg(feature = "metrics")]
        if self.enabled() {
            metrics::counter!(UNKNOWN_TOKENS_TOTAL).increment(1);
        }
    }

    /// A token of an issuing route recorded as a new family.
    pub(crate) fn registration(self) {
        #[cfg(feature = "metrics")]
        if self.enabled() {
            metrics::counter!(REGISTRATIONS_TOTAL).increment(1);
        }
    }

    /// A legacy token adopted as a new session.
    pub(crate) fn adoption(self) {
        #[cfg(feature = "metrics")]
        if self.enabled() {
            metrics::counter!(ADOPTIONS_TOTAL).increment(1);
        }
    }

    /// A rejection sent for `reason`.
    pub(crate) fn rejection(self, reason: RejectReason) {
        #[cfg(feature = "metrics")]
        if self.enabled() {
            metrics::counter!(REJECTIONS_TOTAL, "reason" => reason.name()).increment(1);
        }
        let _ = reason;
    }
}

/// How a store call ended, for the error counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreCall {
    Answered,
    Unavailable,
    TimedOut,
    Refused,
}

impl StoreCall {
    /// How a store error ends the call. The store's own deadline ([`StoreError::Timeout`],
    /// [`StoreError::PoolTimedOut`], or a Redis reply timeout) is a timeout, as the layer's
    /// own deadline is: a store that hangs must show as `timeout`, not as a store that is
    /// down, so the two can be told apart on a dashboard.
    pub(crate) fn failed(error: &StoreError) -> StoreCall {
        if matches!(error, StoreError::Timeout(_) | StoreError::PoolTimedOut(_))
            || caused_by_io_timeout(error)
        {
            StoreCall::TimedOut
        } else if error.is_unavailable() {
            StoreCall::Unavailable
        } else {
            StoreCall::Refused
        }
    }

    /// The `kind` label of a failed call; `None` for one that was answered.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn kind(self) -> Option<&'static str> {
        match self {
            StoreCall::Answered => None,
            StoreCall::Unavailable => Some("unavailable"),
            StoreCall::TimedOut => Some("timeout"),
            StoreCall::Refused => Some("refused"),
        }
    }
}

/// Whether an I/O timeout is among the causes of `error`: the Redis client's own response or
/// connection timeout (set to the store's timeout) can fire a moment before the store's
/// deadline does, and then arrives as a Redis error. redis-rs keeps the `io::Error` behind an
/// `Arc<dyn Error>` whose `source()` skips it, so both forms are looked for.
fn caused_by_io_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    use std::error::Error;
    type SharedError = std::sync::Arc<dyn Error + Send + Sync>;
    let is_timeout = |e: &(dyn Error + 'static)| {
        let io = e.downcast_ref::<std::io::Error>().or_else(|| {
            e.downcast_ref::<SharedError>()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
    };
    let mut cause = error.source();
    while let Some(e) = cause {
        if is_timeout(e) {
            return true;
        }
        cause = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::time::Duration;

    use token_core::{FamilyId, RotationOutcome};

    use super::*;

    fn values(metric: &str, label: &str) -> BTreeSet<&'static str> {
        let metric = METRICS.iter().find(|m| m.name == metric).expect(metric);
        let label = metric.labels.iter().find(|l| l.name == label).expect(label);
        let set: BTreeSet<_> = label.values.iter().copied().collect();
        assert_eq!(
            set.len(),
            label.values.len(),
            "{label:?} lists a value twice"
        );
        set
    }

    /// Every rejection reason. The match has no wildcard, so a new variant does not compile
    /// until it is added here too.
    fn every_reason() -> Vec<RejectReason> {
        use RejectReason::*;
        let all = vec![
            BodyTooLarge,
            MalformedBody,
            UnsupportedContentType,
            MissingToken,
            DuplicateCookie,
            DuplicateParameter,
            MissingGrantType,
            AmbiguousClient,
            MalformedClientCredentials,
            TokenTooLarge,
            MalformedToken,
            AlgorithmNotAllowed,
            InvalidSignature,
            Expired,
            ExpiryOutOfRange,
            NotYetValid,
            WrongIssuer,
            WrongAudience,
            MissingClaim,
            WrongTokenType,
            UnknownToken,
            ReuseDetected,
            Revoked,
            ReplayRefused,
            WrongClient,
            DpopProofRequired,
            InvalidDpopProof,
            DpopNonceRequired,
            DpopKeyMismatch,
            DpopProofReplayed,
            StoreUnavailable,
            InvalidResponse,
            CrossOriginRequest,
        ];
        for reason in &all {
            match reason {
                BodyTooLarge
                | MalformedBody
                | UnsupportedContentType
                | MissingToken
                | DuplicateCookie
                | DuplicateParameter
                | MissingGrantType
                | AmbiguousClient
                | MalformedClientCredentials
                | TokenTooLarge
                | MalformedToken
                | AlgorithmNotAllowed
                | InvalidSignature
                | Expired
                | ExpiryOutOfRange
                | NotYetValid
                | WrongIssuer
                | WrongAudience
                | MissingClaim
                | WrongTokenType
                | UnknownToken
                | ReuseDetected
                | Revoked
                | ReplayRefused
                | WrongClient
                | DpopProofRequired
                | InvalidDpopProof
                | DpopNonceRequired
                | DpopKeyMismatch
                | DpopProofReplayed
                | StoreUnavailable
                | InvalidResponse
                | CrossOriginRequest => {}
            }
        }
        all
    }

    /// Every rotation outcome, with the same guard as [`every_reason`].
    fn every_outcome() -> Vec<RotationOutcome> {
        let family = FamilyId::from("f");
        let all = vec![
            RotationOutcome::Rotated {
                family: family.clone(),
            },
            RotationOutcome::GraceReplay {
                family: family.clone(),
                successor: String::new(),
            },
            RotationOutcome::ReuseDetected {
                family: family.clone(),
            },
            RotationOutcome::Revoked {
                family: family.clone(),
            },
            RotationOutcome::ReplayRefused {
                family: family.clone(),
            },
            RotationOutcome::WrongClient {
                family: family.clone(),
            },
            RotationOutcome::WrongKey { family },
            RotationOutcome::ProofReplayed,
            RotationOutcome::Unknown,
        ];
        for outcome in &all {
            match outcome {
                RotationOutcome::Rotated { .. }
                | RotationOutcome::GraceReplay { .. }
                | RotationOutcome::ReuseDetected { .. }
                | RotationOutcome::Revoked { .. }
                | RotationOutcome::ReplayRefused { .. }
                | RotationOutcome::WrongClient { .. }
                | RotationOutcome::WrongKey { .. }
                | RotationOutcome::ProofReplayed
                | RotationOutcome::Unknown => {}
            }
        }
        all
    }

    #[test]
    fn outcome_label_lists_every_rotation_outcome() {
        let names: BTreeSet<_> = every_outcome().iter().map(RotationOutcome::name).collect();
        assert_eq!(names, values(ROTATIONS_TOTAL, "outcome"));
    }

    #[test]
    fn reason_label_lists_every_rejection_reason() {
        let names: BTreeSet<_> = every_reason().into_iter().map(RejectReason::name).collect();
        assert_eq!(names, values(REJECTIONS_TOTAL, "reason"));
    }

    #[test]
    fn kind_label_lists_every_way_a_store_call_fails() {
        let kinds: BTreeSet<_> = [
            StoreCall::Unavailable,
            StoreCall::TimedOut,
            StoreCall::Refused,
        ]
        .into_iter()
        .map(|call| call.kind().expect("a failure has a kind"))
        .collect();
        assert_eq!(kinds, values(STORE_ERRORS_TOTAL, "kind"));
        assert_eq!(StoreCall::Answered.kind(), None);
    }

    /// The operations `flow.rs` and `introspect.rs` pass to `call_store`, read from their
    /// source: each is in the `operation` label of both store metrics, and each listed one is
    /// used.
    #[test]
    fn operation_label_lists_every_store_call_of_the_layer() {
        let source = [
            include_str!("../flow/mod.rs"),
            include_str!("../oauth/introspect.rs"),
        ]
        .concat();
        let literals: Vec<&str> = source
            .split("call_store(")
            .skip(1)
            .filter_map(|rest| {
                let rest = rest.trim_start_matches('&').strip_prefix("shared, \"")?;
                rest.split_once('"').map(|(operation, _)| operation)
            })
            .collect();
        assert_eq!(
            literals.len(),
            source.matches("call_store(").count(),
            "every call of call_store names its operation as a literal"
        );
        let used: BTreeSet<&str> = literals.into_iter().collect();
        assert_eq!(used, values(STORE_DURATION_SECONDS, "operation"));
        assert_eq!(used, values(STORE_ERRORS_TOTAL, "operation"));
    }

    #[test]
    fn every_metric_has_a_unit_and_a_description() {
        for metric in &METRICS {
            let expected = match metric.kind {
                MetricKind::Counter => "count",
                MetricKind::Histogram => "seconds",
            };
            assert_eq!(metric.unit, expected, "{}", metric.name);
            assert!(metric.help.ends_with('.'), "{}", metric.name);
            assert!(!metric.help.contains("  "), "{}", metric.name);
            assert!(metric.name.starts_with("token_rotation_"));
            // Prometheus conventions: counters end in `_total`, a duration names its unit.
            match metric.kind {
                MetricKind::Counter => assert!(metric.name.ends_with("_total")),
                MetricKind::Histogram => assert!(metric.name.ends_with("_seconds")),
            }
        }
    }

    #[test]
    fn buckets_are_increasing_and_cover_the_default_timeouts() {
        assert!(STORE_DURATION_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        // The longest call by default, a write: the store's timeout (500 ms) and outcome wait
        // (5 s), and the layer's 100 ms on top, fits below the last bound.
        assert!(STORE_DURATION_BUCKETS[STORE_DURATION_BUCKETS.len() - 1] >= 5.6);
    }

    #[test]
    fn a_store_deadline_is_a_timeout_not_an_outage() {
        let second = Duration::from_secs(1);
        assert_eq!(
            StoreCall::failed(&StoreError::Timeout(second)),
            StoreCall::TimedOut
        );
        assert_eq!(
            StoreCall::failed(&StoreError::PoolTimedOut(second)),
            StoreCall::TimedOut
        );
        assert_eq!(
            StoreCall::failed(&StoreError::NotReplicated {
                acked: 0,
                wanted: 1
            }),
            StoreCall::Unavailable
        );
        assert_eq!(
            StoreCall::failed(&StoreError::DuplicateJti),
            StoreCall::Refused
        );
        assert_eq!(
            StoreCall::failed(&StoreError::Corrupt("x".into())),
            StoreCall::Refused
        );
    }

    /// An error laid out as redis-rs lays out one made from an I/O error: the `io::Error`
    /// behind an `Arc<dyn Error>` that `source()` returns, under a wrapper like
    /// `StoreError::Redis`. A reply timeout is a timeout; a refused connection is not.
    #[test]
    fn an_io_timeout_among_the_causes_is_a_timeout() {
        use std::error::Error;
        use std::sync::Arc;

        #[derive(Debug)]
        struct RedisLike(Arc<dyn Error + Send + Sync>);
        impl std::fmt::Display for RedisLike {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("redis error")
            }
        }
        impl Error for RedisLike {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        #[derive(Debug)]
        struct Wrapper(RedisLike);
        impl std::fmt::Display for Wrapper {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("store error")
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let redis =
            |kind: std::io::ErrorKind| Wrapper(RedisLike(Arc::new(std::io::Error::from(kind))));
        assert!(caused_by_io_timeout(&redis(std::io::ErrorKind::TimedOut)));
        assert!(!caused_by_io_timeout(&redis(
            std::io::ErrorKind::ConnectionRefused
        )));
        // A plain io::Error as a direct cause counts too.
        #[derive(Debug)]
        struct Direct(std::io::Error);
        impl std::fmt::Display for Direct {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("direct")
            }
        }
        impl Error for Direct {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        assert!(caused_by_io_timeout(&Direct(
            std::io::ErrorKind::TimedOut.into()
        )));
        assert!(!caused_by_io_timeout(&StoreError::DuplicateJti));
    }
}
