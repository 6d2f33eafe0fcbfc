//! Populations of sessions: logins and rotations through the store, the names and keys
//! they use, and the hand-rolled schema's records for reference.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{StreamExt, stream};
use redis::aio::MultiplexedConnection;
use token_rotation::token_core::{
    FamilyId, RedisStore, RotationOutcome, RotationStore, Successor, TokenRef,
};

/// Store calls in flight at once while filling (the connection pipelines them).
pub(crate) const IN_FLIGHT: usize = 256;

/// A refresh token as long as the examples mint: the grace slot keeps it sealed.
pub(crate) const TOKEN_LEN: usize = 260;

/// The store's token-index bucket width (`rules::TOKEN_BUCKET_SECS`).
pub(crate) const HOUR: i64 = 3600;

/// The store's default key prefix, to name its keys in `MEMORY USAGE` and `STRLEN`.
pub(crate) const PREFIX: &str = "rt:";

/// A token id like the examples' (16 random bytes, base64url).
pub(crate) fn jti() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 16]>())
}

pub(crate) fn user(i: usize) -> String {
    format!("user-{i:07}")
}

pub(crate) fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// An `exp` a month from now, in the middle of its hour.
pub(crate) fn month_ahead() -> i64 {
    let t = unix_now() + 30 * 24 * HOUR;
    t - t.rem_euclid(HOUR) + HOUR / 2
}

/// The store's key of one user's sessions: a hash of family records (field `<family id>`)
/// and their metadata (field `0xFF<family id>`); see `token-core`'s `keys.rs`.
pub(crate) fn sessions_key(user: &str) -> String {
    format!("{PREFIX}{{u{}}}:s", URL_SAFE_NO_PAD.encode(user.as_bytes()))
}

/// One session as the app holds it: whose it is, its family and its current token.
pub(crate) struct Session {
    pub(crate) user: String,
    pub(crate) family: FamilyId,
    /// Whether the tokens carry the family claim (else the store's token index finds the
    /// family).
    pub(crate) claim: bool,
    pub(crate) jti: String,
    pub(crate) exp: i64,
    /// Rotations so far.
    pub(crate) rotations: usize,
}

impl Session {
    pub(crate) fn token(&self) -> TokenRef<'_> {
        let token = TokenRef::new(&self.jti, self.exp);
        if self.claim {
            token.in_family(&self.family)
        } else {
            token
        }
    }
}

/// A login: a new session of `user` whose first token expires at `exp`.
pub(crate) async fn register(store: &RedisStore, user: String, claim: bool, exp: i64) -> Session {
    register_with(store, user, claim, exp, None).await
}

/// A login that records `metadata` (a user agent) with the session.
pub(crate) async fn register_with(
    store: &RedisStore,
    user: String,
    claim: bool,
    exp: i64,
    metadata: Option<&str>,
) -> Session {
    let jti = jti();
    let family = FamilyId::random();
    let token = TokenRef::new(&jti, exp);
    let token = if claim {
        token.in_family(&family)
    } else {
        token
    };
    let family = store
        .register(&user, token, metadata)
        .await
        .expect("register");
    Session {
        user,
        family,
        claim,
        jti,
        exp,
        rotations: 0,
    }
}

/// `sessions_per_user` logins for each user of `users`, named by `name`, concurrently.
pub(crate) async fn register_users(
    store: &RedisStore,
    users: std::ops::Range<usize>,
    sessions_per_user: usize,
    claim: bool,
    exp: i64,
    name: impl Fn(usize) -> String,
) -> Vec<Session> {
    register_users_with(store, users, sessions_per_user, claim, exp, name, None).await
}

/// As [`register_users`], every login recording `metadata`.
pub(crate) async fn register_users_with(
    store: &RedisStore,
    users: std::ops::Range<usize>,
    sessions_per_user: usize,
    claim: bool,
    exp: i64,
    name: impl Fn(usize) -> String,
    metadata: Option<&str>,
) -> Vec<Session> {
    let logins: Vec<String> = users
        .flat_map(|u| std::iter::repeat_n(name(u), sessions_per_user))
        .collect();
    stream::iter(logins)
        .map(|user| register_with(store, user, claim, exp, metadata))
        .buffered(IN_FLIGHT)
        .collect()
        .await
}

/// The `exp` of a session's n-th token (n = 0 for the login's): a schedule of expiries.
pub(crate) type ExpSchedule<'a> = &'a (dyn Fn(usize) -> i64 + Sync);

/// Rotates a session once; the successor expires as `exp_of` schedules it.
pub(crate) async fn rotate(
    store: &RedisStore,
    s: &mut Session,
    token: &str,
    exp_of: ExpSchedule<'_>,
) {
    let next = jti();
    let exp = exp_of(s.rotations + 1);
    let outcome = store
        .rotate(
            &s.user,
            s.token(),
            Successor {
                jti: &next,
                token,
                expires_at: exp,
            },
        )
        .await
        .expect("rotate");
    assert!(
        matches!(outcome, RotationOutcome::Rotated { .. }),
        "{outcome:?}"
    );
    s.jti = next;
    s.exp = exp;
    s.rotations += 1;
}

/// Rotates every session `times` times: each session's rotations in order, sessions
/// concurrently.
pub(crate) async fn rotate_each(
    store: &RedisStore,
    sessions: &mut [Session],
    times: usize,
    token: &str,
    exp_of: ExpSchedule<'_>,
) {
    stream::iter(sessions.iter_mut())
        .for_each_concurrent(IN_FLIGHT, |s| async move {
            for _ in 0..times {
                rotate(store, s, token, exp_of).await;
            }
        })
        .await;
}

pub(crate) fn mode_name(claim: bool) -> &'static str {
    if claim { "family claim" } else { "token index" }
}

pub(crate) fn mode_key(claim: bool) -> &'static str {
    if claim { "claim" } else { "index" }
}

pub(crate) fn handrolled_record(i: usize, jti: &str) -> String {
    serde_json::json!({
        "user": user(i), "jti": jti, "family": jti,
        "issued_at": 1_700_000_000u64, "expires_at": 1_702_592_000u64,
    })
    .to_string()
}

/// `SETEX refresh_token:<user>:<jti>` records as the hand-rolled apps write them, pipelined.
pub(crate) async fn fill_handrolled(
    conn: &mut MultiplexedConnection,
    users: std::ops::Range<usize>,
    ttl: u64,
) {
    let ids: Vec<usize> = users.collect();
    for chunk in ids.chunks(5000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            let jti = jti();
            let record = serde_json::json!({
                "user": user(i), "jti": jti, "family": jti,
                "issued_at": 1_700_000_000u64, "expires_at": 1_702_592_000u64,
            });
            pipe.cmd("SETEX")
                .arg(format!("refresh_token:{}:{jti}", user(i)))
                .arg(ttl)
                .arg(record.to_string())
                .ignore();
        }
        let _: () = pipe.query_async(conn).await.expect("SETEX pipeline");
    }
}
