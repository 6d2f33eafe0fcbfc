//! Where the Redis store gets its connections: one small enum over the supported sources,
//! each configured so that an operation costs exactly one round trip and never waits past
//! the store's timeout.

use std::time::Duration;

use std::sync::Arc;

use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::{IntoConnectionInfo, RedisError, Value};

use crate::StoreError;

/// A source of Redis connections for [`RedisStore`](crate::RedisStore), built by one of
/// its constructors.
///
/// All sources multiplex requests over their connections. The default,
/// [`ConnectionSource::connection_manager`], was the fastest in `BENCHMARKS.md`; bb8 pools
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
    Bb8Redis(bb8::Pool<Checked<bb8_redis::RedisConnectionManager>>),
    /// A bb8 pool over `redis::Client` (redis's own `bb8` support).
    #[cfg(feature = "bb8")]
    Bb8Client(bb8::Pool<Checked<redis::Client>>),
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
    /// A `ConnectionManager` for `url`. Its own response and connection timeouts are set to
    /// `timeout` (redis's default response timeout is 500 ms whatever the store's is). The
    /// first connection is made lazily, so this succeeds while Redis is still down.
    pub fn connection_manager(
        url: impl IntoConnectionInfo,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(timeout);
        Ok(ConnectionSource(Source::Manager(
            ConnectionManager::new_lazy_with_config(client, config)?,
        )))
    }

    /// A connection manager the app configured itself (its TLS, its retries). Keep its
    /// response timeout at or below the store's timeout.
    pub fn from_connection_manager(manager: ConnectionManager) -> Self {
        ConnectionSource(Source::Manager(manager))
    }

    /// A bb8 pool of `size` connections over `bb8-redis` (feature `bb8`).
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

    /// A bb8 pool of `size` connections over `redis::Client` (feature `bb8`).
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

    /// A Redis Cluster connection from the addresses of some of its nodes.
    pub async fn cluster<T: IntoConnectionInfo>(
        nodes: impl IntoIterator<Item = T>,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::cluster::ClusterClientBuilder::new(nodes)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()?;
        Ok(ConnectionSource(Source::Cluster(
            client.get_async_connection().await?,
        )))
    }

    /// The primary of the Redis Sentinel service `service`, asked of the sentinels at
    /// `sentinels` (their addresses, not the Redis servers'). The primary is looked up at the
    /// first call and again after a call fails in a way a failover explains (the connection
    /// broke, timed out, or the server answers `READONLY` as a demoted primary does), so the
    /// store follows a failover without a restart. Calls in flight during the failover fail
    /// (503 through the layer). `timeout` bounds connecting and each reply.
    pub fn sentinel<T: IntoConnectionInfo>(
        sentinels: impl IntoIterator<Item = T>,
        service: &str,
        timeout: Duration,
    ) -> Result<Self, StoreError> {
        let client = redis::sentinel::SentinelClient::build(
            sentinels.into_iter().collect(),
            service.to_owned(),
            None,
            redis::sentinel::SentinelServerType::Master,
        )?;
        Ok(ConnectionSource(Source::Sentinel(Arc::new(
            SentinelSource {
                client: tokio::sync::Mutex::new(client),
                primary: std::sync::Mutex::new(None),
                config: redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout)),
            },
        ))))
    }

    /// Runs one call (a command, such as an `FCALL`, or a pipeline) within `timeout`,
    /// connection checkout included.
    pub(crate) async fn run(&self, call: Call<'_>, timeout: Duration) -> Result<Value, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        match &self.0 {
            Source::Manager(manager) => {
                bounded(deadline, timeout, call.run(&mut manager.clone())).await
            }
            Source::Cluster(cluster) => {
                bounded(deadline, timeout, call.run(&mut cluster.clone())).await
            }
            Source::Sentinel(sentinel) => {
                let result = bounded(deadline, timeout, sentinel.run(call)).await;
                if let Err(err) = &result
                    && after_failover(err)
                {
                    sentinel.forget_primary();
                }
                result
            }
            #[cfg(feature = "bb8")]
            Source::Bb8Redis(pool) => run_pooled(pool, call, deadline, timeout).await,
            #[cfg(feature = "bb8")]
            Source::Bb8Client(pool) => run_pooled(pool, call, deadline, timeout).await,
        }
    }
}

/// What to send in one round trip.
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
                let deadline = tokio::time::Instant::now() + timeout;
                bounded(
                    deadline,
                    timeout,
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
    async fn run(&self, call: Call<'_>) -> Result<Value, RedisError> {
        let mut connection = self.primary().await?;
        call.run(&mut connection).await
    }

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

async fn bounded(
    deadline: tokio::time::Instant,
    timeout: Duration,
    call: impl Future<Output = Result<Value, RedisError>>,
) -> Result<Value, StoreError> {
    match tokio::time::timeout_at(deadline, call).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(StoreError::Timeout(timeout)),
    }
}

#[cfg(feature = "bb8")]
fn pool<M>(manager: M, size: u32, timeout: Duration) -> bb8::Pool<Checked<M>>
where
    M: bb8::ManageConnection<Error = RedisError>,
{
    bb8::Pool::builder()
        .max_size(size)
        // bb8 PINGs on every checkout by default: a second round trip per operation. A dead
        // connection is caught by `has_broken` instead.
        .test_on_check_out(false)
        // bb8 waits 30 s for a connection by default.
        .connection_timeout(timeout)
        .retry_connection(false)
        .build_unchecked(Checked(manager))
}

#[cfg(feature = "bb8")]
async fn run_pooled<M>(
    pool: &bb8::Pool<Checked<M>>,
    call: Call<'_>,
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> Result<Value, StoreError>
where
    M: bb8::ManageConnection<Error = RedisError>,
    M::Connection: ConnectionLike + Send,
{
    let mut conn = match tokio::time::timeout_at(deadline, pool.get()).await {
        Ok(Ok(conn)) => conn,
        Ok(Err(bb8::RunError::User(err))) => return Err(StoreError::Redis(err)),
        Ok(Err(bb8::RunError::TimedOut)) | Err(_) => return Err(StoreError::PoolTimedOut(timeout)),
    };
    let checked = &mut *conn;
    match tokio::time::timeout_at(deadline, call.run(&mut checked.conn)).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => {
            checked.broken |= err.is_unrecoverable_error() || err.is_io_error();
            Err(StoreError::Redis(err))
        }
        Err(_) => {
            // The late reply would still arrive on this connection; start afresh instead.
            checked.broken = true;
            Err(StoreError::Timeout(timeout))
        }
    }
}

/// Wraps a bb8 connection manager so a connection that failed at the I/O level, or timed
/// out, is dropped instead of being handed out again (bb8-redis and redis's `bb8` support
/// never report a connection as broken, so after a Redis restart a pool would return
/// "broken pipe" forever).
#[cfg(feature = "bb8")]
#[derive(Debug, Clone)]
struct Checked<M>(M);

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
    M: bb8::ManageConnection<Error = RedisError>,
{
    type Connection = CheckedConnection<M::Connection>;
    type Error = RedisError;

    async fn connect(&self) -> Result<Self::Connection, Self::Error> {
        Ok(CheckedConnection {
            conn: self.0.connect().await?,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Self::Connection) -> Result<(), Self::Error> {
        self.0.is_valid(&mut conn.conn).await
    }

    fn has_broken(&self, conn: &mut Self::Connection) -> bool {
        conn.broken
    }
}
