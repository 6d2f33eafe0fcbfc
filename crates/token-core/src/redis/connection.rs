//! Where the Redis store gets its connections: one small enum over the supported sources,
//! each configured so that an operation costs exactly one round trip. The store bounds each
//! call itself: a read by its timeout, a write by its timeout plus its outcome wait (a write
//! whose reply is late or lost is waited for and sent again, see [`ConnectionSource::run_patiently`]).
//! The clients therefore get no response timeout of their own, which would cut a late reply
//! the store still waits for.

use std::time::Duration;

use std::sync::Arc;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{ErrorKind, IntoConnectionInfo, RedisError, ServerErrorKind, Value};
use tokio::time::Instant;

use crate::StoreError;

/// A source of Redis connections for [`RedisStore`](crate::RedisStore), built by one of
/// its constructors.
///
/// All sources multiplex requests over their connections. The default,
/// [`ConnectionSource::connection_manager`], was the fastest of them in the benchmarks (`docs/benchmarks-history.md`, store v2); bb8 pools
/// come with the `bb8` feature.
#[derive(Clone)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct ConnectionSource(Source);

#[derive(Clone)]
enum Source {
    /// `redis::aio::ConnectionManager`: one multiplexed connection that reconnects by itself.
    Manager(ConnectionManager),
    /// A bb8 pool over `bb8-redis`'s connection manager.
    #[cfg(feature = "bb8")]
    Bb8Redis(Pooled<bb8_redis::RedisConnectionManager>),
    /// A bb8 pool over `redis::Client` (redis's own `bb8` support).
    #[cfg(feature = "bb8")]
    Bb8Client(Pooled<redis::Client>),
    /// A Redis Cluster connection (redis's cluster client): routes each script by its key's
    /// slot and follows `MOVED` / `ASK` when slots migrate.
    Cluster(redis::cluster_async::ClusterConnection),
    /// The primary that Redis Sentinel names, found again after a failover.
    Sentinel(Arc<SentinelSource>),
}

impl std::fmt::Debug for ConnectionSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match &self.0 {
            Source::Manager(_) => "ConnectionSource::Manager",
            #[cfg(feature = "bb8")]
            Source::Bb8Redis(_) => "ConnectionSource::Bb8Redis",
            #[cfg(feature = "bb8")]
            Source::Bb8Client(_) => "ConnectionSource::Bb8Client",
            Source::Cluster(_) => "ConnectionSource::Cluster",
            Source::Sentinel(_) => "ConnectionSource::Sentinel",
        })
    }
}

impl ConnectionSource {
    /// A `ConnectionManager` for `url`. Its connection timeout is set to `timeout`; it gets
    /// no response timeout (redis's default is 500 ms whatever the store's is): the store
    /// bounds each call itself, and waits longer for a write's reply than for a read's (see
    /// [`StoreConfig::outcome_wait`](crate::StoreConfig::outcome_wait)). The first
    /// connection is made lazily, so this succeeds while Redis is still down. A reconnect
    /// is tried twice, 10 ms apart: a Redis that refuses connections answers each call
    /// within milliseconds (503), instead of after redis's default backoff (100 ms and up).
    pub fn connection_manager(
        url: impl IntoConnectionInfo,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(None)
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(timeout);
        Ok(ConnectionSource(Source::Manager(
            ConnectionManager::new_lazy_with_config(client, config)?,
        )))
    }

    /// A connection manager the app configured itself (its TLS, its retries). Give it no
    /// response timeout (`set_response_timeout(None)`), or one no shorter than the store's
    /// timeout plus its [outcome wait](crate::StoreConfig::outcome_wait): the store bounds
    /// each call itself, and a shorter response timeout cuts the late reply of a write the
    /// store still waits for (it then sends the write again, which is safe but cannot
    /// succeed while Redis stays that slow).
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        ConnectionSource(Source::Manager(manager))
    }

    /// A bb8 pool of `size` connections over `bb8-redis` (feature `bb8`). `timeout` bounds a
    /// checkout; each connection's response timeout is set to a day, as good as none: the
    /// store bounds each call itself (see [`ConnectionSource::connection_manager`]).
    #[cfg(feature = "bb8")]
    #[cfg_attr(docsrs, doc(cfg(feature = "bb8")))]
    pub fn bb8_redis(
        url: impl IntoConnectionInfo,
        size: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let manager = bb8_redis::RedisConnectionManager::new(url)?;
        Ok(ConnectionSource(Source::Bb8Redis(pool(
            manager, size, timeout,
        ))))
    }

    /// A bb8 pool of `size` connections over `redis::Client` (feature `bb8`), set up as
    /// [`ConnectionSource::bb8_redis`] is.
    #[cfg(feature = "bb8")]
    #[cfg_attr(docsrs, doc(cfg(feature = "bb8")))]
    pub fn bb8_client(
        url: impl IntoConnectionInfo,
        size: u32,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        Ok(ConnectionSource(Source::Bb8Client(pool(
            client, size, timeout,
        ))))
    }

    /// Whether this is a Redis Cluster source.
    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.0, Source::Cluster(_))
    }

    /// A Redis Cluster connection from the addresses of some of its nodes. `timeout` bounds
    /// connecting to a node; there is no response timeout (neither per node nor overall):
    /// the store bounds each call itself (see [`ConnectionSource::connection_manager`]).
    pub async fn cluster<T: IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = T>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::cluster_with(nodes, RedisAuth::default(), timeout).await
    }

    /// [`cluster`](Self::cluster) with credentials for every node: `auth`'s user and
    /// password, when set, take the place of those in the node URLs (which the cluster
    /// client otherwise takes from the first URL). A cluster has database 0 only.
    pub async fn cluster_with<T: IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = T>,
        auth: RedisAuth,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        // Without `response_timeout` the cluster client sets none, and its overall timeout
        // follows it.
        let mut builder =
            redis::cluster::ClusterClientBuilder::new(nodes).connection_timeout(timeout);
        if let Some(username) = &auth.username {
            builder = builder.username(username);
        }
        if let Some(password) = &auth.password {
            builder = builder.password(password);
        }
        let client = builder.build()?;
        Ok(ConnectionSource(Source::Cluster(
            client.get_async_connection().await?,
        )))
    }

    /// The primary of the Redis Sentinel service `service`, asked of the sentinels at
    /// `sentinels` (their addresses, not the Redis servers'). The primary is looked up at the
    /// first call and again after a call fails in a way a failover explains (the connection
    /// broke, timed out, or the server answers `READONLY` as a demoted primary does), so the
    /// store follows a failover without a restart. A write in flight when the primary fails
    /// is sent again, to whichever primary the sentinels name, while the store's
    /// [outcome wait](crate::StoreConfig::outcome_wait) lasts; other calls during the
    /// failover fail (503 through the layer). `timeout` bounds connecting; the store bounds
    /// each reply (see [`ConnectionSource::connection_manager`]).
    pub fn sentinel<T: IntoConnectionInfo>(
        sentinels: impl IntoIterator<Item = T>,
        service: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        Self::sentinel_with(sentinels, service, RedisAuth::default(), timeout)
    }

    /// [`sentinel`](Self::sentinel) for a primary that needs credentials: `auth` (user,
    /// password, database) is what the store presents to whichever primary the sentinels
    /// name, as a single-server source takes them from its URL. The sentinels' own
    /// credentials, if any, stay in their URLs (`redis://:sentinel-password@host:26379`).
    pub fn sentinel_with<T: IntoConnectionInfo>(
        sentinels: impl IntoIterator<Item = T>,
        service: &str,
        auth: RedisAuth,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let primary = redis::sentinel::SentinelNodeConnectionInfo::default()
            .set_redis_connection_info(auth.info());
        let client = redis::sentinel::SentinelClient::build(
            sentinels.into_iter().collect(),
            service.to_owned(),
            Some(primary),
            redis::sentinel::SentinelServerType::Master,
        )?;
        Ok(ConnectionSource(Source::Sentinel(Arc::new(
            SentinelSource {
                client: tokio::sync::Mutex::new(client),
                primary: std::sync::Mutex::new(None),
                config: redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(None),
            },
        ))))
    }

    /// Runs one call (a command, such as an `FCALL`, or a pipeline) within `timeout`,
    /// connection checkout included: a read, or anything sent once.
    pub(crate) async fn run(&self, call: Call<'_>, timeout: Duration) -> Result<Value, StoreError> {
        let deadline = Instant::now() + timeout;
        let deadlines = Deadlines {
            connect: deadline,
            reply: deadline,
            timeout,
            bound: timeout,
        };
        self.attempt(call, deadlines)
            .await
            .map_err(|failed| failed.error)
    }

    /// Runs a write, which must not end before its outcome is known: a call that may have
    /// run in Redis but whose reply is late is still waited for, up to `timeout + patience`
    /// (the same request: a late reply is received, not abandoned), and one whose connection
    /// failed after it was sent is sent again, identically, after a short backoff, until
    /// then. Every write of the store is idempotent when sent again with the same arguments
    /// (a rotation with the same successor answers `Rotated` again), so a client never sees
    /// a 503 for a rotation that ran, and never retries it with a new successor that the
    /// store could only count as a grace replay, or as reuse.
    ///
    /// A call known not to have run (Redis refused the connection, no pooled connection
    /// came within `timeout`, the sentinels named no primary, Redis answered `READONLY`)
    /// fails at once, as with [`run`](Self::run): a retry of it is no replay; so does a call
    /// that fails in another way (Redis answered with an error). Past the deadline:
    /// [`StoreError::Timeout`].
    pub(crate) async fn run_patiently(
        &self,
        call: Call<'_>,
        timeout: Duration,
        patience: Duration,
    ) -> Result<Value, StoreError> {
        let bound = timeout.saturating_add(patience);
        let started = Instant::now();
        let deadline = started.checked_add(bound).unwrap_or(started + FAR_OFF);
        let mut backoff = FIRST_BACKOFF;
        let mut maybe_ran = false;
        loop {
            let now = Instant::now();
            let deadlines = Deadlines {
                connect: (now + timeout).min(deadline),
                reply: deadline,
                timeout,
                bound,
            };
            let failed = match self.attempt(call, deadlines).await {
                Ok(value) => return Ok(value),
                Err(failed) => failed,
            };
            maybe_ran |= failed.maybe_ran;
            // A timeout before the deadline was the connection's (checkout, primary lookup).
            let again = resendable(&failed.error)
                || matches!(failed.error, StoreError::Timeout(_)) && Instant::now() < deadline;
            if !maybe_ran || !again || self.is_down(&failed.error) {
                return Err(failed.error);
            }
            if Instant::now() + backoff >= deadline {
                tracing::debug!(
                    error = %failed.error,
                    "a write's outcome is still unknown at its deadline"
                );
                return Err(StoreError::Timeout(bound));
            }
            tracing::debug!(
                error = %failed.error,
                "a write's outcome is unknown (its connection failed); sending it again"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Whether `err` says the one server behind this source is down: it refuses
    /// connections. Then waiting out the outcome of a write whose connection failed earlier
    /// helps nobody: a server that refuses connections answers nothing, and if the write
    /// did run before it went down (and survives its restart), the client's retry of the
    /// same token gets the same successor as a replay, inside the replay window. So the
    /// write fails now (503) rather than at the end of the outcome wait. Not on Sentinel or
    /// Cluster sources: there a refusal may be a failover in progress, which the wait rides
    /// out.
    fn is_down(&self, err: &StoreError) -> bool {
        let single = match &self.0 {
            Source::Manager(_) => true,
            #[cfg(feature = "bb8")]
            Source::Bb8Redis(_) | Source::Bb8Client(_) => true,
            Source::Cluster(_) | Source::Sentinel(_) => false,
        };
        single && matches!(err, StoreError::Redis(err) if err.is_connection_refusal())
    }

    /// Sends `call` once: finds a connection by `deadlines.connect`, waits for the reply
    /// until `deadlines.reply`.
    async fn attempt(&self, call: Call<'_>, deadlines: Deadlines) -> Result<Value, Failed> {
        match &self.0 {
            Source::Manager(manager) => bounded(deadlines, call.run(&mut manager.clone()))
                .await
                .map_err(Failed::sent),
            Source::Cluster(cluster) => {
                // The cluster client resends a call itself (after a broken connection,
                // `MOVED`, `TRYAGAIN`): whatever error it ends with, an earlier try may have
                // run.
                bounded(deadlines, call.run(&mut cluster.clone()))
                    .await
                    .map_err(|error| Failed {
                        error,
                        maybe_ran: true,
                    })
            }
            Source::Sentinel(sentinel) => {
                let result =
                    match tokio::time::timeout_at(deadlines.connect, sentinel.primary()).await {
                        Ok(Ok(mut connection)) => bounded(deadlines, call.run(&mut connection))
                            .await
                            .map_err(Failed::sent),
                        Ok(Err(err)) => Err(Failed::unsent(StoreError::Redis(err))),
                        Err(_) => Err(Failed::unsent(StoreError::Timeout(deadlines.timeout))),
                    };
                if let Err(failed) = &result
                    && after_failover(&failed.error)
                {
                    sentinel.forget_primary();
                }
                result
            }
            #[cfg(feature = "bb8")]
            Source::Bb8Redis(pool) => run_pooled(pool, call, deadlines).await,
            #[cfg(feature = "bb8")]
            Source::Bb8Client(pool) => run_pooled(pool, call, deadlines).await,
        }
    }
}

/// The first pause before a write is sent again; it doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
/// The longest pause between two sends of a write: short next to the outcome wait, so a
/// failover that ends is noticed soon.
const MAX_BACKOFF: Duration = Duration::from_millis(400);
/// A deadline far enough to be none (a `timeout + patience` too large for an `Instant`).
const FAR_OFF: Duration = Duration::from_secs(365 * 24 * 3600);
/// The response timeout of a pooled connection: none in effect (redis can only set one),
/// the store bounds each call itself.
#[cfg(feature = "bb8")]
const NO_RESPONSE_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// When one try of a call gives up.
#[derive(Clone, Copy)]
struct Deadlines {
    /// Finding a connection (pool checkout, primary lookup) ends by then.
    connect: Instant,
    /// The reply is waited for until then.
    reply: Instant,
    /// The store's timeout (reported when no connection came in time).
    timeout: Duration,
    /// The whole wait for the call (reported when the reply did not come in time).
    bound: Duration,
}

/// A failed try, and whether the call may have run in Redis all the same.
struct Failed {
    error: StoreError,
    maybe_ran: bool,
}

impl Failed {
    /// A try that found no connection: the call was not sent.
    fn unsent(error: StoreError) -> Self {
        Failed {
            error,
            maybe_ran: false,
        }
    }

    /// A try that handed the call to a connection: it may have run unless Redis answered,
    /// or the connection was never made.
    fn sent(error: StoreError) -> Self {
        let maybe_ran = match &error {
            StoreError::Redis(err) => {
                !(err.is_connection_refusal()
                    || matches!(
                        err.kind(),
                        ErrorKind::Server(_)
                            | ErrorKind::AuthenticationFailed
                            | ErrorKind::MasterNameNotFoundBySentinel
                            | ErrorKind::NoValidReplicasFoundBySentinel
                            | ErrorKind::EmptySentinelList
                    ))
            }
            StoreError::PoolTimedOut(_) => false,
            _ => true,
        };
        Failed { error, maybe_ran }
    }
}

/// Whether sending a call again may get it through: the connection failed or is being
/// replaced, or Redis is between primaries (`READONLY` from a demoted one, a sentinel or
/// cluster failover in progress, a restart still loading). Not a timeout: that is the
/// deadline.
fn resendable(err: &StoreError) -> bool {
    match err {
        StoreError::PoolTimedOut(_) => true,
        StoreError::Redis(err) => {
            err.is_io_error()
                || err.is_connection_dropped()
                || err.is_connection_refusal()
                || matches!(
                    err.kind(),
                    ErrorKind::Server(
                        ServerErrorKind::ReadOnly
                            | ServerErrorKind::MasterDown
                            | ServerErrorKind::ClusterDown
                            | ServerErrorKind::TryAgain
                            | ServerErrorKind::BusyLoading
                    ) | ErrorKind::MasterNameNotFoundBySentinel
                        | ErrorKind::NoValidReplicasFoundBySentinel
                        | ErrorKind::ClusterConnectionNotFound
                )
                // A script's failed write comes back as a script error naming READONLY.
                || err.to_string().contains("READONLY")
        }
        _ => false,
    }
}

/// The credentials and database a source presents to Redis servers it finds by itself (the
/// primary a Sentinel names): what a single-server source reads from its URL
/// (`redis://user:password@host/db`). Debug output never shows the password.
///
/// ```
/// use token_core::RedisAuth;
/// let auth = RedisAuth::from_url("redis://app:s3cret@primary.internal/2")?;
/// assert_eq!(auth, RedisAuth::default().username("app").password("s3cret").db(2));
/// # Ok::<_, token_core::StoreError>(())
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub struct RedisAuth {
    username: Option<String>,
    password: Option<String>,
    db: i64,
}

impl RedisAuth {
    /// The user name (Redis 6 ACL users; without one, `AUTH` names the default user).
    pub fn username(mut self, username: impl Into<String>) -> Self {
        self.username = Some(username.into());
        self
    }

    /// The password (`requirepass`, or the ACL user's).
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// The database number (0 by default).
    pub fn db(mut self, db: i64) -> Self {
        self.db = db;
        self
    }

    /// The user, password and database of a Redis URL; its host is not used.
    pub fn from_url(url: impl IntoConnectionInfo) -> Result<Self, StoreError> {
        let info = url.into_connection_info()?;
        let redis = info.redis_settings();
        Ok(RedisAuth {
            username: redis.username().map(str::to_owned),
            password: redis.password().map(str::to_owned),
            db: redis.db(),
        })
    }

    fn info(&self) -> redis::RedisConnectionInfo {
        let mut info = redis::RedisConnectionInfo::default().set_db(self.db);
        if let Some(username) = &self.username {
            info = info.set_username(username);
        }
        if let Some(password) = &self.password {
            info = info.set_password(password);
        }
        info
    }
}

impl std::fmt::Debug for RedisAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisAuth")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("db", &self.db)
            .finish()
    }
}

/// What to send in one round trip.
#[derive(Clone, Copy)]
pub(crate) enum Call<'a> {
    Command(&'a redis::Cmd),
    Pipeline(&'a redis::Pipeline),
}

impl Call<'_> {
    async fn run<C: ConnectionLike + Send>(&self, conn: &mut C) -> Result<Value, RedisError> {
        match self {
            Call::Command(cmd) => cmd.query_async(conn).await,
            Call::Pipeline(pipe) => pipe.query_async(conn).await,
        }
    }
}

impl ConnectionSource {
    /// The nodes a keyspace walk must visit: `None` for the one server of a standalone
    /// source, the address of every master that serves slots for a cluster.
    pub(crate) async fn scan_targets(
        &self,
        timeout: Duration,
    ) -> Result<Vec<Option<(String, u16)>>, StoreError> {
        if !self.is_cluster() {
            return Ok(vec![None]);
        }
        let nodes = self
            .run(Call::Command(redis::cmd("CLUSTER").arg("NODES")), timeout)
            .await?;
        let text: String = redis::from_redis_value(nodes)
            .map_err(|e| StoreError::Corrupt(format!("CLUSTER NODES: {e}")))?;
        Ok(text
            .lines()
            .map(|line| line.split_whitespace().collect::<Vec<_>>())
            .filter(|f| f.len() > 8 && f[2].contains("master") && !f[2].contains("fail"))
            .filter_map(|f| {
                let addr = f[1].split('@').next()?;
                let (host, port) = addr.rsplit_once(':')?;
                Some(Some((host.to_owned(), port.parse().ok()?)))
            })
            .collect())
    }

    /// Runs `cmd` on one node of a cluster (`Some` target) or on the standalone server.
    pub(crate) async fn run_on(
        &self,
        target: &Option<(String, u16)>,
        cmd: &redis::Cmd,
        timeout: Duration,
    ) -> Result<Value, StoreError> {
        match (&self.0, target) {
            (Source::Cluster(cluster), Some((host, port))) => {
                use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
                let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                    host: host.clone(),
                    port: *port,
                });
                let deadline = Instant::now() + timeout;
                let deadlines = Deadlines {
                    connect: deadline,
                    reply: deadline,
                    timeout,
                    bound: timeout,
                };
                bounded(
                    deadlines,
                    cluster.clone().route_command(cmd.clone(), routing),
                )
                .await
            }
            _ => self.run(Call::Command(cmd), timeout).await,
        }
    }
}

/// The primary Redis Sentinel names, and a multiplexed connection to it while it answers.
struct SentinelSource {
    /// Asks the sentinels; one lookup at a time.
    client: tokio::sync::Mutex<redis::sentinel::SentinelClient>,
    /// The connection to the primary found last, until a call suggests it is no longer one.
    primary: std::sync::Mutex<Option<MultiplexedConnection>>,
    config: redis::AsyncConnectionConfig,
}

impl SentinelSource {
    async fn primary(&self) -> Result<MultiplexedConnection, RedisError> {
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let mut client = self.client.lock().await;
        // Another call may have found the primary while this one waited for the lock.
        if let Some(connection) = self.cached() {
            return Ok(connection);
        }
        let connection = client
            .get_async_connection_with_config(&self.config)
            .await?;
        *self.primary.lock().unwrap_or_else(|e| e.into_inner()) = Some(connection.clone());
        Ok(connection)
    }

    fn cached(&self) -> Option<MultiplexedConnection> {
        self.primary
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn forget_primary(&self) {
        *self.primary.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// Whether a failed call may mean the primary changed: ask the sentinels again.
fn after_failover(err: &StoreError) -> bool {
    match err {
        StoreError::Timeout(_) => true,
        StoreError::Redis(err) => {
            err.is_io_error()
                || err.is_connection_dropped()
                || err.is_connection_refusal()
                || err.is_timeout()
                || err.code() == Some("READONLY")
                || err.to_string().contains("READONLY")
        }
        _ => false,
    }
}

/// Waits for `call` until the reply deadline.
async fn bounded(
    deadlines: Deadlines,
    call: impl Future<Output = Result<Value, RedisError>>,
) -> Result<Value, StoreError> {
    match tokio::time::timeout_at(deadlines.reply, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(deadlines.bound)),
    }
}

#[cfg(feature = "bb8")]
fn pool<M>(manager: M, size: u32, timeout: Duration) -> Pooled<M>
where
    M: bb8::ManageConnection<Connection = MultiplexedConnection, Error = RedisError>,
{
    let (refusals, refused) = tokio::sync::watch::channel(0);
    let pool = bb8::Pool::builder()
        .max_size(size)
        // bb8 PINGs on every checkout by default: a second round trip per operation. A dead
        // connection is caught by `has_broken` instead.
        .test_on_check_out(false)
        // bb8 waits 30 s for a connection by default.
        .connection_timeout(timeout)
        .retry_connection(false)
        .build_unchecked(Checked {
            manager,
            refused: Arc::new(refusals),
        });
    Pooled { pool, refused }
}

#[cfg(feature = "bb8")]
async fn run_pooled<M>(
    pooled: &Pooled<M>,
    call: Call<'_>,
    deadlines: Deadlines,
) -> Result<Value, Failed>
where
    M: bb8::ManageConnection<Connection = MultiplexedConnection, Error = RedisError>,
{
    // A checkout waits for a free or a new connection; a connect Redis refuses meanwhile
    // ends the wait at once, with that refusal (Redis is down: nothing to wait for).
    let mut refused = pooled.refused.clone();
    refused.mark_unchanged();
    let checkout = async {
        tokio::select! {
            got = pooled.pool.get() => Some(got),
            Ok(()) = refused.changed() => None,
        }
    };
    let mut conn = match tokio::time::timeout_at(deadlines.connect, checkout).await {
        Ok(Some(Ok(conn))) => conn,
        Ok(Some(Err(bb8::RunError::User(err)))) => {
            return Err(Failed::unsent(StoreError::Redis(err)));
        }
        Ok(None) => {
            let refusal = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
            return Err(Failed::unsent(StoreError::Redis(refusal.into())));
        }
        Ok(Some(Err(bb8::RunError::TimedOut))) | Err(_) => {
            return Err(Failed::unsent(StoreError::PoolTimedOut(deadlines.timeout)));
        }
    };
    let checked = &mut *conn;
    match tokio::time::timeout_at(deadlines.reply, call.run(&mut checked.conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            checked.broken |= err.is_unrecoverable_error() || err.is_io_error();
            Err(Failed::sent(StoreError::Redis(err)))
        }
        Err(_) => {
            // The late reply would still arrive on this connection; start afresh instead.
            checked.broken = true;
            Err(Failed::sent(StoreError::Timeout(deadlines.bound)))
        }
    }
}

/// A bb8 pool, and word of its connections being refused.
#[cfg(feature = "bb8")]
struct Pooled<M>
where
    Checked<M>: bb8::ManageConnection,
{
    pool: bb8::Pool<Checked<M>>,
    /// Changes each time Redis refuses one of the pool's connects. bb8's `get` never
    /// returns a connect's error: it waits out its whole timeout instead, which would hold
    /// every call to a dead Redis that long.
    refused: tokio::sync::watch::Receiver<u64>,
}

#[cfg(feature = "bb8")]
impl<M> Clone for Pooled<M>
where
    Checked<M>: bb8::ManageConnection,
{
    fn clone(&self) -> Self {
        Pooled {
            pool: self.pool.clone(),
            refused: self.refused.clone(),
        }
    }
}

/// Wraps a bb8 connection manager so a connection that failed at the I/O level, or timed
/// out, is dropped instead of being handed out again (bb8-redis and redis's `bb8` support
/// never report a connection as broken, so after a Redis restart a pool would return
/// "broken pipe" forever), and so a new connection does not cut replies after redis's
/// default 500 ms.
#[cfg(feature = "bb8")]
#[derive(Debug, Clone)]
struct Checked<M> {
    manager: M,
    /// Counts the connects Redis refused (see [`Pooled::refused`]).
    refused: Arc<tokio::sync::watch::Sender<u64>>,
}

/// A pooled connection with a flag set when it must not be reused.
#[cfg(feature = "bb8")]
#[derive(Debug)]
struct CheckedConnection<C> {
    conn: C,
    broken: bool,
}

#[cfg(feature = "bb8")]
impl<M> bb8::ManageConnection for Checked<M>
where
    M: bb8::ManageConnection<Connection = MultiplexedConnection, Error = RedisError>,
{
    type Connection = CheckedConnection<M::Connection>;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        let mut conn = self.manager.connect().await.inspect_err(|err| {
            if err.is_connection_refusal() {
                self.refused
                    .send_modify(|count| *count = count.wrapping_add(1));
            }
        })?;
        conn.set_response_timeout(NO_RESPONSE_TIMEOUT);
        Ok(CheckedConnection {
            conn,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.manager.is_valid(&mut conn.conn).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken
    }
}
