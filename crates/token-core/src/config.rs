use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use crate::outcome::{RotationEvent, RotationEventKind};
use crate::seal::SealingKey;

type EventHook = Arc<dyn Fn(&RotationEvent<'_>) + Send + Sync>;

/// The default cap on grace replays per rotation (see [`StoreConfig::max_grace_replays`]):
/// room for sixteen parallel presentations of one token (one rotates, fifteen replay) and
/// as many retries again.
pub const DEFAULT_GRACE_REPLAYS: u32 = 32;

/// The default retry window (see [`StoreConfig::retry_window`]): two minutes.
pub const DEFAULT_RETRY_WINDOW: Duration = Duration::from_secs(120);

/// Settings shared by every store.
///
/// ```
/// use std::time::Duration;
/// use token_core::{SealingKey, StoreConfig};
///
/// let config = StoreConfig::default()
///     .key_prefix("myapp:rt:")
///     .grace(Duration::from_secs(10))
///     .absolute_lifetime(Duration::from_secs(30 * 24 * 3600))
///     .idle_lifetime(Duration::from_secs(7 * 24 * 3600))
///     .sealing_key(SealingKey::from_bytes([7; 32]));
/// ```
#[derive(Clone)]
pub struct StoreConfig {
    pub(crate) key_prefix: String,
    pub(crate) grace: Duration,
    pub(crate) retry_window: Duration,
    pub(crate) max_grace_replays: Option<u32>,
    pub(crate) absolute_lifetime: Duration,
    pub(crate) idle_lifetime: Duration,
    pub(crate) timeout: Duration,
    pub(crate) outcome_wait: Duration,
    pub(crate) max_sessions_per_user: Option<u32>,
    pub(crate) revoke_all_on_reuse: bool,
    pub(crate) sealing_key: SealingKey,
    /// False while the key is the random default.
    pub(crate) sealing_key_set: bool,
    pub(crate) clock: ClockOffset,
    pub(crate) on_event: Option<EventHook>,
    pub(crate) replica_ack: Option<ReplicaAck>,
}

/// How many replicas must acknowledge a write before the store reports it done (Redis
/// `WAIT`). See [`StoreConfig::wait_for_replicas`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReplicaAck {
    /// Replicas that must acknowledge.
    pub replicas: u32,
    /// How long Redis waits for them (keep it below the call timeout).
    pub timeout: Duration,
}

impl Default for StoreConfig {
    /// Prefix `rt:`, grace 10 s and a retry window of 2 minutes with at most 32 replays per
    /// rotation, absolute lifetime 30 days, idle lifetime
    /// 14 days, timeout 500 ms with 5 s more for a write's late reply, at most 64 sessions
    /// per user, reuse revokes the
    /// family only, and a random sealing key (fine for one process; share one key between
    /// app instances so grace replays work across them).
    fn default() -> Self {
        StoreConfig {
            key_prefix: "rt:".to_owned(),
            grace: Duration::from_secs(10),
            retry_window: DEFAULT_RETRY_WINDOW,
            max_grace_replays: Some(DEFAULT_GRACE_REPLAYS),
            absolute_lifetime: Duration::from_secs(30 * 24 * 3600),
            idle_lifetime: Duration::from_secs(14 * 24 * 3600),
            timeout: Duration::from_millis(500),
            outcome_wait: Duration::from_secs(5),
            max_sessions_per_user: Some(64),
            revoke_all_on_reuse: false,
            sealing_key: SealingKey::random(),
            sealing_key_set: false,
            clock: ClockOffset::default(),
            on_event: None,
            replica_ack: None,
        }
    }
}

impl StoreConfig {
    /// The prefix of every Redis key the store writes. Keep `{` and `}` out of it: a hash
    /// tag in the prefix would put every user in one Redis Cluster slot.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long after a rotation the spent token still gets the same successor back
    /// (parallel tabs, SSR fan-out, lost responses): at least this long, and as long as
    /// the [`retry_window`](Self::retry_window) if that is longer. `Duration::ZERO` turns
    /// replays off altogether, whatever the retry window: any second use is reuse. The
    /// window starts at the first rotation and retries never extend it.
    pub fn grace(mut self, grace: Duration) -> Self {
        self.grace = grace;
        self
    }

    /// How long after a rotation a client retrying after a lost reply still gets the same
    /// successor (default 2 minutes; with [`grace`](Self::grace) above zero). A spent token
    /// presented again while its successor has not been used is what a lost reply looks
    /// like: the immediate predecessor, whose successor nobody has rotated yet, gets that
    /// successor again until the longer of the grace and retry windows has passed (and
    /// under [`max_grace_replays`](Self::max_grace_replays)). A spent token presented after
    /// its successor was used, or after the window, is what theft looks like: reuse.
    ///
    /// The cost: a copy presented inside the window gets the successor too (the follower
    /// case `SECURITY.md` describes), until either holder's next rotation exposes the other.
    /// Sessions bound to a key (DPoP) are served only to that key.
    pub fn retry_window(mut self, window: Duration) -> Self {
        self.retry_window = window;
        self
    }

    /// Caps the replays per rotation; past the cap a replay is refused
    /// ([`RotationOutcome::ReplayRefused`](crate::RotationOutcome::ReplayRefused)) without
    /// ending the session: a cap bounds the copies handed out, it is no evidence of theft.
    /// `None`: no cap; `Some(0)`: no replay at all (every presentation of the spent token
    /// inside the window is refused so).
    ///
    /// The default, 32, lets sixteen parallel presentations of one token through (SSR
    /// front ends, middleware and tabs refreshing at once: one rotates, fifteen replay) and
    /// as many retries after lost replies. Each replay runs the app's handler, which mints a
    /// fresh access token, so without a cap whoever holds the predecessor could mint access
    /// tokens for the whole window; with it, at most that many.
    pub fn max_grace_replays(mut self, cap: Option<u32>) -> Self {
        self.max_grace_replays = cap;
        self
    }

    /// The lifetime of a family from its login; rotation never extends it.
    pub fn absolute_lifetime(mut self, lifetime: Duration) -> Self {
        self.absolute_lifetime = lifetime;
        self
    }

    /// The lifetime of a family without rotation; each rotation renews it (never past the
    /// absolute end).
    pub fn idle_lifetime(mut self, lifetime: Duration) -> Self {
        self.idle_lifetime = lifetime;
        self
    }

    /// The bound on every read (`list`, `ping`, the keyspace walk of `cleanup_expired`) and
    /// the first deadline of every write, connection checkout included. Past it a read
    /// fails with [`StoreError::Timeout`](crate::StoreError::Timeout) (or `PoolTimedOut`);
    /// a write that was sent is still waited for, see
    /// [`outcome_wait`](Self::outcome_wait).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How much longer than [`timeout`](Self::timeout) a write (register, rotate, revoke,
    /// prune) whose outcome is unknown is still waited for before the call fails with
    /// [`StoreError::Timeout`](crate::StoreError::Timeout). Default 5 s.
    ///
    /// A write's outcome is unknown once it was sent and its reply is late, or lost because
    /// the connection broke. The script may well have run: answering 503 then would have
    /// the client retry with a successor the app mints anew, which the store can only count
    /// as a grace replay of the rotation that ran, then, past the replay cap or the grace
    /// window, as reuse, revoking the session of a client that did nothing wrong. So the
    /// store keeps waiting for the late reply and, after a connection failure (including a
    /// failover), sends the identical call again until it gets an answer: every write is
    /// idempotent when sent again with the same arguments (a rotation with the same
    /// successor answers `Rotated` again). A write that was never sent (Redis refused the
    /// connection, no pooled connection was free) still fails after `timeout`.
    ///
    /// Keep it longer than a failover takes (for Sentinel, `down-after-milliseconds` plus
    /// the election), and the app's HTTP timeouts longer than `timeout` plus this. The
    /// layer waits this long too ([`RotationStore::call_timeout`](crate::RotationStore::call_timeout)).
    /// `Duration::ZERO`: a write is waited for no longer than a read (it may still be sent
    /// again within `timeout` after its connection broke).
    pub fn outcome_wait(mut self, wait: Duration) -> Self {
        self.outcome_wait = wait;
        self
    }

    /// The most families (sessions, revoked ones included until they end) a user keeps. A
    /// login at the cap drops ended families first, then revoked ones, then the live family
    /// closest to its end: each rotation renews the idle end, so under the idle lifetime that
    /// is the least recently used session, whose device is signed out. Bounds what one
    /// account that logs in again and again can make Redis hold. Default 64; `None`: no cap.
    pub fn max_sessions_per_user(mut self, cap: Option<u32>) -> Self {
        self.max_sessions_per_user = cap.filter(|&n| n > 0);
        self
    }

    /// On reuse, revoke every session of the user instead of the affected family alone.
    pub fn revoke_all_on_reuse(mut self, enabled: bool) -> Self {
        self.revoke_all_on_reuse = enabled;
        self
    }

    /// The AEAD key that seals the successor kept for grace replays. **App instances that
    /// share a Redis must share it**: without it each instance seals with its own random
    /// key, and a retry that a load balancer sends to another instance than the one that
    /// rotated gets a 500 instead of its successor. [`SealingKey::derive`] makes one from a
    /// secret the instances already share. A [`RedisStore`](crate::RedisStore) built
    /// without one logs a warning.
    pub fn sealing_key(mut self, key: SealingKey) -> Self {
        self.sealing_key = key;
        self.sealing_key_set = true;
        self
    }

    /// A shift applied to the store's clock; lets tests and simulations move time forward
    /// without sleeping. Test machinery (feature `test-util`).
    #[cfg(feature = "test-util")]
    #[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
    pub fn clock(mut self, clock: ClockOffset) -> Self {
        self.clock = clock;
        self
    }

    /// A hook called for each [`RotationEvent`]. Events are also logged with `tracing`.
    pub fn on_event(mut self, hook: impl Fn(&RotationEvent<'_>) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Opt-in durability: after each write (register, rotate, revoke) wait until `replicas`
    /// replicas acknowledged it (Redis `WAIT`, pipelined with the script: still one round
    /// trip), and fail with [`StoreError::NotReplicated`](crate::StoreError::NotReplicated)
    /// (HTTP 503) when fewer did within `timeout`. A failover to an acknowledged replica
    /// then loses no rotation. The write itself stays applied on the primary: a client that
    /// retries inside the grace window gets its successor. Redis standalone or
    /// primary/replica only: a Cluster source refuses it when the store is built
    /// ([`StoreError::Unsupported`](crate::StoreError::Unsupported)); the memory store
    /// ignores it.
    pub fn wait_for_replicas(mut self, replicas: u32, timeout: Duration) -> Self {
        self.replica_ack = Some(ReplicaAck { replicas, timeout });
        self
    }

    /// How long after a rotation the predecessor still gets its successor: the longer of
    /// the grace and retry windows, or none without grace.
    pub(crate) fn replay_window(&self) -> Duration {
        if self.grace.is_zero() {
            Duration::ZERO
        } else {
            self.grace.max(self.retry_window)
        }
    }

    /// How long a session lives without being used: the earlier of the absolute and idle
    /// lifetimes. A refresh token that outlives it is refused once its session has ended.
    pub(crate) fn session_lifetime(&self) -> Duration {
        self.absolute_lifetime.min(self.idle_lifetime)
    }

    /// The lifetimes and grace settings as the rules use them (milliseconds).
    pub(crate) fn policy(&self) -> crate::rules::Policy {
        crate::rules::Policy {
            grace: millis(self.replay_window()) as i64,
            replay_cap: self.max_grace_replays,
            absolute: millis(self.absolute_lifetime) as i64,
            idle: millis(self.idle_lifetime) as i64,
        }
    }

    pub(crate) fn emit(
        &self,
        kind: RotationEventKind,
        user: &str,
        family: Option<&crate::FamilyId>,
    ) {
        // At debug level only: the layer writes the one audit line of a request (with its
        // user, client, peer and request id); a reuse must not read as two incidents.
        tracing::debug!(
            ?kind,
            user,
            family = family.map(crate::FamilyId::as_str),
            "rotation store event"
        );
        if let Some(hook) = &self.on_event {
            hook(&RotationEvent { kind, user, family });
        }
    }
}

impl fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreConfig")
            .field("key_prefix", &self.key_prefix)
            .field("grace", &self.grace)
            .field("retry_window", &self.retry_window)
            .field("max_grace_replays", &self.max_grace_replays)
            .field("absolute_lifetime", &self.absolute_lifetime)
            .field("idle_lifetime", &self.idle_lifetime)
            .field("timeout", &self.timeout)
            .field("outcome_wait", &self.outcome_wait)
            .field("max_sessions_per_user", &self.max_sessions_per_user)
            .field("revoke_all_on_reuse", &self.revoke_all_on_reuse)
            .field("replica_ack", &self.replica_ack)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// A shared, adjustable shift of a store's clock, in milliseconds, or a pinned clock
/// (feature `test-util`).
///
/// Clones share the same state: keep one and [`advance`](ClockOffset::advance) it to let
/// lifetimes and grace windows pass instantly in tests. The Redis store adds the shift to the
/// Redis server's `TIME` inside its scripts. A [`frozen`](ClockOffset::frozen) clock does not
/// move with real time at all, so a test comparing two stores sees both at the same instant.
/// Redis still expires keys on its real clock: keep the windows under test much longer than
/// the test runs.
#[derive(Clone, Debug, Default)]
#[cfg_attr(docsrs, doc(cfg(feature = "test-util")))]
#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
pub struct ClockOffset {
    shift: Arc<AtomicI64>,
    /// The pinned time (ms since the epoch), or 0 when the clock runs.
    frozen_at: Arc<AtomicI64>,
}

#[cfg_attr(not(feature = "test-util"), allow(unreachable_pub, dead_code))]
impl ClockOffset {
    /// A clock pinned at the current real time; only [`advance`](ClockOffset::advance) moves it.
    pub fn frozen() -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let clock = ClockOffset::default();
        clock.frozen_at.store(now, Ordering::SeqCst);
        clock
    }

    /// Moves the store's clock forward.
    pub fn advance(&self, by: Duration) {
        self.shift
            .fetch_add(by.as_millis() as i64, Ordering::SeqCst);
    }

    /// The store's time now (ms since the epoch): the pinned time plus the shift for a
    /// [`frozen`](ClockOffset::frozen) clock, else the real time plus the shift.
    pub fn now_millis(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        self.now(wall)
    }

    /// The current shift in milliseconds.
    pub fn millis(&self) -> i64 {
        self.shift.load(Ordering::SeqCst)
    }

    /// The store's time given the real time `wall` (ms since the epoch).
    pub(crate) fn now(&self, wall: i64) -> i64 {
        match self.frozen_at.load(Ordering::SeqCst) {
            0 => wall + self.millis(),
            pinned => pinned + self.millis(),
        }
    }

    /// The clock argument of every script: a shift added to the server's `TIME`, or `@<ms>`
    /// for a pinned clock.
    #[cfg(feature = "redis")]
    pub(crate) fn script_arg(&self) -> String {
        match self.frozen_at.load(Ordering::SeqCst) {
            0 => self.millis().to_string(),
            pinned => format!("@{}", pinned + self.millis()),
        }
    }
}

pub(crate) fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}
