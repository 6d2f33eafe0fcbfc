//! Where `rotate`'s Redis time goes, step by step, with functions of the bench library.

use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::FamilyId;

use crate::args::Options;
use crate::figures::median;
use crate::library::{ABSOLUTE, load_bench_library};
use crate::population::{TOKEN_LEN, sessions_key};
use crate::server::{CommandStats, all_command_stats, fcall_cost, flushall};

/// The commands a function ran (every command but the `FCALL` itself and this tool's own),
/// as `(name, calls per FCALL, usec per FCALL)`.
pub(crate) fn inner_commands(stats: &[(String, u64, u64)], fcalls: u64) -> Vec<(String, f64, f64)> {
    stats
        .iter()
        .filter(|(name, _, _)| {
            !matches!(
                name.split('|').next().unwrap_or_default(),
                "fcall" | "fcall_ro" | "config" | "info"
            )
        })
        .map(|(name, calls, usec)| {
            (
                name.clone(),
                *calls as f64 / fcalls as f64,
                *usec as f64 / fcalls as f64,
            )
        })
        .collect()
}

/// A 12-byte digest as the functions take them (`rotate`'s presented and successor jti).
pub(crate) fn digest(n: u64) -> String {
    format!("d{n:011}")
}

/// The breakdown's steps, in order: label, function, and what it is called on. Each adds
/// one thing `rotate` does to the step before it. Steps 0–1 are no rule (what `FCALL` and
/// the least function cost), step 2 `rotate`'s shape without a rule, step 3 the decision by
/// the library's own reader and rules (`role`, `step`), and steps 4–6 the store's `rotate`
/// itself, under the policies that leave one part of it out after the other (see
/// `library::policies`).
pub(crate) const STEPS: [(&str, &str, StepOn); 7] = [
    ("FCALL of an empty function", "bench_empty", StepOn::Minimal),
    (
        "minimal function: TIME, HGET, HSET of a 51-byte field",
        "bench_minimal",
        StepOn::Minimal,
    ),
    (
        "+ rotate's 2 keys, 5 arguments (the 332-byte sealed successor among them), its \
         clock and 2-item reply; the record read and written back as it was",
        "bench_args",
        StepOn::Steps,
    ),
    (
        "+ the decision by the library's own reader and rules: the record's head unpacked \
         (RECORD_HEAD), the token's role and the rotation's step (role, step); the record \
         written back unchanged",
        "bench_decide",
        StepOn::Steps,
    ),
    (
        "+ the rotated record packed and written: rotate itself, grace off, idle lifetime = \
         absolute (no grace slot, no PEXPIRE)",
        "bench_rotate_bare",
        StepOn::Chain(0),
    ),
    (
        "+ the grace slot: rotate, grace on (SET of the sealed successor PX grace, the \
         family's one slot overwritten), idle lifetime = absolute",
        "bench_rotate_slot",
        StepOn::Chain(1),
    ),
    (
        "+ PEXPIRE … GT of the user's hash: rotate, store defaults (idle 14 d < absolute 30 d: \
         PEXPIRE whenever the family's end moved, i.e. the clock passed a millisecond since \
         its last rotation)",
        "bench_rotate",
        StepOn::Chain(2),
    ),
];

/// What a step of the breakdown is called on.
#[derive(Clone, Copy)]
pub(crate) enum StepOn {
    /// A field of its own in the steps' family's hash (`bench_empty`, `bench_minimal`).
    Minimal,
    /// The steps' family, with rotate's keys and arguments: its current token presented,
    /// a new successor each call (the family never moves: these steps write it back).
    Steps,
    /// A family of its own rotated in a valid chain, one per step that is `rotate`.
    Chain(usize),
}

/// The families of the breakdown, one user each, and the chains' current digests.
pub(crate) struct Breakdown {
    value: String,
    sealed: String,
    /// The steps' family: (hash, id).
    steps: (String, String),
    /// The chained families: (hash, id, current digest number).
    chains: Vec<(String, String, u64)>,
}

/// The lifetimes a family of the breakdown is registered with, in ms: the store's
/// defaults, or (for the policies with the idle lifetime the absolute one) absolute alone.
const ABSOLUTE_MS: u64 = ABSOLUTE.as_secs() * 1000;
const IDLE_MS: u64 = 14 * 24 * 3_600_000;

impl Breakdown {
    /// Registers a family with `bench_register` (the store's own `register`), its idle
    /// lifetime `idle_ms`.
    async fn family(one: &mut MultiplexedConnection, user: &str, idle_ms: u64) -> (String, String) {
        let (hash, id) = (sessions_key(user), FamilyId::random().as_str().to_owned());
        let reply: redis::Value = redis::cmd("FCALL")
            .arg("bench_register")
            .arg(1)
            .arg(&hash)
            .arg(0)
            .arg(digest(0))
            .arg(&id)
            .arg(ABSOLUTE_MS)
            .arg(idle_ms)
            .arg("")
            .arg(0)
            .arg(0)
            // No client: its binding digest, and its id.
            .arg("")
            .arg("")
            .query_async(one)
            .await
            .expect("bench_register");
        assert!(replied(&reply, "registered"), "{reply:?}");
        (hash, id)
    }

    /// One call of step `step`; `i` makes the steps' successor new.
    async fn call(&mut self, one: &mut MultiplexedConnection, step: usize, i: u64) {
        let (_, function, on) = STEPS[step];
        let mut cmd = redis::cmd("FCALL");
        cmd.arg(function);
        let (hash, id, presented, next) = match on {
            StepOn::Minimal => {
                cmd.arg(1)
                    .arg(&self.steps.0)
                    .arg("minimal")
                    .arg(&self.value);
                let _: redis::Value = cmd.query_async(one).await.expect("breakdown step");
                return;
            }
            StepOn::Steps => (&self.steps.0, &self.steps.1, digest(0), digest(i + 1)),
            StepOn::Chain(chain) => {
                let (hash, id, n) = &mut self.chains[chain];
                *n += 1;
                (&*hash, &*id, digest(*n - 1), digest(*n))
            }
        };
        // As the store sends rotate with a family claim and no client: the session hash,
        // the family's grace slot; clock offset, digests, family id, sealed successor.
        cmd.arg(2)
            .arg(hash)
            .arg(format!("{hash}:g:{id}"))
            .arg(0)
            .arg(presented)
            .arg(id)
            .arg(next)
            .arg(&self.sealed);
        let reply: redis::Value = cmd.query_async(one).await.expect("breakdown step");
        assert!(replied(&reply, "rotated"), "{function}: {reply:?}");
    }
}

/// Whether a function's reply is an array whose first item is `tag`.
pub(crate) fn replied(reply: &redis::Value, tag: &str) -> bool {
    matches!(reply, redis::Value::Array(items)
        if matches!(items.first(), Some(redis::Value::BulkString(t)) if t == tag.as_bytes()))
}

/// From the minimal function to rotate's happy path, one step at a time: how much each
/// thing rotate does costs Redis. Functions of the bench libraries (the store's own Lua
/// source) on one family each, in interleaved rounds: wrappers over the library's reader
/// and rules, then the store's `rotate` itself under three policies. Beside each step, the
/// Redis commands it ran and their time.
pub(crate) async fn breakdown(
    server: &RedisServer,
    conn: &mut MultiplexedConnection,
    opts: &Options,
) {
    flushall(conn).await;
    let client = redis::Client::open(server.url()).expect("a client");
    let mut one = client
        .get_multiplexed_async_connection()
        .await
        .expect("connect");
    load_bench_library(&mut one).await;
    let steps = Breakdown::family(&mut one, "breakdown-steps", IDLE_MS).await;
    let mut chains = Vec::new();
    // The policies with the idle lifetime the absolute one, then the store's defaults.
    for (k, idle_ms) in [ABSOLUTE_MS, ABSOLUTE_MS, IDLE_MS].into_iter().enumerate() {
        let (hash, id) =
            Breakdown::family(&mut one, &format!("breakdown-chain-{k}"), idle_ms).await;
        chains.push((hash, id, 0));
    }
    let mut ctx = Breakdown {
        value: "v".repeat(51),
        sealed: "s".repeat(TOKEN_LEN + 72),
        steps,
        chains,
    };
    let mut next = 0u64;
    for step in 0..STEPS.len() {
        ctx.call(&mut one, step, next).await;
        next += 1;
    }
    let per_round = (opts.calls / 2 / opts.rounds).max(1);
    let mut samples = vec![Vec::new(); STEPS.len()];
    // Per step, the commands its functions ran over every round: (name, calls, usec), and
    // the FCALLs they ran in.
    let mut inner: Vec<(CommandStats, u64)> = vec![(Vec::new(), 0); STEPS.len()];
    for j in 0..opts.rounds {
        for k in 0..STEPS.len() {
            let step = (k + j) % STEPS.len();
            let first = next;
            next += per_round as u64;
            let (ctx, one) = (&mut ctx, &mut one);
            let cost = fcall_cost(conn, per_round, async move {
                for i in first..first + per_round as u64 {
                    ctx.call(one, step, i).await;
                }
            })
            .await;
            if let Some(cost) = cost {
                samples[step].push(cost.usec_per_call);
                // The commands the function ran, from the same batch's statistics.
                let (seen, fcalls) = &mut inner[step];
                *fcalls += cost.calls;
                for (name, calls, usec) in all_command_stats(conn).await {
                    match seen.iter_mut().find(|(n, _, _)| *n == name) {
                        Some((_, c, u)) => {
                            *c += calls;
                            *u += usec;
                        }
                        None => seen.push((name, calls, usec)),
                    }
                }
            }
        }
    }
    flushall(conn).await;
    println!();
    println!(
        "Where rotate's Redis time goes (family claim, happy path): functions of bench \
         libraries holding the store's own Lua source (steps 2–3 wrappers over its record \
         reader, role and step; steps 4–6 its rotate under three policies), each adding one \
         thing to the one before; median of {} rounds of {per_round} calls each (usec per \
         FCALL from INFO commandstats; the commands inside from the same statistics, over \
         every round)",
        opts.rounds
    );
    println!();
    println!("| step | usec per call | added | commands inside: calls × usec per call |");
    println!("|---|---|---|---|");
    let mut line = String::from("RESULT cost_breakdown");
    let mut before = f64::NAN;
    for (step, (name, _, _)) in STEPS.iter().enumerate() {
        let usec = median(&samples[step]);
        let added = match step {
            0 => String::new(),
            _ => format!("{:+.1}", usec - before),
        };
        let (seen, fcalls) = &inner[step];
        let per_fcall = inner_commands(seen, (*fcalls).max(1));
        let inside: Vec<String> = per_fcall
            .iter()
            .map(|(cmd, calls, usec)| format!("{cmd} {calls:.2} × {:.2}", usec / calls))
            .collect();
        let inside_usec: f64 = per_fcall.iter().map(|(_, _, usec)| usec).sum();
        println!(
            "| {name} | {usec:.1} | {added} | {} (sum {inside_usec:.1}) |",
            inside.join(", ")
        );
        line += &format!(" step{step}={usec:.2} step{step}_inside={inside_usec:.2}");
        before = usec;
    }
    println!("{line}");
}
