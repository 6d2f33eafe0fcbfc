//! `token-admin`: the operator's view of the refresh-token rotation store in Redis.
//!
//! List a user's sessions (all, or one OAuth client's), revoke one, one client's or all of
//! them, prune ended sessions, and report how
//! many sessions and keys the store holds and what memory they take. Every command works on
//! a live Redis without blocking it: records are found with `SCAN`, never `KEYS`, and each
//! change is the store's own atomic script.
//!
//! The Redis to use comes from the `REDIS_URL` environment variable (or `--redis-url`, which
//! other users can read in `ps`, so the tool warns when that one carries a password). No
//! message shows a password: URLs are printed with everything before the host masked (`redis://***@host`),
//! and `--help` never prints the variable's value.
//!
//! Every change (`revoke`, `revoke-all`, `cleanup`) writes one INFO line to stderr under the
//! target `token_rotation::audit`, as the layer does for the requests it decides: what was
//! done, to whom, by which operator (`SUDO_USER`, else `USER`), on which Redis (redacted).
//! `RUST_LOG` filters it like any tracing output (`RUST_LOG=off` silences it).
//!
//! Exit codes: 0 success, 1 any other failure, 2 usage error or invalid Redis URL,
//! 3 unknown user, 4 session not found, 5 Redis unreachable.

mod failure;
mod stats;
mod table;

use std::process::ExitCode;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use redis::aio::MultiplexedConnection;
use serde_json::json;
use token_core::{FamilyId, RedisStore, RotationStore, SessionInfo, StoreConfig, admin};

use crate::failure::Failure;
use crate::table::{Table, time};

/// Inspect and revoke refresh-token sessions kept by token-rotation in Redis.
#[derive(Debug, Parser)]
#[command(name = "token-admin", version, about, long_about = None)]
#[command(
    after_help = "Exit codes: 0 ok, 1 other failure, 2 usage error or invalid Redis URL, \
                        3 unknown user, 4 session not found, 5 Redis unreachable."
)]
struct Cli {
    /// Redis to use, e.g. redis://127.0.0.1:6379/0 (rediss:// for TLS). Prefer setting
    /// REDIS_URL: unlike an argument, it is not visible to other users in `ps`.
    #[arg(
        long,
        env = "REDIS_URL",
        hide_env_values = true,
        value_name = "URL",
        global = true
    )]
    redis_url: Option<String>,

    /// Key prefix the app's store was configured with.
    #[arg(long, default_value = "rt:", value_name = "PREFIX", global = true)]
    prefix: String,

    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,

    /// Bound on connecting and on each Redis call, in milliseconds.
    #[arg(long, default_value_t = 5000, value_name = "MS", global = true)]
    timeout_ms: u64,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List a user's live sessions (devices).
    List {
        /// The user id (the token's `sub`).
        user: String,
        /// Only the sessions issued to this OAuth client (its client id).
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
    },
    /// Revoke one session of a user, or every session of one OAuth client (its refresh
    /// tokens stop working at once).
    Revoke {
        /// The user id.
        user: String,
        /// The session (family) id, as `list` shows it.
        #[arg(required_unless_present = "client", conflicts_with = "client")]
        session: Option<String>,
        /// Instead of one session, every live session of the user issued to this OAuth
        /// client (consent withdrawn, a compromised client).
        #[arg(long, value_name = "CLIENT_ID")]
        client: Option<String>,
    },
    /// Revoke every session of a user (log out everywhere).
    RevokeAll {
        /// The user id.
        user: String,
    },
    /// Remove ended sessions from every record now. Optional: TTLs and pruning on write
    /// already bound what Redis holds.
    Cleanup {
        /// Never draw a progress bar (it is drawn only on a terminal anyway).
        #[arg(long)]
        no_progress: bool,
    },
    /// Count users, sessions and keys under the prefix and estimate their memory.
    Stats {
        /// How many keys to measure with `MEMORY USAGE` (the rest is extrapolated).
        #[arg(long, default_value_t = 1000, value_name = "COUNT")]
        sample: u64,
    },
}

fn main() -> ExitCode {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|matches| Ok((Cli::from_arg_matches(&matches)?, matches)));
    let cli = match parsed {
        Ok((cli, matches)) => {
            if matches.value_source("redis_url") == Some(ValueSource::CommandLine) {
                warn_about_password_in_arguments(cli.redis_url.as_deref());
            }
            cli
        }
        Err(error) => {
            // clap prints help and version itself, with exit code 0; usage errors get 2.
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(failure::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    init_audit_log();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => return Failure::Other(format!("cannot start the runtime: {e}")).report(),
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => failure.report(),
    }
}

/// Audit lines (and any warning of the libraries) on stderr, so stdout stays the command's
/// output, table or JSON.
fn init_audit_log() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,token_rotation::audit=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal: a log file or a pipe gets plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// Who ran the tool: the user behind `sudo` when there is one, else the login user.
fn operator() -> Option<String> {
    ["SUDO_USER", "USER", "LOGNAME"]
        .into_iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.is_empty()))
}

/// What a change made with this tool touched: a user, one of its sessions or the sessions
/// of one OAuth client, for the audit line.
#[derive(Clone, Copy, Default)]
struct Scope<'a> {
    user: Option<&'a str>,
    session: Option<&'a str>,
    client: Option<&'a str>,
}

/// The one audit line of a change made with this tool. Ids and counts only, never a token.
fn audit(
    target: &Target,
    action: &str,
    scope: Scope<'_>,
    revoked: Option<u64>,
    pruned: Option<u64>,
) {
    tracing::info!(
        target: "token_rotation::audit",
        action,
        user = scope.user,
        family = scope.session,
        client = scope.client,
        revoked,
        pruned,
        operator = operator(),
        redis = %target.url,
        "token-admin change"
    );
}

/// Arguments are visible to every user of the machine (`ps`, `/proc/<pid>/cmdline`): say so
/// when one carries a password (without repeating it).
fn warn_about_password_in_arguments(url: Option<&str>) {
    // Whatever the redaction would mask is a secret: the same reading of the text, so a
    // password holding `/` or `#` counts too.
    let has_password = url.is_some_and(|url| admin::redact_url(url) != url);
    if has_password {
        eprintln!(
            "warning: the password in --redis-url is visible to other users of this machine \
             (ps); set REDIS_URL in the environment instead"
        );
    }
}

/// A connection for plain commands (`SCAN`, `EXISTS`, `MEMORY USAGE`) and the store for
/// everything that changes a record.
struct Target {
    url: String,
    prefix: String,
    conn: MultiplexedConnection,
    store: RedisStore,
}

async fn connect(cli: &Cli) -> Result<Target, Failure> {
    let Some(url) = cli.redis_url.clone() else {
        return Err(Failure::Usage(
            "no Redis to talk to: set REDIS_URL or pass --redis-url redis://HOST:PORT".into(),
        ));
    };
    let shown = admin::redact_url(&url);
    let timeout = Duration::from_millis(cli.timeout_ms.max(1));
    let client = redis::Client::open(url.as_str())
        .map_err(|e| Failure::Usage(format!("invalid Redis URL {shown}: {e}")))?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(Some(timeout));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| Failure::unreachable(&shown, &e))?;
    let _: String = redis::cmd("PING")
        .query_async(&mut conn)
        .await
        .map_err(|e| Failure::unreachable(&shown, &e))?;
    let store = RedisStore::open(
        &url,
        StoreConfig::default()
            .key_prefix(cli.prefix.clone())
            .timeout(timeout),
    )
    .map_err(|e| Failure::Usage(format!("invalid Redis URL {shown}: {e}")))?;
    Ok(Target {
        url: shown,
        prefix: cli.prefix.clone(),
        conn,
        store,
    })
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let mut target = connect(&cli).await?;
    match &cli.command {
        Command::List { user, client } => {
            list(&mut target, user, client.as_deref(), cli.json).await
        }
        Command::Revoke {
            user,
            session: Some(session),
            ..
        } => revoke(&mut target, user, session, cli.json).await,
        Command::Revoke {
            user,
            client: Some(client),
            ..
        } => revoke_client(&mut target, user, client, cli.json).await,
        Command::Revoke { .. } => Err(Failure::Usage(
            "revoke needs a session id or --client".into(),
        )),
        Command::RevokeAll { user } => revoke_all(&mut target, user, cli.json).await,
        Command::Cleanup { no_progress } => cleanup(&mut target, *no_progress, cli.json).await,
        Command::Stats { sample } => {
            let report = stats::collect(&mut target.conn, &target.prefix, *sample)
                .await
                .map_err(|e| Failure::from_redis(&target.url, &e))?;
            report.print(cli.json);
            Ok(())
        }
    }
}

/// Fails with exit code 3 when the user has no session index at all: a typo in a user id should
/// not read as "no sessions".
async fn require_user(target: &mut Target, user: &str) -> Result<(), Failure> {
    let key = admin::index_key(&target.prefix, user);
    let exists: bool = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut target.conn)
        .await
        .map_err(|e| Failure::from_redis(&target.url, &e))?;
    if exists {
        Ok(())
    } else {
        Err(Failure::UnknownUser(format!(
            "unknown user {user:?}: no sessions are recorded for it under prefix {:?}",
            target.prefix
        )))
    }
}

async fn list(
    target: &mut Target,
    user: &str,
    client: Option<&str>,
    json: bool,
) -> Result<(), Failure> {
    require_user(target, user).await?;
    let sessions = match client {
        Some(client) => target.store.list_client(user, client).await,
        None => target.store.list(user).await,
    }
    .map_err(|e| Failure::from_store(target, &e))?;
    if json {
        println!("{}", json!(sessions));
        return Ok(());
    }
    if sessions.is_empty() {
        match client {
            Some(client) => println!("user {user:?} has no live sessions of client {client:?}"),
            None => println!("user {user:?} has no live sessions (only revoked or ended ones)"),
        }
        return Ok(());
    }
    let mut table = Table::new([
        "SESSION",
        "CREATED",
        "LAST ROTATED",
        "EXPIRES",
        "CLIENT",
        "DEVICE",
    ]);
    for SessionInfo {
        family,
        created_at,
        last_rotated_at,
        expires_at,
        metadata,
        client,
        ..
    } in &sessions
    {
        table.row([
            family.to_string(),
            time(created_at),
            time(last_rotated_at),
            time(expires_at),
            client.clone().unwrap_or_else(|| "-".into()),
            metadata.clone().unwrap_or_else(|| "-".into()),
        ]);
    }
    print!("{table}");
    Ok(())
}

async fn revoke(target: &mut Target, user: &str, session: &str, json: bool) -> Result<(), Failure> {
    require_user(target, user).await?;
    let revoked = target
        .store
        .revoke_family(user, &FamilyId::from(session))
        .await
        .map_err(|e| Failure::from_store(target, &e))?;
    let scope = Scope {
        user: Some(user),
        session: Some(session),
        client: None,
    };
    audit(target, "revoke", scope, Some(u64::from(revoked)), None);
    if !revoked {
        return Err(Failure::NotFound(format!(
            "user {user:?} has no live session {session:?} (see `token-admin list {user}`)"
        )));
    }
    if json {
        println!(
            "{}",
            json!({"user": user, "session": session, "revoked": true})
        );
    } else {
        println!("revoked session {session} of user {user:?}");
    }
    Ok(())
}

async fn revoke_all(target: &mut Target, user: &str, json: bool) -> Result<(), Failure> {
    require_user(target, user).await?;
    let revoked = target
        .store
        .revoke_all(user)
        .await
        .map_err(|e| Failure::from_store(target, &e))?;
    let scope = Scope {
        user: Some(user),
        ..Scope::default()
    };
    audit(target, "revoke_all", scope, Some(revoked), None);
    if json {
        println!("{}", json!({"user": user, "revoked": revoked}));
    } else {
        println!("revoked {revoked} session(s) of user {user:?}");
    }
    Ok(())
}

/// Revokes every live session of `user` issued to `client`; exit code 4 when there was none
/// (a mistyped client id should not read as done).
async fn revoke_client(
    target: &mut Target,
    user: &str,
    client: &str,
    json: bool,
) -> Result<(), Failure> {
    require_user(target, user).await?;
    let revoked = target
        .store
        .revoke_client(user, client)
        .await
        .map_err(|e| Failure::from_store(target, &e))?;
    let scope = Scope {
        user: Some(user),
        client: Some(client),
        ..Scope::default()
    };
    audit(target, "revoke_client", scope, Some(revoked), None);
    if revoked == 0 {
        return Err(Failure::NotFound(format!(
            "user {user:?} has no live session of client {client:?} (see `token-admin list \
             {user} --client {client}`)"
        )));
    }
    if json {
        println!(
            "{}",
            json!({"user": user, "client": client, "revoked": revoked})
        );
    } else {
        println!("revoked {revoked} session(s) of client {client:?} of user {user:?}");
    }
    Ok(())
}

async fn cleanup(target: &mut Target, no_progress: bool, json: bool) -> Result<(), Failure> {
    // The bar's length is the whole keyspace (DBSIZE): SCAN walks all of it, ~1000 keys a
    // batch, whatever the prefix matches.
    let keyspace: u64 = redis::cmd("DBSIZE")
        .query_async(&mut target.conn)
        .await
        .map_err(|e| Failure::from_redis(&target.url, &e))?;
    let bar = if no_progress {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(keyspace.max(1));
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} scanning {bar:40} ~{pos}/{len} keys, {msg} [{elapsed}]",
            )
            .expect("a valid progress template"),
        );
        bar
    };
    let started = std::time::Instant::now();
    let result = target
        .store
        .cleanup_expired_with_progress(|progress| {
            bar.set_position((progress.batches * 1000).min(keyspace));
            bar.set_message(format!(
                "{} records, {} pruned",
                progress.records, progress.pruned
            ));
        })
        .await;
    bar.finish_and_clear();
    let pruned = result.map_err(|e| Failure::from_store(target, &e))?;
    audit(target, "cleanup", Scope::default(), None, Some(pruned));
    let elapsed = started.elapsed();
    if json {
        println!(
            "{}",
            json!({"pruned": pruned, "keyspace": keyspace, "seconds": elapsed.as_secs_f64()})
        );
    } else {
        println!(
            "pruned {pruned} ended session(s) in {:.1} s (keyspace: {keyspace} keys)",
            elapsed.as_secs_f64()
        );
    }
    Ok(())
}
