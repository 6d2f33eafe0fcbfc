//! The Redis store: one function of a Redis Functions library per operation, one round trip
//! per operation.

pub mod admin;
mod connection;
mod library;
mod record;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use redis::{ToRedisArgs, Value};

use self::admin::CleanupProgress;
use self::connection::Call;
pub use self::connection::{ConnectionSource, RedisAuth};
use self::library::{Library, function_missing, functions_source};
use self::record::decode;
use crate::config::millis;
use crate::digest::{client_digest, jti_digest};
use crate::keys::{METADATA_MARK, UserKeys, index_pattern, proof_mark, user_of_index_key};
use crate::rules::{Family, adoption_expiry_ms, check_expiry, token_index_expiry_ms};
use crate::store::{clip_metadata, report_rotation, sessions, split_metadata_field};
use crate::{
    Adoption, AdoptionRefusal, FamilyId, RotationEventKind, RotationOutcome, RotationStore,
    SessionInfo, StoreConfig, StoreError, Successor, TokenRef,
};

/// One function call with its keys and arguments. It goes out as one `FCALL`, or, for a
/// write when the store waits for replicas, as `FCALL` + `WAIT` in one pipeline: still one
/// round trip.
#[derive(Clone)]
struct Op {
    function: &'static str,
    keys: Vec<Vec<u8>>,
    args: Vec<Vec<u8>>,
    writes: bool,
}

impl Op {
    fn read(function: &'static str) -> Self {
        Op {
            function,
            keys: Vec::new(),
            args: Vec::new(),
            writes: false,
        }
    }

    fn write(function: &'static str) -> Self {
        Op {
            writes: true,
            ..Op::read(function)
        }
    }

    fn key(&mut self, key: impl ToRedisArgs) -> &mut Self {
        key.write_redis_args(&mut self.keys);
        self
    }

    /// The token-index bucket of a token expiring at `exp` and its shard for `digest`.
    fn token_index(
        &mut self,
        keys: &UserKeys,
        exp: i64,
        digest: &crate::digest::Digest,
    ) -> &mut Self {
        self.key(keys.tokens(exp))
            .key(keys.token_shard(exp, digest))
    }

    fn arg(&mut self, arg: impl ToRedisArgs) -> &mut Self {
        arg.write_redis_args(&mut self.args);
        self
    }

    fn fcall(&self, library: &Library) -> redis::Cmd {
        // A read goes out as FCALL_RO, which a replica accepts.
        let mut cmd = redis::cmd(if self.writes { "FCALL" } else { "FCALL_RO" });
        cmd.arg(format!("{}_{}", library.name, self.function))
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
    library: Arc<Library>,
}

impl RedisStore {
    /// The Lua of the store's functions for `config` (its policy as constants, then the
    /// scripts), without the library header and registrations. Not part of the API: the
    /// bench crate builds a library of its own around it, to time `rotate` against bare
    /// functions.
    #[doc(hidden)]
    pub fn functions_source(config: &StoreConfig) -> String {
        functions_source(config)
    }

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
            library: Arc::new(Library::for_config(&config)),
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

    /// Spends the DPoP proof `jti` (if any) for the call `op` (`did`: what the call makes current),
    /// or makes `op` spend it. A proof's mark is one per server, not per user: outside a
    /// Cluster it is one more key of `op`, checked and set in the same atomic step; on a
    /// Cluster it lives in a slot of its own, which `op` cannot touch, so it is spent here
    /// first, one round trip more (a proof spent by a call that then fails is spent all the
    /// same: a client signs a fresh proof for each request). False when it was spent by
    /// another call.
    async fn proof_goes_with(
        &self,
        op: &mut Op,
        jti: Option<&str>,
        did: &[u8],
    ) -> Result<bool, StoreError> {
        // A key proven without a single-use id (a client certificate) spends nothing.
        let Some(jti) = jti else {
            return Ok(true);
        };
        let mark = proof_mark(&self.config.key_prefix, jti);
        if !self.source.is_cluster() {
            op.key(mark);
            return Ok(true);
        }
        let mut spend = Op::write("spend_proof");
        spend.key(mark).arg(did);
        match self.run(&spend).await? {
            Value::Int(spent) => Ok(spent == 1),
            other => Err(StoreError::Corrupt(format!(
                "spend_proof replied {other:?}"
            ))),
        }
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
                    let _ = user;
                    let op = Op::write("prune").key(key).arg(self.offset()).clone();
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
        // Boxed: the connection sources' futures nest deeply (redis-rs, bb8, the patient
        // resend), and an app whose handlers await the store through the layer would
        // otherwise need a `recursion_limit` above rustc's default to compute their layout.
        // One allocation per call, against a network round trip.
        Box::pin(self.run_unboxed(op)).await
    }

    async fn run_unboxed(&self, op: &Op) -> Result<Value, StoreError> {
        match self.send(op).await {
            Err(err) if function_missing(&err) => {
                // A server without the library (first use, a restart without persistence, a
                // promoted replica that never had it): load it, then send the call again.
                // On a cluster, redis routes FUNCTION LOAD to every master.
                let mut load = redis::cmd("FUNCTION");
                load.arg("LOAD").arg("REPLACE").arg(&self.library.source);
                self.source
                    .run(Call::Command(&load), self.config.timeout)
                    .await?;
                self.send(op).await
            }
            other => other,
        }
    }

    /// Sends one call: `FCALL`, or `FCALL` + `WAIT` in one pipeline for a write when the
    /// store waits for replicas.
    async fn send(&self, op: &Op) -> Result<Value, StoreError> {
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
            return send(Call::Command(&op.fcall(&self.library))).await;
        };
        let mut pipe = redis::pipe();
        pipe.add_command(op.fcall(&self.library))
            .cmd("WAIT")
            .arg(wait.replicas)
            .arg(millis(wait.timeout));
        let replies = send(Call::Pipeline(&pipe)).await?;
        let (reply, acked): (Value, u32) = redis::from_redis_value(replies)
            .map_err(|e| StoreError::Corrupt(format!("FCALL + WAIT reply: {e}")))?;
        if acked < wait.replicas {
            return Err(StoreError::NotReplicated {
                acked,
                wanted: wait.replicas,
            });
        }
        Ok(reply)
    }
}

/// What the `register`, `adopt` and `rotate` functions answer: `{tag, family?, sealed?}`,
/// where the tag is a [`RotationOutcome::name`] (or `registered` / `duplicate`, `known` /
/// `adopted` / `expired`).
#[derive(Debug)]
enum ScriptReply {
    Registered,
    Duplicate,
    Known(FamilyId),
    Adopted(FamilyId),
    Refused(AdoptionRefusal),
    Expired,
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
            "known" => ScriptReply::Known(family()?),
            "adopted" => ScriptReply::Adopted(family()?),
            "expired" => ScriptReply::Expired,
            "refused" => ScriptReply::Refused(match text("reason")?.as_str() {
                "revoked_after_issue" => AdoptionRefusal::RevokedAfterIssue,
                "issued_too_long_ago" => AdoptionRefusal::IssuedTooLongAgo,
                other => return Err(corrupt(other)),
            }),
            "rotated" => ScriptReply::Outcome(RotationOutcome::Rotated { family: family()? }),
            "reuse_detected" => {
                ScriptReply::Outcome(RotationOutcome::ReuseDetected { family: family()? })
            }
            "revoked" => ScriptReply::Outcome(RotationOutcome::Revoked { family: family()? }),
            "replay_refused" => {
                ScriptReply::Outcome(RotationOutcome::ReplayRefused { family: family()? })
            }
            "wrong_client" => {
                ScriptReply::Outcome(RotationOutcome::WrongClient { family: family()? })
            }
            "wrong_key" => ScriptReply::Outcome(RotationOutcome::WrongKey { family: family()? }),
            "proof_replayed" => ScriptReply::Outcome(RotationOutcome::ProofReplayed),
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
        check_expiry(token.expires_at)?;
        let cfg = &self.config;
        let keys = self.keys(user);
        let family = token.family.cloned().unwrap_or_else(FamilyId::random);
        let mut op = Op::write("register");
        op.key(keys.index());
        if token.family.is_none() {
            op.token_index(&keys, token.expires_at, &jti_digest(token.jti));
        }
        op.arg(self.offset())
            .arg(&jti_digest(token.jti)[..])
            .arg(family.as_str())
            .arg(millis(cfg.absolute_lifetime))
            .arg(millis(cfg.idle_lifetime))
            .arg(clip_metadata(metadata).unwrap_or(""))
            .arg(cfg.max_sessions_per_user.unwrap_or(0))
            .arg(token_index_expiry_ms(token.expires_at));
        match token.proof {
            Some(proof) => {
                let (binding, _) = token.presenter().binding();
                op.arg(binding.map_or(Vec::new(), |d| d.to_vec()))
                    .arg(token.client.unwrap_or(""))
                    .arg("1")
                    .arg(proof.thumbprint);
                if !self
                    .proof_goes_with(&mut op, proof.jti, &jti_digest(token.jti))
                    .await?
                {
                    return Err(StoreError::ProofReplayed);
                }
            }
            None => {
                op.arg(client_arg(token.client))
                    .arg(token.client.unwrap_or(""));
            }
        }
        match ScriptReply::parse(self.run(&op).await?)? {
            ScriptReply::Outcome(RotationOutcome::ProofReplayed) => Err(StoreError::ProofReplayed),
            ScriptReply::Registered => {
                cfg.emit(RotationEventKind::Registered, user, Some(&family));
                Ok(family)
            }
            ScriptReply::Duplicate => Err(StoreError::DuplicateJti),
            other => Err(StoreError::Corrupt(format!("register replied {other:?}"))),
        }
    }

    async fn adopt(
        &self,
        user: &str,
        token: TokenRef<'_>,
        family: &FamilyId,
        metadata: Option<&str>,
    ) -> Result<Adoption, StoreError> {
        check_expiry(token.expires_at)?;
        let cfg = &self.config;
        let keys = self.keys(user);
        // With a proof the family is bound to its key (late: see `Family::bound_late`); the
        // rotation that follows spends the proof.
        let (binding, key_bound) = token.presenter().binding();
        let mut op = Op::write("adopt");
        op.key(keys.index()).key(keys.adopted());
        if token.family.is_none() {
            op.token_index(&keys, token.expires_at, &jti_digest(token.jti));
        }
        op.arg(self.offset())
            .arg(&jti_digest(token.jti)[..])
            .arg(token.family.map_or("", FamilyId::as_str))
            .arg(family.as_str())
            .arg(millis(cfg.absolute_lifetime))
            .arg(millis(cfg.idle_lifetime))
            .arg(clip_metadata(metadata).unwrap_or(""))
            .arg(cfg.max_sessions_per_user.unwrap_or(0))
            // One expiry serves the index entry and the adoption record: they are the same.
            .arg(adoption_expiry_ms(token.expires_at))
            .arg(binding.map_or(Vec::new(), |d| d.to_vec()))
            .arg(token.client.unwrap_or(""))
            .arg(token.issued_at.map_or(String::new(), |iat| iat.to_string()))
            .arg(if key_bound { "1" } else { "" })
            .arg(token.proof.map_or("", |proof| proof.thumbprint));
        match ScriptReply::parse(self.run(&op).await?)? {
            ScriptReply::Known(family) => Ok(Adoption::Known { family }),
            ScriptReply::Refused(reason) => Ok(Adoption::Refused { reason }),
            ScriptReply::Adopted(family) => {
                cfg.emit(RotationEventKind::Adopted, user, Some(&family));
                Ok(Adoption::Adopted { family })
            }
            ScriptReply::Expired => Err(StoreError::ExpiryOutOfRange(token.expires_at)),
            ScriptReply::Duplicate => Err(StoreError::DuplicateJti),
            other => Err(StoreError::Corrupt(format!("adopt replied {other:?}"))),
        }
    }

    async fn rotate(
        &self,
        user: &str,
        presented: TokenRef<'_>,
        successor: Successor<'_>,
    ) -> Result<RotationOutcome, StoreError> {
        check_expiry(presented.expires_at)?;
        check_expiry(successor.expires_at)?;
        let cfg = &self.config;
        let keys = self.keys(user);
        let digest = jti_digest(presented.jti);
        let aad = keys.grace_aad(&digest);
        let sealed = if cfg.grace.is_zero() {
            Vec::new()
        } else {
            cfg.sealing_key.seal(successor.token, aad.as_bytes())
        };
        let mut op = Op::write("rotate");
        op.key(keys.index())
            .key(keys.grace(presented.family.map(FamilyId::as_str), &digest));
        if presented.family.is_none() {
            op.token_index(&keys, presented.expires_at, &digest)
                .token_index(&keys, successor.expires_at, &jti_digest(successor.jti));
        }
        op.arg(self.offset())
            .arg(&digest[..])
            .arg(presented.family.map_or("", FamilyId::as_str))
            .arg(&jti_digest(successor.jti)[..])
            .arg(sealed);
        // Trailing arguments only when they say something: each costs Redis a Lua string
        // on every call, and this is the store's hottest call.
        // The client goes as its digest (what a client binding `k` holds) and its id (what a
        // key-bound family's client is compared on).
        let client_id = presented.client.unwrap_or("");
        if let Some(proof) = presented.proof {
            let presenter = presented.presenter();
            let expiry = |exp: i64| {
                presented
                    .family
                    .map_or(token_index_expiry_ms(exp).to_string(), |_| String::new())
            };
            op.arg(client_arg(presented.client))
                .arg(client_id)
                .arg(expiry(presented.expires_at))
                .arg(expiry(successor.expires_at))
                .arg(presenter.keyed.map_or(Vec::new(), |d| d.to_vec()))
                .arg(if proof.binds { "1" } else { "" })
                .arg(proof.thumbprint);
            if !self
                .proof_goes_with(&mut op, proof.jti, &jti_digest(successor.jti))
                .await?
            {
                report_rotation(cfg, user, &RotationOutcome::ProofReplayed);
                return Ok(RotationOutcome::ProofReplayed);
            }
        } else if presented.family.is_none() {
            op.arg(client_arg(presented.client))
                .arg(client_id)
                .arg(token_index_expiry_ms(presented.expires_at))
                .arg(token_index_expiry_ms(successor.expires_at));
        } else if presented.client.is_some() {
            op.arg(client_arg(presented.client)).arg(client_id);
        }
        let outcome = match ScriptReply::parse(self.run(&op).await?)? {
            ScriptReply::Outcome(outcome) => outcome,
            ScriptReply::GraceReplay(family, sealed) => {
                let successor = cfg.sealing_key.open(&sealed, aad.as_bytes())?;
                RotationOutcome::GraceReplay { family, successor }
            }
            ScriptReply::Duplicate => return Err(StoreError::DuplicateJti),
            other => return Err(StoreError::Corrupt(format!("rotate replied {other:?}"))),
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
            .run(Op::write("revoke_all").key(keys.index()).arg(self.offset()))
            .await?;
        let count = int(&value)?;
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn revoke_client(&self, user: &str, client: &str) -> Result<u64, StoreError> {
        let keys = self.keys(user);
        let mut op = Op::write("revoke_client");
        op.key(keys.index()).arg(self.offset()).arg(client);
        let count = int(&self.run(&op).await?)?;
        if count > 0 {
            self.config
                .emit(RotationEventKind::FamilyRevoked, user, None);
        }
        Ok(count)
    }

    async fn list(&self, user: &str) -> Result<Vec<SessionInfo>, StoreError> {
        let keys = self.keys(user);
        let value = self
            .run(Op::read("list").key(keys.index()).arg(self.offset()))
            .await?;
        let corrupt = || StoreError::Corrupt("list reply".into());
        let Value::Array(items) = value else {
            return Err(corrupt());
        };
        let mut items = items.into_iter();
        let now = int(&items.next().ok_or_else(corrupt)?)? as i64;
        let mut families: Vec<(String, Family)> = Vec::new();
        let mut metadata: HashMap<String, crate::store::MetadataField> = HashMap::new();
        while let (Some(Value::BulkString(field)), Some(Value::BulkString(value))) =
            (items.next(), items.next())
        {
            if let Some(id) = field.strip_prefix(&[METADATA_MARK]) {
                let id = String::from_utf8(id.to_vec()).map_err(|_| corrupt())?;
                let parts = split_metadata_field(&value).ok_or_else(corrupt)?;
                metadata.insert(id, parts);
            } else {
                let id = String::from_utf8(field).map_err(|_| corrupt())?;
                families.push((id, decode(&value)?));
            }
        }
        for (id, family) in &mut families {
            (family.client_id, family.key_thumbprint, family.metadata) =
                metadata.remove(id.as_str()).unwrap_or_default();
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
    /// Revokes one family, named by id or found through the token index from `token`. With
    /// a token, `token.client` is the client asking, and a family issued to another one is
    /// left alone (see `revoke_one` in `scripts/revoke.lua`); by id alone, nothing is checked.
    async fn revoke_in(
        &self,
        keys: &UserKeys,
        family: Option<&FamilyId>,
        token: Option<TokenRef<'_>>,
    ) -> Result<Option<FamilyId>, StoreError> {
        let mut op = Op::write("revoke");
        op.key(keys.index());
        let (jti, exp) = token.map_or(("", 0), |t| (t.jti, t.expires_at));
        check_expiry(exp)?;
        if family.is_none() {
            op.token_index(keys, exp, &jti_digest(jti));
        }
        op.arg(self.offset())
            .arg(family.map_or("", FamilyId::as_str))
            .arg(&jti_digest(jti)[..])
            .arg(token_index_expiry_ms(exp));
        if let Some(token) = token {
            op.arg(token.client.unwrap_or(""));
        }
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

/// The client-digest argument: the raw digest, or empty for none.
fn client_arg(client: Option<&str>) -> Vec<u8> {
    client
        .map(|c| client_digest(c).to_vec())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::library::SCRIPTS;
    use super::record;

    /// The names and values of the Lua line `local A, B = 1, 2` that declares `first`.
    fn lua_constants(first: &str) -> Vec<(String, String)> {
        let line = SCRIPTS
            .lines()
            .find(|l| {
                l.starts_with(&format!("local {first},"))
                    || l.starts_with(&format!("local {first} ="))
            })
            .unwrap_or_else(|| panic!("no Lua line declares {first}"));
        let (names, values) = line["local ".len()..].split_once(" = ").unwrap();
        let names = names.split(", ").map(str::to_owned);
        let values = values.split(", ").map(|v| v.trim_matches('\'').to_owned());
        names.zip(values).collect()
    }

    /// The rules are written once per language: every `Step` of `Family::step` has its
    /// twin, by name, in the scripts' `step` (and `refuses`), and every `Role` in `role`.
    #[test]
    fn every_step_of_the_rules_has_its_twin_in_the_scripts() {
        use crate::rules::{Role, Step};
        // Exhaustive: a new variant does not compile until it is named here.
        fn step_name(step: Step) -> &'static str {
            match step {
                Step::WrongClient => "wrong_client",
                Step::WrongKey => "wrong_key",
                Step::Revoked => "revoked",
                Step::Duplicate => "duplicate",
                Step::Rotate => "rotate",
                Step::Repeat => "repeat",
                Step::Replay => "replay",
                Step::ReplayRefused => "replay_refused",
                Step::Reuse => "reuse",
            }
        }
        fn role_name(role: Role) -> &'static str {
            match role {
                Role::Current => "current",
                Role::Previous => "previous",
                Role::Spent => "spent",
            }
        }
        let function = |name: &str| -> &str {
            let start = SCRIPTS
                .find(&format!("local function {name}("))
                .unwrap_or_else(|| panic!("the scripts have no {name}"));
            let body = &SCRIPTS[start..];
            &body[..body.find("\nend\n").unwrap()]
        };
        let (step, refuses) = (function("step"), function("refuses"));
        for s in [
            Step::WrongClient,
            Step::WrongKey,
            Step::Revoked,
            Step::Duplicate,
            Step::Rotate,
            Step::Repeat,
            Step::Replay,
            Step::ReplayRefused,
            Step::Reuse,
        ] {
            let quoted = format!("'{}'", step_name(s));
            assert!(
                step.contains(&quoted) || refuses.contains(&quoted),
                "the scripts' step never answers {quoted}"
            );
        }
        for r in [Role::Current, Role::Previous, Role::Spent] {
            let quoted = format!("'{}'", role_name(r));
            assert!(
                function("role").contains(&quoted),
                "the scripts' role never answers {quoted}"
            );
        }
        // And rotate asks step rather than deciding again itself.
        assert!(function("rotate").contains("step(hash, id, raw, flags, presented"));
    }

    /// The record layout is written once per language: each Lua constant and its Rust twin
    /// in `record.rs` must agree, or the scripts would read what Rust did not write.
    #[test]
    fn the_scripts_read_the_record_as_record_rs_writes_it() {
        let flags: Vec<(String, String)> = lua_constants("REVOKED");
        let rust = [
            ("REVOKED", record::REVOKED),
            ("HAS_PREVIOUS", record::HAS_PREVIOUS),
            ("BOUND", record::BOUND),
            ("KEY_BOUND", record::KEY_BOUND),
            ("BOUND_LATE", record::BOUND_LATE),
        ];
        assert_eq!(flags.len(), rust.len(), "{flags:?}");
        for ((lua_name, lua_value), (name, value)) in flags.iter().zip(rust) {
            assert_eq!(
                (lua_name.as_str(), lua_value.as_str()),
                (name, value.to_string().as_str())
            );
        }
        let offsets = lua_constants("CURRENT_AT");
        let value = |name: &str| -> usize {
            offsets
                .iter()
                .find(|(n, _)| n == name)
                .unwrap_or_else(|| panic!("no Lua constant {name}"))
                .1
                .parse()
                .unwrap()
        };
        // Lua's string.sub counts from 1.
        assert_eq!(value("CURRENT_AT"), record::CURRENT_AT + 1);
        assert_eq!(value("PREVIOUS_AT"), record::HEAD_LEN + 1);
        assert_eq!(
            value("DIGEST"),
            std::mem::size_of::<crate::digest::Digest>()
        );
        let head = lua_constants("RECORD_HEAD");
        // '>BHi6i6i6i6': a byte, a u16 and four 6-byte integers.
        assert_eq!(head[0].1, ">BHi6i6i6i6");
        assert_eq!(1 + 2 + 4 * 6, record::CURRENT_AT);
    }
}
