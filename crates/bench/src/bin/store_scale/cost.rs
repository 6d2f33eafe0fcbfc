//! Part 1: Redis time per store call, cell by cell, beside the minimal function and the
//! hand-rolled refresh, in interleaved rounds.

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::{RedisStore, RotationStore, StoreConfig};

use crate::args::Options;
use crate::breakdown::breakdown;
use crate::figures::{median, paired, ratio_line, slice};
use crate::library::load_bench_library;
use crate::population::{
    Session, TOKEN_LEN, handrolled_record, jti, mode_key, mode_name, month_ahead, register,
    register_users, rotate, rotate_each, sessions_key, user,
};
use crate::server::{Cost, command_stats, dbsize, fcall_cost, flushall, reset_stats, store};

/// The functions of the cost table, in its column order.
pub(crate) const OPS: [&str; 5] = ["register", "rotate", "revoke", "revoke_all", "list"];

pub(crate) const REGISTER: usize = 0;

pub(crate) const ROTATE: usize = 1;

pub(crate) const REVOKE: usize = 2;

pub(crate) const REVOKE_ALL: usize = 3;

pub(crate) const LIST: usize = 4;

/// One cell of the cost table: users with `per_user` sessions, each rotated `prior` times
/// before the measurement, and what was measured on them.
pub(crate) struct CostCell {
    claim: bool,
    per_user: usize,
    prior: usize,
    users: usize,
    sessions: Vec<Session>,
    /// Rotations the measurement makes: every family in turn, `passes` times.
    passes: usize,
    /// `usec_per_call` of each batch, per function (index in [`OPS`]), in round order.
    samples: [Vec<f64>; 5],
    calls: [u64; 5],
}

impl CostCell {
    fn user(&self, u: usize) -> String {
        format!(
            "{}{}-{}-{u:06}",
            mode_key(self.claim),
            self.per_user,
            self.prior
        )
    }

    /// Users `[0, a)` log in once more, `[a, b)` log out everywhere, and every session of
    /// `[b, users)` is revoked; the measured rotations and listings take every user first.
    fn thirds(&self) -> (usize, usize) {
        (self.users / 3, 2 * self.users / 3)
    }

    fn record(&mut self, op: usize, cost: Option<Cost>) {
        if let Some(cost) = cost {
            self.samples[op].push(cost.usec_per_call);
            self.calls[op] += cost.calls;
        }
    }

    fn median(&self, op: usize) -> f64 {
        median(&self.samples[op])
    }
}

/// Users with `per_user` sessions, each session rotated `prior` times (without grace slots,
/// which would only expire meanwhile), every token expiring at `exp`.
pub(crate) async fn cost_population(
    prep: &RedisStore,
    opts: &Options,
    claim: bool,
    per_user: usize,
    prior: usize,
    exp: i64,
    token: &str,
) -> CostCell {
    let passes = (prior / 10).max(1);
    // A quarter of the calls once there is a history to write first: writing it through
    // the store is what takes the time (ten rotations per measured one).
    let calls = if prior == 0 {
        opts.calls
    } else {
        opts.calls / 4
    };
    let families = calls.div_ceil(passes);
    let users = families.div_ceil(per_user).max(opts.min_users);
    let mut cell = CostCell {
        claim,
        per_user,
        prior,
        users,
        sessions: Vec::new(),
        passes,
        samples: Default::default(),
        calls: [0; 5],
    };
    let name = |u: usize| cell.user(u);
    let mut sessions = register_users(prep, 0..users, per_user, claim, exp, name).await;
    rotate_each(prep, &mut sessions, prior, token, &move |_| exp).await;
    cell.sessions = sessions;
    cell
}

/// The minimal function and the hand-rolled refresh: their keys, and their measurements.
pub(crate) struct Baselines {
    value: String,
    /// The hand-rolled app's current token id per user.
    current: Vec<String>,
    minimal: Vec<f64>,
    handrolled: Vec<f64>,
    parts: [Vec<f64>; 3],
    calls: u64,
}

pub(crate) fn minimal_key(i: usize) -> String {
    format!("minimal:{{u{i}}}:s")
}

impl Baselines {
    async fn prepare(one: &mut MultiplexedConnection, calls: usize, value_len: usize) -> Self {
        let value = "v".repeat(value_len);
        let current: Vec<String> = (0..calls).map(|_| jti()).collect();
        let mut pipe = redis::pipe();
        for (i, jti) in current.iter().enumerate() {
            pipe.cmd("HSET")
                .arg(minimal_key(i))
                .arg("f")
                .arg(&value)
                .ignore();
            pipe.cmd("SETEX")
                .arg(format!("refresh_token:{}:{jti}", user(i)))
                .arg(3600)
                .arg(handrolled_record(i, jti))
                .ignore();
        }
        let _: () = pipe.query_async(one).await.expect("HSET pipeline");
        load_bench_library(one).await;
        let baselines = Baselines {
            value,
            current,
            minimal: Vec::new(),
            handrolled: Vec::new(),
            parts: Default::default(),
            calls: 0,
        };
        // Warms up.
        for i in 0..(calls / 10).clamp(10, 1000) {
            baselines.minimal_call(one, i).await;
        }
        baselines
    }

    async fn minimal_call(&self, one: &mut MultiplexedConnection, i: usize) {
        let old: Option<String> = redis::cmd("FCALL")
            .arg("bench_minimal")
            .arg(1)
            .arg(minimal_key(i))
            .arg("f")
            .arg(&self.value)
            .query_async(one)
            .await
            .expect("minimal function");
        assert!(old.is_some());
    }

    /// Measures the `j`-th of `k` slices of both.
    async fn round(
        &mut self,
        conn: &mut MultiplexedConnection,
        one: &mut MultiplexedConnection,
        j: usize,
        k: usize,
    ) {
        let range = slice(self.current.len(), j, k);
        let this = &*self;
        let minimal = fcall_cost(conn, range.len(), async {
            for i in range.clone() {
                this.minimal_call(one, i).await;
            }
        })
        .await;
        if let Some(cost) = minimal {
            self.minimal.push(cost.usec_per_call);
            self.calls += cost.calls;
        }
        if range.is_empty() {
            return;
        }
        // The hand-rolled refresh: read the presented token's record, delete it, write the
        // successor's (three round trips, as the hand-rolled app sends them).
        reset_stats(conn).await;
        for i in range.clone() {
            let old = format!("refresh_token:{}:{}", user(i), self.current[i]);
            let found: Option<String> = redis::cmd("GET")
                .arg(&old)
                .query_async(one)
                .await
                .expect("GET");
            assert!(found.is_some());
            let _: () = redis::cmd("DEL")
                .arg(&old)
                .query_async(one)
                .await
                .expect("DEL");
            let next = jti();
            let _: () = redis::cmd("SETEX")
                .arg(format!("refresh_token:{}:{next}", user(i)))
                .arg(3600)
                .arg(handrolled_record(i, &next))
                .query_async(one)
                .await
                .expect("SETEX");
            self.current[i] = next;
        }
        let mut sum = 0.0;
        for (part, command) in ["get", "del", "setex"].into_iter().enumerate() {
            let (n, usec) = command_stats(conn, command).await;
            assert_eq!(n, range.len() as u64, "{command} calls");
            let per_call = usec as f64 / n as f64;
            self.parts[part].push(per_call);
            sum += per_call;
        }
        self.handrolled.push(sum);
    }
}

/// The length of a family record after a few rotations, as the store writes it (a field
/// of the user's hash).
pub(crate) async fn record_len(store: &RedisStore, conn: &mut MultiplexedConnection) -> usize {
    let exp = month_ahead();
    let mut s = register(store, "record-len".into(), true, exp).await;
    let token = "t".repeat(TOKEN_LEN);
    for _ in 0..3 {
        rotate(store, &mut s, &token, &|_| exp).await;
    }
    redis::cmd("HSTRLEN")
        .arg(sessions_key(&s.user))
        .arg(s.family.as_str())
        .query_async(conn)
        .await
        .expect("HSTRLEN")
}

/// What every measured batch uses.
pub(crate) struct Batches<'a> {
    /// The store under measurement (the defaults: grace 10 s, 64 sessions per user).
    store: &'a RedisStore,
    /// The successor token every rotation seals.
    token: &'a str,
    /// Every token's `exp`.
    exp: i64,
    /// Each batch is one of this many slices.
    rounds: usize,
    /// `list` calls per cell.
    list_calls: usize,
}

/// The measured rotations and listings of round `j`.
pub(crate) async fn rotate_and_list(
    conn: &mut MultiplexedConnection,
    batches: &Batches<'_>,
    cell: &mut CostCell,
    j: usize,
) {
    let Batches {
        store,
        token,
        exp,
        rounds: k,
        list_calls,
    } = *batches;
    let families = cell.sessions.len();
    let rotations = slice(families * cell.passes, j, k);
    let sessions = &mut cell.sessions;
    let rotated = fcall_cost(conn, rotations.len(), async {
        for i in rotations.clone() {
            rotate(store, &mut sessions[i % families], token, &|_| exp).await;
        }
    })
    .await;
    cell.record(ROTATE, rotated);
    let listings = slice(list_calls, j, k);
    let cell_ref = &*cell;
    let listed = fcall_cost(conn, listings.len(), async {
        for i in listings.clone() {
            let user = cell_ref.user(i % cell_ref.users);
            let listed = store.list(&user).await.expect("list");
            assert_eq!(listed.len(), cell_ref.per_user);
        }
    })
    .await;
    cell.record(LIST, listed);
}

/// The measured logins, logouts and revocations of round `j`.
pub(crate) async fn register_and_revoke(
    conn: &mut MultiplexedConnection,
    batches: &Batches<'_>,
    cell: &mut CostCell,
    j: usize,
) {
    let (store, exp, k) = (batches.store, batches.exp, batches.rounds);
    let (a, b) = cell.thirds();
    let cell_ref = &*cell;
    let logins = slice(a, j, k);
    let registered = fcall_cost(conn, logins.len(), async {
        for u in logins.clone() {
            register(store, cell_ref.user(u), cell_ref.claim, exp).await;
        }
    })
    .await;
    let logouts = slice(b - a, j, k);
    let revoked_all = fcall_cost(conn, logouts.len(), async {
        for u in logouts.clone() {
            let revoked = store
                .revoke_all(&cell_ref.user(a + u))
                .await
                .expect("revoke_all");
            assert_eq!(revoked, cell_ref.per_user as u64);
        }
    })
    .await;
    let last = &cell_ref.sessions[b * cell_ref.per_user..];
    let revocations = slice(last.len(), j, k);
    let revoked = fcall_cost(conn, revocations.len(), async {
        for s in &last[revocations.clone()] {
            let family = store.revoke(&s.user, s.token()).await.expect("revoke");
            assert!(family.is_some());
        }
    })
    .await;
    cell.record(REGISTER, registered);
    cell.record(REVOKE_ALL, revoked_all);
    cell.record(REVOKE, revoked);
}

pub(crate) async fn cost(server: &RedisServer, conn: &mut MultiplexedConnection, opts: &Options) {
    let start = Instant::now();
    flushall(conn).await;
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    // The history is written without grace slots; the measured store has the defaults,
    // a 10 s grace window and the 64-session cap included.
    let prep = store(server, StoreConfig::default().grace(Duration::ZERO));
    let measured = store(server, StoreConfig::default());
    let record = record_len(&measured, conn).await;

    let mut cells = Vec::new();
    for claim in [true, false] {
        for &per_user in &opts.per_user {
            for &prior in &opts.rotations {
                let cell = cost_population(&prep, opts, claim, per_user, prior, exp, &token).await;
                cells.push(cell);
            }
        }
    }
    let client = redis::Client::open(server.url()).expect("a client");
    let mut one = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    let mut baselines = Baselines::prepare(&mut one, opts.calls, record).await;
    let prepared = start.elapsed().as_secs_f64();
    println!(
        "cost: {} cells and the baselines prepared in {prepared:.0} s ({} keys)",
        cells.len(),
        dbsize(conn).await
    );

    // Warm-up: every function through the measured store's connection, on spare users.
    let warm_calls = (opts.calls / 10).clamp(10, 1000);
    for claim in [true, false] {
        let mut spare = register(&measured, format!("spare-{claim}"), claim, exp).await;
        for _ in 0..warm_calls {
            rotate(&measured, &mut spare, &token, &|_| exp).await;
            measured.list(&spare.user).await.expect("list");
        }
        let revoked = measured.revoke(&spare.user, spare.token()).await;
        assert!(revoked.expect("revoke").is_some());
        measured.revoke_all(&spare.user).await.expect("revoke_all");
    }

    // Every cell and both baselines get a slice in each round, in an order that shifts
    // round by round, so each sees the same background noise of the machine.
    let rounds = opts.rounds;
    let list_calls = (opts.calls / 8).max(1);
    let batches = Batches {
        store: &measured,
        token: &token,
        exp,
        rounds,
        list_calls,
    };
    let items = cells.len() + 1;
    for j in 0..rounds {
        for step in 0..items {
            match (step + j) % items {
                i if i < cells.len() => {
                    rotate_and_list(conn, &batches, &mut cells[i], j).await;
                }
                _ => baselines.round(conn, &mut one, j, rounds).await,
            }
        }
    }
    let count = cells.len();
    for j in 0..rounds {
        for step in 0..count {
            let cell = &mut cells[(step + j) % count];
            register_and_revoke(conn, &batches, cell, j).await;
        }
    }
    flushall(conn).await;

    let minimal = median(&baselines.minimal);
    let handrolled = median(&baselines.handrolled);
    println!(
        "RESULT cost_baseline minimal={minimal:.2} get={:.2} del={:.2} setex={:.2} \
         handrolled={handrolled:.2} calls={} rounds={rounds} record_bytes={record}",
        median(&baselines.parts[0]),
        median(&baselines.parts[1]),
        median(&baselines.parts[2]),
        baselines.calls,
    );
    for c in &cells {
        let mut line = format!(
            "RESULT cost mode={} sessions={} rotations={}",
            mode_key(c.claim),
            c.per_user,
            c.prior
        );
        for (op, name) in OPS.iter().enumerate() {
            line += &format!(" {name}={:.2}", c.median(op));
        }
        for (op, name) in OPS.iter().enumerate() {
            line += &format!(" calls_{name}={}", c.calls[op]);
        }
        println!("{line}");
    }

    println!();
    println!(
        "Redis usec per call: INFO commandstats, cmdstat_fcall (list: cmdstat_fcall_ro) usec / \
         calls, reset before each \
         batch; one client, sequential, warm; median of {rounds} interleaved rounds. Calls per \
         cell: rotate {} (each family rotated at most max(1, R/10) times, R = prior rotations), \
         list {list_calls}; register, revoke_all: one per user of a third of the users, revoke: \
         one per family of the last third (counts in the RESULT lines). Every token of a user \
         expires in the same hour (one token-index hash per user).",
        opts.calls
    );
    println!();
    println!(
        "| mode | sessions per user | prior rotations | register | rotate | revoke | revoke_all | \
         list |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for c in &cells {
        println!(
            "| {} | {} | {} | {:.1} | {:.1} | {:.1} | {:.1} | {:.1} |",
            mode_name(c.claim),
            c.per_user,
            c.prior,
            c.median(REGISTER),
            c.median(ROTATE),
            c.median(REVOKE),
            c.median(REVOKE_ALL),
            c.median(LIST),
        );
    }
    println!(
        "| minimal function: TIME + HGET + HSET of a {record}-byte field | | | | {minimal:.1} | | | |"
    );
    println!(
        "| hand-rolled: GET + DEL + SETEX ({:.1} + {:.1} + {:.1}) | | | | {handrolled:.1} | | | |",
        median(&baselines.parts[0]),
        median(&baselines.parts[1]),
        median(&baselines.parts[2]),
    );
    println!();

    let (s_lo, s_hi) = (opts.per_user[0], opts.per_user[opts.per_user.len() - 1]);
    let (r_lo, r_hi) = (opts.rotations[0], opts.rotations[opts.rotations.len() - 1]);
    for claim in [true, false] {
        let rotate = |s: usize, r: usize| {
            cells
                .iter()
                .find(|c| c.claim == claim && c.per_user == s && c.prior == r)
                .map_or(&[][..], |c| &c.samples[ROTATE][..])
        };
        let by_sessions = paired(rotate(s_hi, r_lo), rotate(s_lo, r_lo));
        let by_sessions_worst = opts
            .rotations
            .iter()
            .map(|&r| paired(rotate(s_hi, r), rotate(s_lo, r)).0)
            .fold(f64::NAN, f64::max);
        let by_rotations = paired(rotate(s_lo, r_hi), rotate(s_lo, r_lo));
        let by_rotations_worst = opts
            .per_user
            .iter()
            .map(|&s| paired(rotate(s, r_hi), rotate(s, r_lo)).0)
            .fold(f64::NAN, f64::max);
        let by_minimal = paired(rotate(s_lo, r_lo), &baselines.minimal);
        let by_handrolled = paired(rotate(s_lo, r_lo), &baselines.handrolled);
        let mode = mode_name(claim);
        println!(
            "ratio: {}; worst over prior rotations {by_sessions_worst:.2}",
            ratio_line(
                &format!("{mode}, rotate {s_hi} sessions ÷ {s_lo} ({r_lo} rotations)"),
                by_sessions,
                1.1
            )
        );
        println!(
            "ratio: {}; worst over sessions per user {by_rotations_worst:.2}",
            ratio_line(
                &format!("{mode}, rotate {r_hi} rotations ÷ {r_lo} ({s_lo} session)"),
                by_rotations,
                1.1
            )
        );
        let (value, lo, hi) = by_minimal;
        println!(
            "ratio: {mode}, rotate ÷ minimal function ({s_lo} session, {r_lo} rotations): \
             {value:.2} (rounds {lo:.2}–{hi:.2}; reference); ÷ hand-rolled GET + DEL + SETEX \
             {:.2}",
            by_handrolled.0
        );
        println!(
            "RESULT cost_ratio mode={} sessions_ratio={:.2} sessions_ratio_worst={by_sessions_worst:.2} \
             rotations_ratio={:.2} rotations_ratio_worst={by_rotations_worst:.2} \
             minimal_ratio={:.2} handrolled_ratio={:.2}",
            mode_key(claim),
            by_sessions.0,
            by_rotations.0,
            by_minimal.0,
            by_handrolled.0,
        );
    }
    breakdown(server, conn, opts).await;
    println!(
        "cost: done in {:.0} s ({prepared:.0} s preparing)",
        start.elapsed().as_secs_f64()
    );
}
