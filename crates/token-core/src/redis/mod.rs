//! The Redis store: one Lua script per operation, one round trip per operation.

mod connection;

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::{ErrorKind, Script, ServerErrorKind, ToRedisArgs, Value};

use self::connection::Call;
pub use self::connection::ConnectionSource;
use crate::admin::CleanupProgress;
use crate::config::millis;
use crate::keys::{UserKeys, client_digest, index_pattern, jti_digest, user_of_index_key};
use crate::rules::{Family, token_index_expiry_ms};
use crate::store::{clip_metadata, report_rotation, sessions};
use crate::{
    FamilyId, RotationEventKind, RotationOutcome, RotationStore, SessionInfo, StoreConfig,
    StoreError, Successor, TokenRef,
};

/// A Lua script and its source (kept to `SCRIPT LOAD` it before a pipelined `EVALSHA`).
struct Lua {
    script: Script,
    source: &'static str,
}

macro_rules! lua {
    ($file:literal) => {
        LazyLock::new(|| {
            let source = concat!(
                include_str!("scripts/common.lua"),
                include_str!(concat!("scripts/", $file))
            );
            Lua {
                script: Script::new(source),
                source,
            }
        })
    };
}

static REGISTER: LazyLock<Lua> = lua!("register.lua");
static ROTATE: LazyLock<Lua> = lua!("rotate.lua");
static REVOKE: LazyLock<Lua> = lua!("revoke.lua");
static REVOKE_ALL: LazyLock<Lua> = lua!("revoke_all.lua");
static LIST: LazyLock<Lua> = lua!("list.lua");
static PRUNE: LazyLock<Lua> = lua!("prune.lua");

/// One script call with its keys and arguments. It goes out as one `EVALSHA`, or, for a
/// write when the store waits for replicas, as `EVALSHA` + `WAIT` in one pipeline: still
/// one round trip.
#[derive(Clone)]
struct Op {
    lua: &'static Lua,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
    writes: bool,
}

impl Op {
    fn read(lua: &'static Lua) -> Self {
        Op {
            lua,
            keys: Vec::new(),
            args: Vec::new(),
            writes: false,
        }
    }

    fn write(lua: &'static Lua) -> Self {
        Op {
            writes: true,
            ..Op::read(lua)
        }
    }

    fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    fn invocation(&self) -> redis::ScriptInvocation<'static> {
        let mut invocation = self.lua.script.prepare_invoke();
        invocation.key(&self.keys).arg(&self.args);
        invocation
    }

    fn evalsha(&self) -> redis::Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.lua.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }
}

/// A [`RotationStore`] on Redis (standalone or Cluster).
///
/// Each operation is one Lua script (`EVALSHA`) in one round trip, timed against the Redis
/// server's clock, touching only the keys of one user (one hash tag). See the crate docs for
/// the key schema.
///
/// ```no_run
/// use token_core::{RedisStore, StoreConfig};
///
/// # async fn demo() -> Result<(), token_core::StoreError> {
/// let store = RedisStore::open("redis://127.0.0.1:6379", StoreConfig::default())?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisStore {
    source: ConnectionSource,
    config: Arc<StoreConfig>,
}

impl RedisStore {
    /// A store on the default connection source (a `ConnectionManager`) for `url`.
    /// Connects lazily: this succeeds while Redis is down, and calls fail until it is up.
    pub fn open(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        let source = ConnectionSource::connection_manager(url, config.timeout)?;
        Self::with_source(source, config)
    }

    /// A store on the given connection source.
    ///
    /// Without [`StoreConfig::sealing_key`] this logs a warning: the random default key
    /// only opens grace replays on this instance. Fails with [`StoreError::Unsupported`] for
    /// [`StoreConfig::wait_for_replicas`] on a Cluster source: `WAIT` would go to whichever
    /// node the client picks, not to the master that ran the script, so it could not vouch
    /// for the write.
    pub fn with_source(source: ConnectionSource, config: StoreConfig) -> Result<Self, StoreError> {
        if config.replica_ack.is_some() && source.is_cluster() {
            return Err(StoreError::Unsupported(
                "wait_for_replicas on a Redis Cluster source",
            ));
        }
        if !config.sealing_key_set {
            tracing::warn!(
                "RedisStore built without a sealing key: grace successors are sealed with a \
                 random key of this process, so another app instance sharing this Redis \
                 answers their retries with 500. Give every instance the same key \
                 (StoreConfig::sealing_key, e.g. SealingKey::derive from a shared secret)"
            );
        }
        Ok(RedisStore {
            source,
            config: Arc::new(config),
        })
    }

    /// The connection source.
    pub fn source(&self) -> &ConnectionSource {
        &self.source
    }

    fn keys(&self, user: &str) -> UserKeys {
        UserKeys::new(&self.config.key_prefix, user)
    }

    fn offset(&self) -> String {
        self.config.clock.script_arg()
    }

    /// [`cleanup_expired`](RotationStore::cleanup_expired), reporting after each `SCAN`
    /// batch how far it got, for operators' progress bars on large keyspaces.
    pub async fn cleanup_expired_with_progress(
        &self,
        mut progress: impl FnMut(CleanupProgress) + Send,
    ) -> Result<u64, StoreError> {
        let prefix = &self.config.key_prefix;
        let pattern = index_pattern(prefix);
        let timeout = self.config.timeout;
        let mut done = CleanupProgress::default();
        // A cursor walk (`SCAN`, never `KEYS`) over every master, a batch at a time.
        for target in self.source.scan_targets(timeout).await? {
            let mut cursor = 0u64;
            loop {
                let mut scan = redis::cmd("SCAN");
                scan.arg(cursor)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(1000);
                let reply = self.source.run_on(&target, &scan, timeout).await?;
                let (next, keys): (u64, Vec<String>) = redis::from_redis_value(reply)
                    .map_err(|e| StoreError::Corrupt(format!("scan reply: {e}")))?;
                for key in keys {
                    // The pattern can also match a family record whose id ends in `:s`.
                    let Some(user) = user_of_index_key(prefix, &key) else {
                        continue;
                    };
                    let op = Op::write(&PRUNE)
                        .key(key)
                        .arg(self.offset())
                        .arg(self.keys(&user).family_prefix())
                        .clone();
                    done.pruned += int(&self.run(&op).await?)?;
                    done.records += 1;
                }
                done.batches += 1;
                progress(done);
                if next == 0 {
                    break;
                }
                cursor = next;
            }
        }
        Ok(done.pruned)
    }

    async fn run(&self, op: &Op) -> Result<Value, StoreError> {
        let (timeout, patience) = (self.config.timeout, self.config.outcome_wait);
        // A write that may have run is not answered before its outcome is known: its late
        // reply is waited for, and it is sent again after its connection broke (see
        // `StoreConfig::outcome_wait`). A read gives up after the timeout.
        let send = async |call: Call<'_>| {
            if op.writes {
                self.source.run_patiently(call, timeout, patience).await
            } else {
                self.source.run(call, timeout).await
            }
        };
        let Some(wait) = self.config.replica_ack.filter(|_| op.writes) else {
            return send(Call::Script(&op.invocation())).await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(op.evalsha())
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(millis(wait.timeout));
        let replies = match send(Call::Pipeline(&pipe)).await {
            Err(StoreError::Redis(e))
                if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                // After a Redis restart: load the script once, then send the pair again.
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(op.lua.source);
                send(Call::Command(&load)).await?;
                send(Call::Pipeline(&pipe)).await?
            }
            other => other?,
        };
        let (reply, acked): (Value, u32) = redis::from_redis_value(replies)
            .map_err(|e| StoreError::Corrupt(format!("EVALSHA + WAIT reply: {e}")))?;
        if acked < wait.replicas {
            return Err(StoreError::NotReplicated {
                acked,
                wanted: wait.replicas,
            });
        }
        Ok(reply)
    }
}

/// What `register.lua` and `rotate.lua` answer: `{tag, family?, sealed?}`, where the tag
/// is a [`RotationOutcome::name`] (or `registered` / `duplicate`).
#[derive(Debug)]
enum ScriptReply {
    Registered,
    Duplicate,
    /// An outcome of `rotate`; a grace replay still carries its successor sealed.
    Outcome(RotationOutcome),
    GraceReplay(FamilyId, Vec<u8>),
}

impl ScriptReply {
    fn parse(value: Value) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("script reply: {what}"));
        let Value::Array(items) = value else {
            return Err(corrupt("not an array"));
        };
        let mut items = items.into_iter().map(|v| match v {
            Value::BulkString(bytes) => Ok(bytes),
            Value::SimpleString(s) => Ok(s.into_bytes()),
            _ => Err(corrupt("not a string")),
        });
        let mut text = |what: &str| -> Result<String, StoreError> {
            let bytes = items.next().ok_or_else(|| corrupt(what))??;
            String::from_utf8(bytes).map_err(|_| corrupt(what))
        };
        let tag = text("tag")?;
        let mut family = || text("family").map(FamilyId::from);
        Ok(match tag.as_str() {
            "registered" => ScriptReply::Registered,
            "duplicate" => ScriptReply::Duplicate,
            "rotated" => ScriptReply::Outcome(RotationOutcome::Rotated { family: family()? }),
            "reuse_detected" => {
                ScriptReply::Outcome(RotationOutcome::ReuseDetected { family: family()? })
            }
            "revoked" => ScriptReply::Outcome(RotationOutcome::Revoked { family: family()? }),
            "expired" => ScriptReply::Outcome(RotationOutcome::Expired { family: family()? }),
            "wrong_client" => {
                ScriptReply::Outcome(RotationOutcome::WrongClient { family: family()? })
            }
            "unknown" => ScriptReply::Outcome(RotationOutcome::Unknown),
            "grace_replay" => {
                let family = family()?;
                let sealed = items.next().ok_or_else(|| corrupt("sealed successor"))??;
                ScriptReply::GraceReplay(family, sealed)
            }
            other => return Err(corrupt(other)),
        })
    }
}

impl RotationStore for RedisStore {
    async fn register(
        &self,
        user: &str,
        token: TokenRef<'_>,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        let cfg = &self.config;
        let keys = self.keys(user);
        let family = token.family.cloned().unwrap_or_else(FamilyId::random);
        let mut op = Op::write(&REGISTER);
        op.key(keys.index()).key(keys.family(family.as_str()));
        if token.family.is_none() {
            op.key(keys.tokens(token.expires_at));
        }
        op.arg(self.offset())
            .arg(token.jti)
            .arg(jti_digest(token.jti))
            .arg(family.as_str())
            .arg(keys.family_prefix())
            .arg(millis(cfg.absolute_lifetime))
            .arg(millis(cfg.idle_lifetime))
            .arg(clip_metadata(metadata).unwrap_or(""))
            .arg(cfg.max_sessions_per_user.unwrap_or(0))
            .arg(token_index_expiry_ms(token.expires_at))
            .arg(token.client.map(client_digest).unwrap_or_default());
        match ScriptReply::parse(self.run(&op).await?)? {
            ScriptReply::Registered => {
                cfg.emit(RotationEventKind::Registered, user, Some(&family));
                Ok(family)
            }
            ScriptReply::Duplicate => Err(StoreError::DuplicateJti),
            other => Err(StoreError::Corrupt(format!("register replied {other:?}"))),
        }
    }

    async fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let cfg = &self.config;
        let keys = self.keys(user);
        let digest = jti_digest(presented.jti);
        let slot = keys.grace(&digest);
        let sealed = if cfg.grace.is_zero() {
            Vec::new()
        } else {
            cfg.sealing_key.seal(successor.token, slot.as_bytes())
        };
        let mut op = Op::write(&ROTATE);
        op.key(keys.index()).key(&slot);
        match presented.family {
            Some(family) => op.key(keys.family(family.as_str())),
            None => op
                .key(keys.tokens(presented.expires_at))
                .key(keys.tokens(successor.expires_at)),
        };
        op.arg(self.offset())
            .arg(presented.jti)
            .arg(&digest)
            .arg(keys.family_prefix())
            .arg(successor.jti)
            .arg(jti_digest(successor.jti))
            .arg(sealed)
            .arg(millis(cfg.grace))
            .arg(cfg.max_grace_replays.map_or(-1, i64::from))
            .arg(millis(cfg.idle_lifetime))
            .arg(if cfg.revoke_all_on_reuse { "1" } else { "0" })
            .arg(token_index_expiry_ms(presented.expires_at))
            .arg(token_index_expiry_ms(successor.expires_at))
            .arg(presented.family.map_or("", FamilyId::as_str))
            .arg(presented.client.map(client_digest).unwrap_or_default());
        let outcome = match ScriptReply::parse(self.run(&op).await?)? {
            ScriptReply::Outcome(outcome) => outcome,
            ScriptReply::GraceReplay(family, sealed) => {
                let successor = cfg.sealing_key.open(&sealed, slot.as_bytes())?;
                RotationOutcome::GraceReplay { family, successor }
            }
            ScriptReply::Duplicate => return Err(StoreError::DuplicateJti),
            ScriptReply::Registered => {
                return Err(StoreError::Corrupt("rotate replied registered".into()));
            }
        };
        report_rotation(cfg, user, &outcome);
        Ok(outcome)
    }

    async fn revoke(
        &self,
        user: &str,
        token: TokenRef<'_>,
    ) -> Result<Option<FamilyId>, StoreError> {
        let keys = self.keys(user);
        let family = self.revoke_in(&keys, token.family, Some(token)).await?;
        if let Some(family) = &family {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(family)
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        let keys = self.keys(user);
        let revoked = self.revoke_in(&keys, Some(family), None).await?.is_some();
        if revoked {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(revoked)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        let keys = self.keys(user);
        let value = self
            .run(
                Op::write(&REVOKE_ALL)
                    .key(keys.index())
                    .arg(self.offset())
                    .arg(keys.family_prefix()),
            )
            .await?;
        let count = int(&value)?;
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let keys = self.keys(user);
        let value = self
            .run(
                Op::read(&LIST)
                    .key(keys.index())
                    .arg(self.offset())
                    .arg(keys.family_prefix()),
            )
            .await?;
        let corrupt = || StoreError::Corrupt("list reply".into());
        let Value::Array(items) = value else {
            return Err(corrupt());
        };
        let mut items = items.into_iter();
        let now = int(&items.next().ok_or_else(corrupt)?)? as i64;
        let mut families = Vec::new();
        while let (Some(Value::BulkString(id)), Some(Value::BulkString(raw))) =
            (items.next(), items.next())
        {
            let id = String::from_utf8(id).map_err(|_| corrupt())?;
            families.push((id, decode(&raw)?));
        }
        Ok(sessions(
            families.iter().map(|(id, f)| (id.as_str(), f)),
            now,
        ))
    }

    async fn cleanup_expired(&self) -> Result<u64, StoreError> {
        self.cleanup_expired_with_progress(|_| {}).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.source
            .run(Call::Command(&redis::cmd("PING")), self.config.timeout)
            .await
            .map(drop)
    }

    fn call_timeout(&self) -> Option<Duration> {
        // A write may wait its outcome out past the timeout; the layer must wait as long.
        Some(self.config.timeout.saturating_add(self.config.outcome_wait))
    }

    fn session_lifetime(&self) -> Option<Duration> {
        Some(self.config.session_lifetime())
    }
}

impl RedisStore {
    /// Revokes one family, named by id or found through the token index from `token`.
    async fn revoke_in(
        &self,
        keys: &UserKeys,
        family: Option<&FamilyId>,
        token: Option<TokenRef<'_>>,
    ) -> Result<Option<FamilyId>, StoreError> {
        let mut op = Op::write(&REVOKE);
        op.key(keys.index());
        let (jti, exp) = token.map_or(("", 0), |t| (t.jti, t.expires_at));
        match family {
            Some(family) => op.key(keys.family(family.as_str())),
            None => op.key(keys.tokens(exp)),
        };
        op.arg(self.offset())
            .arg(keys.family_prefix())
            .arg(family.map_or("", FamilyId::as_str))
            .arg(jti_digest(jti))
            .arg(token_index_expiry_ms(exp));
        match self.run(&op).await? {
            Value::BulkString(id) => Ok(Some(FamilyId::from(
                String::from_utf8(id).map_err(|_| StoreError::Corrupt("family id".into()))?,
            ))),
            _ => Ok(None),
        }
    }
}

fn int(value: &Value) -> Result<u64, StoreError> {
    match value {
        Value::Int(n) => Ok((*n).max(0) as u64),
        _ => Err(StoreError::Corrupt("expected an integer".into())),
    }
}

/// Decodes a family record as the scripts pack it (`FAMILY` and `CLIENT` in
/// `scripts/common.lua`): six big-endian doubles (created, last rotated, absolute end, idle
/// end, rotated at or 0, replays), a revoked byte, then predecessor digest, current jti and
/// metadata, each after a big-endian u16 length; then, only for a family bound to a client,
/// the client digest after its length.
pub(crate) fn decode(raw: &[u8]) -> Result<Family, StoreError> {
    let corrupt = || StoreError::Corrupt("family record".to_owned());
    let mut rest = raw;
    let mut take = |n: usize| -> Result<&[u8], StoreError> {
        if rest.len() < n {
            return Err(corrupt());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let mut times = [0i64; 6];
    for time in &mut times {
        let bytes: [u8; 8] = take(8)?.try_into().map_err(|_| corrupt())?;
        *time = f64::from_be_bytes(bytes) as i64;
    }
    let revoked = take(1)?[0] == 1;
    let mut string = || -> Result<String, StoreError> {
        let len = u16::from_be_bytes(take(2)?.try_into().map_err(|_| corrupt())?) as usize;
        String::from_utf8(take(len)?.to_vec()).map_err(|_| corrupt())
    };
    let (previous, current, metadata) = (string()?, string()?, string()?);
    let bound = raw.len() > record_len_before_client(&previous, &current, &metadata);
    let client = if bound { Some(string()?) } else { None };
    let [
        created,
        last_rotated,
        absolute_end,
        idle_end,
        rotated_at,
        replays,
    ] = times;
    Ok(Family {
        current,
        previous: (!previous.is_empty()).then_some(previous),
        rotated_at: (rotated_at > 0).then_some(rotated_at),
        replays: replays as u32,
        created,
        last_rotated,
        absolute_end,
        idle_end,
        revoked: revoked.then_some(1),
        metadata: (!metadata.is_empty()).then_some(metadata),
        client,
    })
}

/// The length of a record up to (not including) its optional client string.
fn record_len_before_client(previous: &str, current: &str, metadata: &str) -> usize {
    6 * 8 + 1 + 3 * 2 + previous.len() + current.len() + metadata.len()
}
