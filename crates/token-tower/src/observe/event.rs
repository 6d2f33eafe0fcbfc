//! Events the layer reports to a user-supplied hook (and to `tracing`).

use token_core::FamilyId;

use crate::reply::rejection::RejectReason;

/// What the layer did with a request on a refresh or issuing route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LayerEventKind {
    /// A token from an issuing route was recorded as a new family.
    Registered,
    /// A refresh token was rotated and the client got the new one.
    Rotated,
    /// A retry inside the grace window got the stored successor again.
    GraceReplay,
    /// A spent token came back outside the grace window: its family is revoked. A
    /// [`Rejected`](LayerEventKind::Rejected) event follows.
    ReuseDetected,
    /// A validly signed token the store does not know was presented: never recorded, or
    /// from a session that ended or was dropped. A forged-but-signed token (a leaked signing
    /// key) looks like this. A [`Rejected`](LayerEventKind::Rejected) event follows.
    UnknownToken,
    /// A refresh token bound to one OAuth 2.0 client was presented by another (or by none):
    /// refused, nothing consumed, the family lives on. A refresh token in the wrong hands;
    /// a [`Rejected`](LayerEventKind::Rejected) event follows.
    WrongClient,
    /// A refresh token bound to a DPoP key was presented without a proof by that key:
    /// refused, nothing consumed, the session lives on. A copied token in use elsewhere; a
    /// [`Rejected`](LayerEventKind::Rejected) event follows.
    WrongKey,
    /// A refresh token minted before the layer recorded tokens was adopted as the current
    /// token of a new session
    /// ([`adopt_tokens_issued_before`](crate::RotationLayerBuilder::adopt_tokens_issued_before));
    /// its refresh goes on, and a [`Rotated`](LayerEventKind::Rotated) event or a refusal
    /// follows.
    SessionAdopted,
    /// A session was revoked on the revocation (logout) route.
    SessionRevoked,
    /// The layer answered with a rejection instead of the inner response.
    Rejected(RejectReason),
}

/// One event, for the hook set with
/// [`RotationLayerBuilder::on_event`](crate::RotationLayerBuilder::on_event). Carries ids,
/// never tokens.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct LayerEvent<'a> {
    /// What happened.
    pub kind: LayerEventKind,
    /// The user, once a token was validated.
    pub user: Option<&'a str>,
    /// The family, once the store named it.
    pub family: Option<&'a FamilyId>,
}
