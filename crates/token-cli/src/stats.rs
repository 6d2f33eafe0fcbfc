//! `stats`: what the store holds under a prefix, found with `SCAN` (never `KEYS`), so it
//! runs against a production Redis without blocking it.

use redis::RedisResult;
use redis::aio::MultiplexedConnection;
use serde::Serialize;
use token_core::admin;

use crate::table::Table;

/// Keys visited per `SCAN` call; also the size of each `MGET` and `MEMORY USAGE` pipeline.
const BATCH: usize = 1000;

#[derive(Debug, Default, Serialize)]
pub(crate) struct Stats {
    prefix: String,
    /// Users with a session index (at least one session not yet pruned).
    users: u64,
    live_sessions: u64,
    revoked_sessions: u64,
    ended_sessions: u64,
    /// Session hashes (one per user, holding its sessions' records).
    index_keys: u64,
    grace_keys: u64,
    /// Token-index buckets (only for apps without a family claim).
    token_index_keys: u64,
    other_keys: u64,
    /// Keys measured with `MEMORY USAGE`.
    sampled_keys: u64,
    /// Sum of `MEMORY USAGE` over the sample, scaled to every key under the prefix.
    estimated_memory_bytes: u64,
    /// `used_memory` of the whole Redis, for scale.
    redis_used_memory_bytes: u64,
}

pub(crate) async fn collect(
    conn: &mut MultiplexedConnection,
    prefix: &str,
    sample: u64,
) -> RedisResult<Stats> {
    let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(conn).await?;
    let now_ms = secs * 1000 + micros / 1000;
    let pattern = admin::prefix_pattern(prefix);
    let mut stats = Stats {
        prefix: prefix.to_owned(),
        ..Stats::default()
    };
    let mut sampled_bytes = 0u64;
    let mut cursor = 0u64;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(BATCH)
            .query_async(conn)
            .await?;
        let indexes: Vec<&String> = keys
            .iter()
            .filter(|k| admin::user_of_index_key(prefix, k).is_some())
            .collect();
        let kind_count = |kind: admin::KeyKind| {
            keys.iter()
                .filter(|k| admin::key_kind(prefix, k) == kind)
                .count() as u64
        };
        let (grace, tokens) = (
            kind_count(admin::KeyKind::GraceSlot),
            kind_count(admin::KeyKind::TokenIndex),
        );
        stats.index_keys += indexes.len() as u64;
        stats.grace_keys += grace;
        stats.token_index_keys += tokens;
        stats.other_keys += keys.len() as u64 - indexes.len() as u64 - grace - tokens;
        if !indexes.is_empty() {
            let mut pipe = redis::pipe();
            for index in &indexes {
                pipe.cmd("HGETALL").arg(index);
            }
            // An index that expired between SCAN and HGETALL reads as empty: skipped.
            let hashes: Vec<Vec<(Vec<u8>, Vec<u8>)>> = pipe.query_async(conn).await?;
            for index in hashes.into_iter().filter(|h| !h.is_empty()) {
                let summary = admin::summarize_index(index, now_ms);
                stats.users += 1;
                stats.live_sessions += summary.live;
                stats.revoked_sessions += summary.revoked;
                stats.ended_sessions += summary.ended;
            }
        }
        let room = sample.saturating_sub(stats.sampled_keys) as usize;
        if room > 0 && !keys.is_empty() {
            let mut pipe = redis::pipe();
            for key in keys.iter().take(room) {
                pipe.cmd("MEMORY").arg("USAGE").arg(key);
            }
            let sizes: Vec<Option<u64>> = pipe.query_async(conn).await?;
            for size in sizes.into_iter().flatten() {
                stats.sampled_keys += 1;
                sampled_bytes += size;
            }
        }
        if next == 0 {
            break;
        }
        cursor = next;
    }
    let total = stats.keys();
    if stats.sampled_keys > 0 {
        stats.estimated_memory_bytes =
            (sampled_bytes as u128 * total as u128 / stats.sampled_keys as u128) as u64;
    }
    let info: String = redis::cmd("INFO").arg("memory").query_async(conn).await?;
    stats.redis_used_memory_bytes = info
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_default();
    Ok(stats)
}

impl Stats {
    fn keys(&self) -> u64 {
        self.index_keys + self.grace_keys + self.token_index_keys + self.other_keys
    }

    pub(crate) fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::json!(self));
            return;
        }
        let mut table = Table::new(["", ""]);
        let keys = self.keys();
        for (name, value) in [
            ("prefix", self.prefix.clone()),
            ("users", self.users.to_string()),
            ("live sessions", self.live_sessions.to_string()),
            (
                "revoked sessions (tombstones)",
                self.revoked_sessions.to_string(),
            ),
            (
                "ended sessions (not yet pruned)",
                self.ended_sessions.to_string(),
            ),
            (
                "keys",
                format!(
                    "{keys} ({} session hashes, {} grace slots, {} token-index buckets, \
                     {} other)",
                    self.index_keys, self.grace_keys, self.token_index_keys, self.other_keys
                ),
            ),
            (
                "estimated memory",
                format!(
                    "{} (MEMORY USAGE of {} keys)",
                    bytes(self.estimated_memory_bytes),
                    self.sampled_keys
                ),
            ),
            ("redis used_memory", bytes(self.redis_used_memory_bytes)),
        ] {
            table.row([name.to_owned(), value]);
        }
        print!("{table}");
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / (1u64 << 10) as f64),
        n => format!("{n} B"),
    }
}
