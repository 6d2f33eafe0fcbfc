use std::collections::HashMap;
use std::future::Future;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::{FamilyId, RotationOutcome, SessionInfo, StoreConfig, StoreError};

/// The longest metadata string a family keeps; longer input is cut at a char boundary.
pub const MAX_METADATA_LEN: usize = 256;

/// The successor the app minted for a rotation.
#[derive(Clone, Copy)]
pub struct Successor<'a> {
    /// The successor's `jti`.
    pub jti: &'a str,
    /// The whole successor token; kept only sealed, only for the grace window.
    pub token: &'a str,
}

impl std::fmt::Debug for Successor<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Successor")
            .field("jti", &self.jti)
            .finish_non_exhaustive()
    }
}

/// A refresh-token rotation store. Every operation is atomic; on Redis each one is a single
/// Lua script in a single round trip.
///
/// Implemented by [`RedisStore`](crate::RedisStore) and [`MemoryStore`](crate::MemoryStore),
/// which pass the same conformance suite. Token ids (`jti`) must be unique per user.
pub trait RotationStore: Clone + Send + Sync + 'static {
    /// Records a freshly issued token (a login) as the current token of a new family.
    /// A jti the user already has is refused with [`StoreError::DuplicateJti`].
    fn register(
        &self,
        user: &str,
        jti: &str,
        metadata: Option<&str>,
    ) -> impl Future<Output = Result<FamilyId, StoreError>> + Send;

    /// Spends `presented_jti` and records `successor` as its family's current token, or says
    /// why not. See [`RotationOutcome`].
    fn rotate(
        &self,
        user: &str,
        presented_jti: &str,
        successor: Successor<'_>,
    ) -> impl Future<Output = Result<RotationOutcome, StoreError>> + Send;

    /// Revokes the family that holds the token `jti`; returns it when a live one was found.
    fn revoke(
        &self,
        user: &str,
        jti: &str,
    ) -> impl Future<Output = Result<Option<FamilyId>, StoreError>> + Send;

    /// Revokes one family; true when it was live.
    fn revoke_family(
        &self,
        user: &str,
        family: &FamilyId,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Revokes every live family of the user and returns how many there were.
    fn revoke_all(&self, user: &str) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// The user's live sessions, oldest first.
    fn list(&self, user: &str)
    -> impl Future<Output = Result<Vec<SessionInfo>, StoreError>> + Send;

    /// Removes ended families everywhere and returns how many. Optional housekeeping: keys
    /// carry TTLs and writes prune, so nothing grows without it.
    fn cleanup_expired(&self) -> impl Future<Output = Result<u64, StoreError>> + Send;

    /// Checks that the store answers (for health checks).
    fn ping(&self) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// The store's configuration.
    fn config(&self) -> &StoreConfig;
}

/// One family as both stores keep it. Field names are those of the Lua scripts' msgpack
/// record (see `redis/scripts/common.lua`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Family {
    #[serde(rename = "c")]
    pub(crate) current: String,
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub(crate) previous: Option<String>,
    #[serde(rename = "r", default, skip_serializing_if = "Option::is_none")]
    pub(crate) rotated_at: Option<i64>,
    #[serde(rename = "n", default)]
    pub(crate) replays: u32,
    /// Digests of older spent jtis, concatenated (each `DIGEST_LEN` long), newest last.
    #[serde(rename = "s", default, skip_serializing_if = "String::is_empty")]
    pub(crate) spent: String,
    #[serde(rename = "t")]
    pub(crate) created: i64,
    #[serde(rename = "l")]
    pub(crate) last_rotated: i64,
    #[serde(rename = "a")]
    pub(crate) absolute_end: i64,
    #[serde(rename = "i")]
    pub(crate) idle_end: i64,
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub(crate) revoked: Option<u8>,
    #[serde(rename = "m", default, skip_serializing_if = "Option::is_none")]
    pub(crate) metadata: Option<String>,
}

impl Family {
    pub(crate) fn ends_at(&self) -> i64 {
        self.absolute_end.min(self.idle_end)
    }

    /// Whether `digest` is one of the remembered spent digests (at a digest boundary).
    pub(crate) fn has_spent(&self, digest: &str) -> bool {
        self.spent
            .match_indices(digest)
            .any(|(at, _)| at % crate::keys::DIGEST_LEN == 0)
    }

    /// Remembers `digest` as spent, forgetting the oldest beyond `keep`.
    pub(crate) fn push_spent(&mut self, digest: &str, keep: usize) {
        self.spent.push_str(digest);
        let excess = self
            .spent
            .len()
            .saturating_sub(keep * crate::keys::DIGEST_LEN);
        self.spent.drain(..excess);
    }

    pub(crate) fn is_live(&self, now: i64) -> bool {
        self.revoked.is_none() && self.ends_at() > now
    }
}

pub(crate) type Record = HashMap<String, Family>;

/// The live sessions of a record at `now`, oldest first.
pub(crate) fn sessions(record: &Record, now: i64) -> Vec<SessionInfo> {
    let mut list: Vec<SessionInfo> = record
        .iter()
        .filter(|(_, f)| f.is_live(now))
        .map(|(id, f)| SessionInfo {
            family: FamilyId::from(id.as_str()),
            created_at: time(f.created),
            last_rotated_at: time(f.last_rotated),
            expires_at: time(f.ends_at()),
            current_jti: f.current.clone(),
            metadata: f.metadata.clone(),
        })
        .collect();
    list.sort_by(|a, b| (a.created_at, &a.family).cmp(&(b.created_at, &b.family)));
    list
}

fn time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

pub(crate) fn clip_metadata(metadata: Option<&str>) -> Option<&str> {
    metadata.filter(|m| !m.is_empty()).map(|m| {
        let mut end = m.len().min(MAX_METADATA_LEN);
        while !m.is_char_boundary(end) {
            end -= 1;
        }
        &m[..end]
    })
}

/// Reports the event a rotation outcome stands for.
pub(crate) fn report_rotation(config: &StoreConfig, user: &str, outcome: &RotationOutcome) {
    use crate::RotationEventKind as Kind;
    let kind = match outcome {
        RotationOutcome::Rotated { .. } => Kind::Rotated,
        RotationOutcome::GraceReplay { .. } => Kind::GraceReplay,
        RotationOutcome::ReuseDetected { .. } => Kind::ReuseDetected,
        _ => return,
    };
    config.emit(kind, user, outcome.family());
}
