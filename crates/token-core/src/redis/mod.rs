//! The Redis store: one Lua script per operation, one round trip per operation.

mod connection;

use std::sync::{Arc, LazyLock};

use redis::{ErrorKind, Script, ServerErrorKind, ToRedisArgs, Value};

use self::connection::Call;
pub use self::connection::{Checked, CheckedConnection, ConnectionSource};
use crate::admin::CleanupProgress;
use crate::config::millis;
use crate::keys::{grace_key, jti_digest, record_key, record_pattern};
use crate::store::{Record, clip_metadata, report_rotation, sessions};
use crate::{
    FamilyId, RotationEventKind, RotationOutcome, RotationStore, SessionInfo, StoreConfig,
    StoreError, Successor,
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
static REVOKE_FAMILY: LazyLock<Lua> = lua!("revoke_family.lua");
static REVOKE_ALL: LazyLock<Lua> = lua!("revoke_all.lua");
static LIST: LazyLock<Lua> = lua!("list.lua");
static PRUNE: LazyLock<Lua> = lua!("prune.lua");

/// One script call with its keys and arguments. It goes out as one `EVALSHA`, or, for a
/// write when the store waits for replicas, as `EVALSHA` + `WAIT` in one pipeline: still
/// one round trip.
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
pub struct RedisStore {
    source: ConnectionSource,
    config: Arc<StoreConfig>,
}

impl RedisStore {
    /// A store on the default connection source (a `ConnectionManager`) for `url`.
    /// Connects lazily: this succeeds while Redis is down, and calls fail until it is up.
    pub fn open(url: &str, config: StoreConfig) -> Result<Self, StoreError> {
        let source = ConnectionSource::connection_manager(url, config.timeout)?;
        Ok(Self::with_source(source, config))
    }

    /// A store on the given connection source.
    pub fn with_source(source: ConnectionSource, config: StoreConfig) -> Self {
        RedisStore {
            source,
            config: Arc::new(config),
        }
    }

    /// The connection source.
    pub fn source(&self) -> &ConnectionSource {
        &self.source
    }

    fn key(&self, user: &str) -> String {
        record_key(&self.config.key_prefix, user)
    }

    fn offset(&self) -> i64 {
        self.config.clock.millis()
    }

    /// [`cleanup_expired`](RotationStore::cleanup_expired), reporting after each `SCAN`
    /// batch how far it got, for operators' progress bars on large keyspaces.
    pub async fn cleanup_expired_with_progress(
        &self,
        mut progress: impl FnMut(CleanupProgress) + Send,
    ) -> Result<u64, StoreError> {
        let pattern = record_pattern(&self.config.key_prefix);
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
                    done.pruned += int(&self
                        .run(Op::write(&PRUNE).key(key).arg(self.offset()))
                        .await?)?;
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
        let timeout = self.config.timeout;
        let Some(wait) = self.config.replica_ack.filter(|_| op.writes) else {
            return self
                .source
                .run(Call::Script(&op.invocation()), timeout)
                .await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(op.evalsha())
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(millis(wait.timeout));
        let replies = match self.source.run(Call::Pipeline(&pipe), timeout).await {
            Err(StoreError::Redis(e))
                if e.kind() == ErrorKind::Server(ServerErrorKind::NoScript) =>
            {
                // After a Redis restart: load the script once, then send the pair again.
                let mut load = redis::cmd("SCRIPT");
                load.arg("LOAD").arg(op.lua.source);
                self.source.run(Call::Command(&load), timeout).await?;
                self.source.run(Call::Pipeline(&pipe), timeout).await?
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

/// A script reply `{tag, family?, sealed?}`.
type Reply = (String, Option<String>, Option<Vec<u8>>);

/// Reads a script reply as strings and bytes.
fn reply(value: Value) -> Result<Reply, StoreError> {
    let corrupt = || StoreError::Corrupt("unexpected script reply".to_owned());
    let Value::Array(items) = value else {
        return Err(corrupt());
    };
    let mut items = items.into_iter().map(|v| match v {
        Value::BulkString(bytes) => Ok(bytes),
        Value::SimpleString(s) => Ok(s.into_bytes()),
        _ => Err(corrupt()),
    });
    let tag = String::from_utf8(items.next().ok_or_else(corrupt)??).map_err(|_| corrupt())?;
    let family = items
        .next()
        .transpose()?
        .map(|b| String::from_utf8(b).map_err(|_| corrupt()))
        .transpose()?;
    let sealed = items.next().transpose()?;
    Ok((tag, family, sealed))
}

impl RotationStore for RedisStore {
    async fn register(
        &self,
        user: &str,
        jti: &str,
        metadata: Option<&str>,
    ) -> Result<FamilyId, StoreError> {
        let family = FamilyId::random();
        let cfg = &self.config;
        let value = self
            .run(
                Op::write(&REGISTER)
                    .key(self.key(user))
                    .arg(self.offset())
                    .arg(jti)
                    .arg(jti_digest(jti))
                    .arg(family.as_str())
                    .arg(millis(cfg.absolute_lifetime))
                    .arg(millis(cfg.idle_lifetime))
                    .arg(clip_metadata(metadata).unwrap_or(""))
                    .arg(cfg.max_sessions_per_user.unwrap_or(0)),
            )
            .await?;
        match reply(value)? {
            (tag, _, _) if tag == "registered" => {
                cfg.emit(RotationEventKind::Registered, user, Some(&family));
                Ok(family)
            }
            (tag, _, _) if tag == "duplicate" => Err(StoreError::DuplicateJti),
            (tag, _, _) => Err(StoreError::Corrupt(format!("register replied {tag}"))),
        }
    }

    async fn rotate(
        &self,
        user: &str,
        presented_jti: &str,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        let cfg = &self.config;
        let key = self.key(user);
        let digest = jti_digest(presented_jti);
        let slot = grace_key(&key, &digest);
        let sealed = if cfg.grace.is_zero() {
            Vec::new()
        } else {
            cfg.sealing_key.seal(successor.token, slot.as_bytes())
        };
        let value = self
            .run(
                Op::write(&ROTATE)
                    .key(&key)
                    .key(&slot)
                    .arg(self.offset())
                    .arg(presented_jti)
                    .arg(&digest)
                    .arg(successor.jti)
                    .arg(jti_digest(successor.jti))
                    .arg(sealed)
                    .arg(millis(cfg.grace))
                    .arg(cfg.max_grace_replays.map_or(-1, i64::from))
                    .arg(millis(cfg.idle_lifetime))
                    .arg(cfg.spent_history)
                    .arg(if cfg.revoke_all_on_reuse { "1" } else { "0" }),
            )
            .await?;
        let (tag, family, sealed) = reply(value)?;
        let family = family.map(FamilyId::from);
        let outcome = match (tag.as_str(), family) {
            ("rotated", Some(family)) => RotationOutcome::Rotated { family },
            ("grace", Some(family)) => {
                let sealed =
                    sealed.ok_or_else(|| StoreError::Corrupt("grace without successor".into()))?;
                let successor = cfg.sealing_key.open(&sealed, slot.as_bytes())?;
                RotationOutcome::GraceReplay { family, successor }
            }
            ("reuse", Some(family)) => RotationOutcome::ReuseDetected { family },
            ("revoked", Some(family)) => RotationOutcome::Revoked { family },
            ("expired", Some(family)) => RotationOutcome::Expired { family },
            ("unknown", _) => RotationOutcome::Unknown,
            ("duplicate", _) => return Err(StoreError::DuplicateJti),
            (tag, _) => return Err(StoreError::Corrupt(format!("rotate replied {tag}"))),
        };
        report_rotation(cfg, user, &outcome);
        Ok(outcome)
    }

    async fn revoke(&self, user: &str, jti: &str) -> Result<Option<FamilyId>, StoreError> {
        let value = self
            .run(
                Op::write(&REVOKE)
                    .key(self.key(user))
                    .arg(self.offset())
                    .arg(jti)
                    .arg(jti_digest(jti)),
            )
            .await?;
        let family = match value {
            Value::BulkString(id) => Some(FamilyId::from(
                String::from_utf8(id).map_err(|_| StoreError::Corrupt("family id".into()))?,
            )),
            _ => None,
        };
        if let Some(family) = &family {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(family)
    }

    async fn revoke_family(&self, user: &str, family: &FamilyId) -> Result<bool, StoreError> {
        let value = self
            .run(
                Op::write(&REVOKE_FAMILY)
                    .key(self.key(user))
                    .arg(self.offset())
                    .arg(family.as_str()),
            )
            .await?;
        let revoked = matches!(value, Value::Int(1));
        if revoked {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, Some(family));
        }
        Ok(revoked)
    }

    async fn revoke_all(&self, user: &str) -> Result<u64, StoreError> {
        let value = self
            .run(
                Op::write(&REVOKE_ALL)
                    .key(self.key(user))
                    .arg(self.offset()),
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
        let value = self
            .run(Op::read(&LIST).key(self.key(user)).arg(self.offset()))
            .await?;
        let Value::Array(items) = value else {
            return Err(StoreError::Corrupt("list reply".into()));
        };
        let now = items.first().map(int).transpose()?.unwrap_or_default() as i64;
        match items.get(1) {
            Some(Value::BulkString(raw)) => Ok(sessions(&decode(raw)?, now)),
            _ => Ok(Vec::new()),
        }
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

    fn config(&self) -> &StoreConfig {
        &self.config
    }
}

fn int(value: &Value) -> Result<u64, StoreError> {
    match value {
        Value::Int(n) => Ok((*n).max(0) as u64),
        _ => Err(StoreError::Corrupt("expected an integer".into())),
    }
}

/// Decodes a user's record as the scripts wrote it.
pub(crate) fn decode(raw: &[u8]) -> Result<Record, StoreError> {
    rmp_serde::from_slice(raw).map_err(|e| StoreError::Corrupt(format!("record: {e}")))
}
