//! The workspace's test support: throwaway `redis-server` processes (one server, a
//! cluster, a primary with replicas and sentinels) and, in [`minter`], an app's own JWT
//! minting for in-process test apps and benchmarks, and in [`dpop`] a DPoP client that signs
//! proofs.
//!
//! Each [`RedisServer`] runs on its own free loopback port, without persistence, in its own
//! temporary directory, and is killed when dropped. Tests never touch a server they did not
//! start. When `redis-server` is missing the harness panics with an install hint rather
//! than letting a test pass silently.

pub mod dpop;
pub mod minter;
pub mod proxy;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A `redis-server` child process on a loopback port.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    dir: PathBuf,
    extra_args: Vec<String>,
    /// A configuration file to start from: a sentinel needs one it can rewrite.
    config: Option<PathBuf>,
    /// The `requirepass` password, when the server has one.
    password: Option<String>,
    child: Option<Child>,
}

const INSTALL_HINT: &str = "redis-server was not found on PATH. Install it: \
     `sudo apt-get install -y redis-server` (Debian/Ubuntu) or `brew install redis` (macOS)";

/// A free TCP port on 127.0.0.1 (the OS picks it; the socket is closed before returning).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

/// A loopback port where nothing listens, for tests of an unreachable server: port 1
/// (tcpmux), privileged and unused in practice. Test servers only ever take ephemeral ports
/// ([`free_port`]), so no test running beside this one can start listening there, as it
/// could on a port that was merely free a moment ago.
pub fn closed_port() -> u16 {
    const PORT: u16 = 1;
    assert!(
        TcpStream::connect(("127.0.0.1", PORT)).is_err(),
        "something listens on 127.0.0.1:{PORT}; the unreachable-server tests need it closed"
    );
    PORT
}

impl RedisServer {
    /// Starts a server on a free port and waits until it answers `PING`.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a server with extra `redis-server` arguments (for example
    /// `["--cluster-enabled", "yes"]`).
    pub fn start_with(extra_args: &[&str]) -> Self {
        Self::start_on(free_port, extra_args)
    }

    fn start_on(pick_port: fn() -> u16, extra_args: &[&str]) -> Self {
        Self::start_from(pick_port, None, extra_args)
    }

    /// Starts a server that requires `password` (`requirepass`), with extra arguments. Its
    /// [`url`](Self::url) carries the password, and [`command`](Self::command) sends `AUTH`.
    pub fn start_with_password(password: &str, extra_args: &[&str]) -> Self {
        let mut args = vec!["--requirepass", password];
        args.extend_from_slice(extra_args);
        Self::start_from_with(free_port, None, &args, Some(password))
    }

    /// Starts a server whose configuration file holds `config` (when given) before the
    /// command-line arguments.
    fn start_from(pick_port: fn() -> u16, config: Option<&str>, extra_args: &[&str]) -> Self {
        Self::start_from_with(pick_port, config, extra_args, None)
    }

    fn start_from_with(
        pick_port: fn() -> u16,
        config: Option<&str>,
        extra_args: &[&str],
        password: Option<&str>,
    ) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "test-support-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default()
        ));
        std::fs::create_dir_all(&dir).expect("create a temporary directory for redis-server");
        let config = config.map(|text| {
            let path = dir.join("redis.conf");
            std::fs::write(&path, text).expect("write a redis configuration file");
            path
        });
        let mut server = RedisServer {
            port: 0,
            dir,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
            config,
            password: password.map(str::to_owned),
            child: None,
        };
        // The port is free when picked but may be taken before redis binds it: try again.
        for _ in 0..5 {
            server.port = pick_port();
            if server.spawn() {
                return server;
            }
        }
        panic!("redis-server did not start on a free loopback port after 5 attempts");
    }

    fn spawn(&mut self) -> bool {
        let mut cmd = Command::new("redis-server");
        if let Some(config) = &self.config {
            cmd.arg(config);
        }
        cmd.args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--loglevel", "warning"])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("could not start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                let _ = status;
                self.child = None;
                return false;
            }
            if self.command(&["PING"]).is_ok_and(|r| r == "+PONG") {
                // Two tests can pick the same free port: the second server then fails to
                // bind, but its PING may reach the first one before it exits. A test must
                // only ever talk to its own server.
                if self.answering_pid() == self.child.as_ref().map(Child::id) {
                    return true;
                }
                self.kill();
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.kill();
        false
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>/`, with `:<password>@` when the server requires one.
    pub fn url(&self) -> String {
        match &self.password {
            Some(password) => {
                // Percent-encoded: a password may hold `:`, `@` or `/`.
                let encoded: String = password
                    .bytes()
                    .map(|b| match b {
                        b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                            (b as char).to_string()
                        }
                        _ => format!("%{b:02X}"),
                    })
                    .collect();
                format!("redis://:{encoded}@127.0.0.1:{}/", self.port)
            }
            None => format!("redis://127.0.0.1:{}/", self.port),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Kills the server at once (SIGKILL): an outage as clients see it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port, empty (no persistence).
    pub fn restart(&mut self) {
        self.kill();
        for _ in 0..50 {
            if self.spawn() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("redis-server did not restart on port {}", self.port);
    }

    /// The process id of the server answering on this port (`INFO server`).
    fn answering_pid(&self) -> Option<u32> {
        let info = self.command(&["INFO", "server"]).ok()?;
        info.lines()
            .find_map(|line| line.strip_prefix("process_id:"))
            .and_then(|pid| pid.trim().parse().ok())
    }

    /// True while the process runs.
    pub fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Sends one command over a fresh connection and returns the reply as RESP text
    /// (`+PONG`, `:3`, `$5\r\nhello`, `*2...`), for assertions in tests.
    pub fn command(&self, args: &[&str]) -> std::io::Result<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port))?;
        stream.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut reader = BufReader::new(stream.try_clone()?);
        if let Some(password) = &self.password {
            stream.write_all(&request(&["AUTH", password]))?;
            read_reply(&mut reader)?;
        }
        stream.write_all(&request(args))?;
        read_reply(&mut reader)
    }
}

/// One command in RESP.
fn request(args: &[&str]) -> Vec<u8> {
    let mut req = format!("*{}\r\n", args.len());
    for a in args {
        req.push_str(&format!("${}\r\n{}\r\n", a.len(), a));
    }
    req.into_bytes()
}

fn read_reply(reader: &mut impl BufRead) -> std::io::Result<String> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let line = line.trim_end().to_owned();
    match line.as_bytes().first() {
        Some(b'$') => {
            let len: i64 = line[1..].parse().unwrap_or(-1);
            if len < 0 {
                return Ok("$-1".into());
            }
            let mut buf = vec![0; len as usize + 2];
            reader.read_exact(&mut buf)?;
            buf.truncate(len as usize);
            Ok(format!("${}", String::from_utf8_lossy(&buf)))
        }
        Some(b'*') => {
            let n: i64 = line[1..].parse().unwrap_or(0);
            let mut out = line.clone();
            for _ in 0..n.max(0) {
                out.push('\n');
                out.push_str(&read_reply(reader)?);
            }
            Ok(out)
        }
        _ => Ok(line),
    }
}

/// A free port `p` whose cluster bus port `p + 10000` is free too.
fn free_cluster_port() -> u16 {
    loop {
        let port = free_port();
        if port < 55_000 && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok() {
            return port;
        }
    }
}

/// A local Redis Cluster of three masters (no replicas) on loopback ports, created with
/// `redis-cli --cluster create`; every node is killed when dropped.
#[derive(Debug)]
pub struct RedisCluster {
    /// The masters.
    pub nodes: Vec<RedisServer>,
}

impl RedisCluster {
    /// Starts three cluster-enabled servers, joins them and waits for `cluster_state:ok`.
    pub fn start() -> Self {
        Self::create(3, 0, None)
    }

    /// Six nodes: three masters, each with one replica that takes over when its master
    /// dies (after `cluster-node-timeout`, 2 s, and an election).
    pub fn start_with_replicas() -> Self {
        Self::create(6, 1, None)
    }

    /// Three masters that require `password` (and use it with each other); their
    /// [`urls`](Self::urls) carry it.
    pub fn start_secured(password: &str) -> Self {
        Self::create(3, 0, Some(password))
    }

    fn create(nodes: usize, replicas: usize, password: Option<&str>) -> Self {
        let args = ["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"];
        let nodes: Vec<RedisServer> = (0..nodes)
            .map(|_| match password {
                Some(password) => {
                    let mut args = args.to_vec();
                    args.extend(["--masterauth", password]);
                    RedisServer::start_from_with(
                        free_cluster_port,
                        None,
                        &[&["--requirepass", password][..], &args].concat(),
                        Some(password),
                    )
                }
                None => RedisServer::start_on(free_cluster_port, &args),
            })
            .collect();
        let mut create = Command::new("redis-cli");
        if let Some(password) = password {
            // Through the environment, so it stays off the command line.
            create.env("REDISCLI_AUTH", password);
        }
        create.args(["--cluster", "create"]);
        for node in &nodes {
            create.arg(node.addr());
        }
        create.args(["--cluster-replicas", &replicas.to_string(), "--cluster-yes"]);
        let output = match create.output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "redis-cli was not found on PATH. Install it: \
                 `sudo apt-get install -y redis-tools` (Debian/Ubuntu) or `brew install redis`"
            ),
            Err(e) => panic!("could not run redis-cli: {e}"),
        };
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&output.stdout)
        );
        let cluster = RedisCluster { nodes };
        cluster.wait_until_ok();
        // A replica takes over only once it has synced with its master.
        let deadline = Instant::now() + Duration::from_secs(20);
        let synced = |n: &RedisServer| {
            n.command(&["INFO", "replication"]).is_ok_and(|info| {
                info.contains("role:master") || info.contains("master_link_status:up")
            })
        };
        while !cluster.nodes.iter().all(synced) {
            assert!(
                Instant::now() < deadline,
                "the cluster's replicas did not sync"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        cluster
    }

    /// Waits until every node reports `cluster_state:ok`.
    pub fn wait_until_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ok = self.nodes.iter().all(|n| {
                n.command(&["CLUSTER", "INFO"])
                    .is_ok_and(|info| info.contains("cluster_state:ok"))
            });
            if ok {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the cluster did not reach cluster_state:ok");
    }

    /// `redis://127.0.0.1:<port>/` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The node id of a node (`CLUSTER MYID`).
    pub fn node_id(&self, index: usize) -> String {
        let reply = self.nodes[index].command(&["CLUSTER", "MYID"]).unwrap();
        reply.trim_start_matches('$').to_owned()
    }

    /// The index of the node that owns `slot`, from `CLUSTER NODES`.
    pub fn owner_of(&self, slot: u16) -> usize {
        let reply = self.nodes[0].command(&["CLUSTER", "NODES"]).unwrap();
        for line in reply.trim_start_matches('$').lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let owns = fields.iter().skip(8).any(|range| {
                let mut bounds = range.split('-').map(|b| b.parse::<u16>().ok());
                match (bounds.next().flatten(), bounds.next().flatten()) {
                    (Some(start), Some(end)) => (start..=end).contains(&slot),
                    (Some(only), None) => only == slot,
                    _ => false,
                }
            });
            if owns {
                let port: u16 = fields[1].split(['@', ':']).nth(1).unwrap().parse().unwrap();
                return self.nodes.iter().position(|n| n.port() == port).unwrap();
            }
        }
        panic!("no owner for slot {slot}");
    }

    /// The hash slot of `key` (`CLUSTER KEYSLOT`).
    pub fn slot_of(&self, key: &str) -> u16 {
        let reply = self.nodes[0].command(&["CLUSTER", "KEYSLOT", key]).unwrap();
        reply.trim_start_matches(':').parse().unwrap()
    }

    /// Moves `slot` with its keys from node `from` to node `to`, the way `redis-cli
    /// --cluster reshard` does: IMPORTING / MIGRATING, `MIGRATE` of every key, then
    /// `SETSLOT NODE` on every node.
    pub fn move_slot(&self, slot: u16, from: usize, to: usize) {
        let slot_s = slot.to_string();
        let (from_id, to_id) = (self.node_id(from), self.node_id(to));
        let ok = |r: std::io::Result<String>| {
            let r = r.unwrap();
            assert!(r.starts_with('+') || r.starts_with(':'), "{r}");
        };
        ok(self.nodes[to].command(&["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &from_id]));
        ok(self.nodes[from].command(&["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &to_id]));
        loop {
            let keys = self.nodes[from]
                .command(&["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"])
                .unwrap();
            let keys: Vec<String> = keys
                .lines()
                .skip(1)
                .map(|k| k.trim_start_matches('$').to_owned())
                .collect();
            if keys.is_empty() {
                break;
            }
            let port = self.nodes[to].port().to_string();
            for key in &keys {
                ok(self.nodes[from].command(&["MIGRATE", "127.0.0.1", &port, key, "0", "5000"]));
            }
        }
        for node in &self.nodes {
            ok(node.command(&["CLUSTER", "SETSLOT", &slot_s, "NODE", &to_id]));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A primary with replicas, watched by three sentinels (quorum 2) that fail over about two
/// seconds after the primary stops answering (`down-after-milliseconds` 1000,
/// `failover-timeout` 3000); every process is killed when dropped.
#[derive(Debug)]
pub struct RedisSentinels {
    /// The primary it started with (a failover makes a replica primary).
    pub primary: RedisServer,
    /// Its replicas.
    pub replicas: Vec<RedisServer>,
    /// The sentinels.
    pub sentinels: Vec<RedisServer>,
}

impl RedisSentinels {
    /// The service (master) name the sentinels know the primary by.
    pub const SERVICE: &'static str = "token-rotation";

    /// Starts the primary, `replicas` replicas (waiting until they are in sync) and three
    /// sentinels (waiting until each knows every replica).
    pub fn start(replicas: usize) -> Self {
        Self::start_secured(replicas, None)
    }

    /// [`start`](Self::start), with every Redis server (not the sentinels) requiring
    /// `password` when given: the replicas and sentinels are told it (`masterauth`,
    /// `sentinel auth-pass`), clients must bring it.
    pub fn start_secured(replicas: usize, password: Option<&str>) -> Self {
        let server = |args: &[&str]| match password {
            Some(password) => {
                let mut args = args.to_vec();
                args.extend(["--masterauth", password]);
                RedisServer::start_with_password(password, &args)
            }
            None => RedisServer::start_with(args),
        };
        let primary = server(&[]);
        let port = primary.port().to_string();
        let replicas = (0..replicas)
            .map(|_| server(&["--replicaof", "127.0.0.1", &port]))
            .collect();
        let auth = password.map_or(String::new(), |password| {
            format!("sentinel auth-pass {} {password}\n", Self::SERVICE)
        });
        let config = format!(
            "sentinel monitor {service} 127.0.0.1 {port} 2\n\
             {auth}\
             sentinel down-after-milliseconds {service} 1000\n\
             sentinel failover-timeout {service} 3000\n\
             sentinel parallel-syncs {service} 1\n",
            service = Self::SERVICE,
        );
        let sentinels = (0..3)
            .map(|_| RedisServer::start_from(free_port, Some(&config), &["--sentinel"]))
            .collect();
        let group = RedisSentinels {
            primary,
            replicas,
            sentinels,
        };
        group.wait(
            Duration::from_secs(20),
            "the replicas to sync and the sentinels to see them",
            |g| {
                g.replicas.iter().all(|r| {
                    r.command(&["INFO", "replication"])
                        .is_ok_and(|info| info.contains("master_link_status:up"))
                        && g.sentinels.iter().all(|s| {
                            s.command(&["SENTINEL", "REPLICAS", Self::SERVICE])
                                .is_ok_and(|reply| reply.contains(&r.port().to_string()))
                        })
                })
            },
        );
        group
    }

    /// `redis://127.0.0.1:<port>/` of every sentinel.
    pub fn sentinel_urls(&self) -> Vec<String> {
        self.sentinels.iter().map(RedisServer::url).collect()
    }

    /// The port of the primary the sentinels name now.
    pub fn primary_port(&self) -> Option<u16> {
        let reply = self.sentinels[0]
            .command(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", Self::SERVICE])
            .ok()?;
        reply.lines().last()?.trim_start_matches('$').parse().ok()
    }

    /// Waits until `done` holds, panicking with `what` after `within`.
    pub fn wait(&self, within: Duration, what: &str, done: impl Fn(&Self) -> bool) {
        let deadline = Instant::now() + within;
        while !done(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
