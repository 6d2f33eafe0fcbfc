//! Part 2: bytes per live session and per remembered spent token.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::{RotationStore, StoreConfig};

use crate::args::Options;
use crate::figures::fit;
use crate::population::{
    HOUR, Session, TOKEN_LEN, fill_handrolled, month_ahead, register_users, register_users_with,
    rotate_each, sessions_key, user,
};
use crate::server::{
    config_get, dbsize, flushall, hstrlen, memory_stats, memory_usage, object_encoding, store,
    used_memory, wait_for_dbsize, wait_for_no_grace_slots, with_grace,
};

/// `used_memory`, and the parts of it in the keyspace's hash tables and in client buffers.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Memory {
    used: i64,
    tables: i64,
    clients: i64,
}

impl Memory {
    async fn now(conn: &mut MultiplexedConnection) -> Self {
        let used = used_memory(conn).await;
        let (tables, clients) = memory_stats(conn).await;
        Memory {
            used,
            tables,
            clients,
        }
    }

    /// Bytes per item since `before`: in all, and in the keys themselves (outside the
    /// keyspace's hash tables and client buffers).
    fn per(self, before: Memory, items: usize) -> (f64, f64) {
        let all = (self.used - before.used) as f64 / items as f64;
        let other = (self.tables - before.tables + self.clients - before.clients) as f64;
        (all, all - other / items as f64)
    }
}

/// A user agent of `len` bytes, cut from a real one (repeated past its end).
pub(crate) fn user_agent(len: usize) -> String {
    const UA: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like \
                      Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0 ";
    UA.chars().cycle().take(len).collect()
}

/// What one population of live sessions costs: bytes per session at rest (after the
/// logins) and after one rotation of each, in all and in the keys themselves.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SessionsMemory {
    per_user: usize,
    ua: usize,
    at_rest: f64,
    rotated: f64,
    hashtable: bool,
}

/// Bytes per live session in family-claim mode, `per_user` sessions per user, each login
/// recording a user agent of `ua` bytes (none for 0). With `deep`, also after 3 rotations
/// with their grace slots (and then, with `subset`, a subset rotated many more times).
pub(crate) async fn memory_sessions(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    opts: &Options,
    per_user: usize,
    ua: usize,
    deep: bool,
    subset: bool,
) -> SessionsMemory {
    let grace = Duration::from_secs(1);
    let store_with_grace = store(server, with_grace(grace));
    // The first rotation without a grace slot: the figure after it is the session's own,
    // not a burst of slots that the keyspace's hash tables grew for (see `deep`).
    let store_no_grace = store(server, StoreConfig::default().grace(Duration::ZERO));
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    let same_hour = move |_: usize| exp;
    let agent = user_agent(ua);
    let metadata = (ua > 0).then_some(agent.as_str());
    // The store's library loaded before the baseline (FLUSHALL keeps it): its code is not
    // the sessions' memory.
    store_no_grace.list("warm-up").await.expect("list");
    flushall(conn).await;
    let start = Instant::now();
    let baseline = Memory::now(conn).await;
    let sessions_n = opts.sessions.div_ceil(per_user) * per_user;
    let users = sessions_n / per_user;
    let name = |u: usize| format!("mem{per_user}-{u:07}");
    let mut sessions = register_users_with(
        &store_no_grace,
        0..users,
        per_user,
        true,
        exp,
        name,
        metadata,
    )
    .await;
    let registered = Memory::now(conn).await;
    let (at_rest, at_rest_data) = registered.per(baseline, sessions_n);
    let keys = dbsize(conn).await;
    let first = (sessions[0].user.clone(), sessions[0].family.clone());
    let hash = sessions_key(&first.0);
    let encoding = object_encoding(conn, &hash).await;
    let usage = memory_usage(conn, &hash).await;
    let record = hstrlen(conn, &hash, first.1.as_str()).await;
    println!(
        "memory: {sessions_n} live sessions, {per_user} per user ({users} users), user agent \
         {ua} bytes: {} bytes: {at_rest:.0} bytes per session, {at_rest_data:.0} in the keys \
         themselves (outside the keyspace's hash tables and client buffers; {keys} keys; a \
         user's hash: {encoding}, MEMORY USAGE {usage}, records of {record} bytes; filled in \
         {:.1} s)",
        registered.used - baseline.used,
        start.elapsed().as_secs_f64()
    );
    rotate_each(&store_no_grace, &mut sessions, 1, &token, &same_hour).await;
    let once = Memory::now(conn).await;
    let (rotated, rotated_data) = once.per(baseline, sessions_n);
    let usage_rotated = memory_usage(conn, &hash).await;
    let record_rotated = hstrlen(conn, &hash, first.1.as_str()).await;
    println!(
        "memory: after one rotation of each (no grace slot): {rotated:.0} bytes per session \
         ({:+.1} %), {rotated_data:.0} in the keys; MEMORY USAGE of a user's hash \
         {usage_rotated}, records of {record_rotated} bytes",
        (rotated / at_rest - 1.0) * 100.0,
    );
    let mut line = format!(
        "RESULT memory_sessions per_user={per_user} ua={ua} sessions={sessions_n} \
         encoding={encoding} bytes_per_session={at_rest:.0} \
         data_bytes_per_session={at_rest_data:.0} hash_usage={usage} record_bytes={record} \
         bytes_after_rotation={rotated:.0} data_bytes_after_rotation={rotated_data:.0} \
         hash_usage_after={usage_rotated} record_bytes_after={record_rotated}"
    );
    if deep {
        let store = &store_with_grace;
        let rotations = 3;
        rotate_each(store, &mut sessions, 1, &token, &same_hour).await;
        let with_slots = used_memory(conn).await;
        rotate_each(store, &mut sessions, rotations - 2, &token, &same_hour).await;
        tokio::time::sleep(grace).await;
        let waited = wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
        let after3 = Memory::now(conn).await;
        let (after, after_data) = after3.per(baseline, sessions_n);
        let slot = (with_slots - once.used) as f64 / sessions_n as f64;
        println!(
            "memory: after {rotations} rotations of each, the last two with a grace slot, slots \
             gone ({waited:.1} s after the window): {after:.0} bytes per session ({:+.1} % \
             against at rest), {after_data:.0} in the keys ({:+.1} %); one rotation with its \
             grace slot alive: {slot:+.0} bytes per session",
            (after / at_rest - 1.0) * 100.0,
            (after_data / at_rest_data - 1.0) * 100.0,
        );
        line += &format!(
            " rotations={rotations} bytes_after_rotations={after:.0} \
             data_bytes_after_rotations={after_data:.0} grace_slot_bytes={slot:.0}"
        );
        if subset {
            let n = opts.subset.min(sessions.len());
            let before = Memory::now(conn).await;
            let keys_before = keys_usage(conn, &sessions[..n]).await;
            let subset_start = Instant::now();
            rotate_each(
                store,
                &mut sessions[..n],
                opts.subset_rotations,
                &token,
                &same_hour,
            )
            .await;
            let took = subset_start.elapsed().as_secs_f64();
            tokio::time::sleep(grace).await;
            wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
            let now = Memory::now(conn).await;
            let (growth, growth_data) = now.per(before, n);
            let keys_growth =
                (keys_usage(conn, &sessions[..n]).await - keys_before) as f64 / n as f64;
            let total = rotations + opts.subset_rotations;
            // What the rotated sessions hold now: the population's figure after 3 rotations
            // plus what grew outside the hash tables and client buffers (neither belongs to
            // them).
            let subset_bytes = after + growth_data;
            println!(
                "memory: {n} of them rotated {} more times each ({} rotations in {took:.1} s): \
                 their users' hashes {keys_growth:+.1} bytes per session (MEMORY USAGE); \
                 used_memory {:+} bytes in all ({:+} in the hash tables, {:+} in client \
                 buffers, {growth_data:+.1} per rotated session elsewhere), so \
                 {subset_bytes:.0} bytes per session after {total} rotations ({:+.1} % against \
                 after {rotations})",
                opts.subset_rotations,
                n * opts.subset_rotations,
                now.used - before.used,
                now.tables - before.tables,
                now.clients - before.clients,
                (subset_bytes / after - 1.0) * 100.0,
            );
            line += &format!(
                " subset={n} subset_rotations={total} subset_growth_bytes={growth:.1} \
                 subset_data_growth_bytes={growth_data:.1} \
                 subset_keys_growth_bytes={keys_growth:.1} \
                 subset_bytes_per_session={subset_bytes:.0}",
            );
        }
    }
    println!("{line}");
    flushall(conn).await;
    SessionsMemory {
        per_user,
        ua,
        at_rest,
        rotated,
        hashtable: encoding == "hashtable",
    }
}

/// The formula per session for a user-agent length: a fit over the lengths that keep the
/// user's hash a listpack, and what a hashtable-encoded hash costs above that fit.
pub(crate) fn memory_formula(results: &[SessionsMemory]) {
    let mut layouts: Vec<usize> = results.iter().map(|r| r.per_user).collect();
    layouts.dedup();
    for per_user in layouts {
        for (state, pick) in [
            (
                "at_rest",
                (|r: &SessionsMemory| r.at_rest) as fn(&SessionsMemory) -> f64,
            ),
            ("rotated", |r: &SessionsMemory| r.rotated),
        ] {
            let of = |hashtable: bool| -> Vec<(f64, f64)> {
                results
                    .iter()
                    .filter(|r| r.per_user == per_user && r.hashtable == hashtable)
                    .map(|r| (r.ua as f64, pick(r)))
                    .collect()
            };
            let listpack = of(false);
            if listpack.len() < 2 {
                continue;
            }
            let (a, b, worst) = fit(&listpack);
            let extra: Vec<String> = of(true)
                .iter()
                .map(|(x, y)| format!("{x:.0}:{:+.0}", y - (a + b * x)))
                .collect();
            println!(
                "memory: formula, {per_user} per user, {state}: bytes per session ≈ {a:.1} + \
                 {b:.2} × user-agent bytes while the hash stays a listpack (largest residual \
                 {worst:.1}); a hashtable-encoded hash above that: {}",
                if extra.is_empty() {
                    "not measured".to_owned()
                } else {
                    extra.join(", ")
                }
            );
            println!(
                "RESULT memory_formula per_user={per_user} state={state} a={a:.1} b={b:.3} \
                 max_residual={worst:.1} hashtable_extra={}",
                if extra.is_empty() {
                    "na".to_owned()
                } else {
                    extra.join(",")
                }
            );
        }
    }
}

/// The `MEMORY USAGE` of the sessions' users' hashes (each counted once).
pub(crate) async fn keys_usage(conn: &mut MultiplexedConnection, sessions: &[Session]) -> i64 {
    let mut users: Vec<&str> = sessions.iter().map(|s| s.user.as_str()).collect();
    users.dedup();
    let mut pipe = redis::pipe();
    for user in users {
        pipe.cmd("MEMORY").arg("USAGE").arg(sessions_key(user));
    }
    let sizes: Vec<Option<i64>> = pipe.query_async(conn).await.expect("MEMORY USAGE");
    sizes.into_iter().flatten().sum()
}

/// A short-lived population: every key must expire once the families end.
pub(crate) async fn memory_expiry(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    opts: &Options,
) {
    let lifetime = opts.lifetime;
    let grace = Duration::from_secs(1);
    let config = with_grace(grace)
        .absolute_lifetime(lifetime)
        .idle_lifetime(lifetime);
    let store = store(server, config);
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    flushall(conn).await;
    let baseline = used_memory(conn).await;
    let n = (opts.sessions / 10).max(100);
    let end = tokio::time::Instant::now() + lifetime;
    let mut sessions = register_users(&store, 0..n, 1, true, exp, user).await;
    rotate_each(&store, &mut sessions, 1, &token, &|_| exp).await;
    assert!(
        tokio::time::Instant::now() < end,
        "registering took longer than --lifetime {lifetime:?}: raise it"
    );
    tokio::time::sleep_until(end).await;
    let emptied = wait_for_dbsize(conn, 0, Duration::from_secs(120)).await;
    let delta = used_memory(conn).await - baseline;
    println!(
        "memory: {n} sessions whose lifetime ({lifetime:?}) ran out: keyspace empty \
         {emptied:.1} s after the end, used_memory {delta:+} bytes against before"
    );
    println!(
        "RESULT memory_expiry sessions={n} after_expiry_delta={delta} expiry_wait_s={emptied:.1}"
    );
}

/// Bytes per remembered spent token without a family claim, at each refresh rate.
pub(crate) async fn memory_token_index(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    opts: &Options,
) {
    let grace = Duration::from_secs(1);
    let store = store(server, with_grace(grace));
    let token = "t".repeat(TOKEN_LEN);
    let first_hour = month_ahead() - HOUR / 2;
    // Each user's tokens fill `buckets` hours, `rate` tokens expiring in each hour.
    let buckets = 10;
    let mut points = Vec::new();
    for &rate in &opts.rates {
        flushall(conn).await;
        let per_user = rate * buckets;
        let users = opts.spent_tokens.div_ceil(per_user).max(1);
        // The n-th token of a session expires in hour n / rate (a minute into it).
        let schedule = move |n: usize| first_hour + (n / rate) as i64 * HOUR + 60;
        let mut sessions = register_users(&store, 0..users, 1, false, schedule(0), user).await;
        // A first rotation of each before the baseline: the record's predecessor fields
        // appear with it, whatever the number of rotations after.
        rotate_each(&store, &mut sessions, 1, &token, &schedule).await;
        tokio::time::sleep(grace).await;
        wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
        let before = used_memory(conn).await;
        let keys_before = dbsize(conn).await;
        rotate_each(&store, &mut sessions, per_user, &token, &schedule).await;
        tokio::time::sleep(grace).await;
        wait_for_no_grace_slots(conn, Duration::from_secs(120)).await;
        let spent = users * per_user;
        let bytes = (used_memory(conn).await - before) as f64 / spent as f64;
        let new_keys = dbsize(conn).await - keys_before;
        println!(
            "memory: token index, {rate} tokens per user per expiry hour: {bytes:.1} bytes per \
             remembered spent token ({spent} tokens of {users} users, {new_keys} new hash keys)"
        );
        println!(
            "RESULT memory_token_index rate={rate} spent={spent} bytes_per_token={bytes:.1} \
             new_keys={new_keys}"
        );
        points.push((1.0 / rate as f64, bytes));
    }
    flushall(conn).await;
    // Least squares of bytes = entry + key_overhead * (1 / rate).
    let n = points.len() as f64;
    let (sx, sy) = points
        .iter()
        .fold((0.0, 0.0), |(sx, sy), (x, y)| (sx + x, sy + y));
    let (mx, my) = (sx / n, sy / n);
    let sxx: f64 = points.iter().map(|(x, _)| (x - mx).powi(2)).sum();
    let sxy: f64 = points.iter().map(|(x, y)| (x - mx) * (y - my)).sum();
    let key_overhead = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    let entry = my - key_overhead * mx;
    let worst = points
        .iter()
        .map(|(x, y)| (y - (entry + key_overhead * x)).abs())
        .fold(0.0, f64::max);
    println!(
        "memory: token index fit: bytes per spent token ≈ {entry:.1} + {key_overhead:.0} / \
         tokens per bucket (largest residual {worst:.1} bytes)"
    );
    println!(
        "RESULT memory_token_index_fit entry={entry:.1} key_overhead={key_overhead:.0} \
         max_residual={worst:.1}"
    );
}

pub(crate) async fn memory(server: &RedisServer, conn: &mut MultiplexedConnection, opts: &Options) {
    let start = Instant::now();
    println!(
        "memory: hash-max-listpack-value {}, hash-max-listpack-entries {}",
        config_get(conn, "hash-max-listpack-value").await,
        config_get(conn, "hash-max-listpack-entries").await
    );
    let mut results = Vec::new();
    for per_user in [1, 10] {
        for &ua in &opts.ua_lengths {
            let deep = ua == 0;
            let subset = deep && per_user == 1;
            results.push(memory_sessions(server, conn, opts, per_user, ua, deep, subset).await);
        }
    }
    memory_formula(&results);
    memory_expiry(server, conn, opts).await;
    memory_token_index(server, conn, opts).await;

    // The hand-rolled schema, for reference: one JSON record per token.
    flushall(conn).await;
    let hand_baseline = used_memory(conn).await;
    fill_handrolled(conn, 0..opts.sessions, 3600).await;
    let hand = (used_memory(conn).await - hand_baseline) as f64 / opts.sessions as f64;
    println!(
        "memory: hand-rolled schema (SETEX refresh_token:<user>:<jti> <json record>): {hand:.0} \
         bytes per session"
    );
    println!("RESULT memory_handrolled bytes_per_session={hand:.0}");
    flushall(conn).await;
    println!("memory: done in {:.0} s", start.elapsed().as_secs_f64());
}
