//! The command line: which parts run, and every count, with the full run's defaults or
//! the smoke run's.

use std::time::Duration;

use clap::Parser;

/// Redis cost per store operation, memory per session and keyspace scale of the Redis
/// store, on a `redis-server` this program starts. Without a part flag every part runs.
/// Each count's default is the full run's, or the `--smoke` run's with `--smoke`.
#[derive(Parser)]
struct Args {
    /// Every count tiny (seconds, for CI).
    #[arg(long)]
    smoke: bool,
    /// Part 1: Redis time per store call.
    #[arg(long)]
    cost: bool,
    /// Part 2: bytes per session and per remembered spent token.
    #[arg(long)]
    memory: bool,
    /// Part 3: `list` and `revoke_all` against the keyspace size.
    #[arg(long)]
    scale: bool,
    /// Part 4: `FCALL` calls per `register` and per `rotate`.
    #[arg(long)]
    roundtrips: bool,
    /// `rotate` calls per cell at R = 0 (cost; default 20000, with --smoke 60).
    #[arg(long)]
    calls: Option<usize>,
    /// Sessions per user, one cell each (cost; default 1,8,64).
    #[arg(long, value_delimiter = ',')]
    per_user: Option<Vec<usize>>,
    /// Prior rotations R of every session, one cell each (cost; default 0,100,1000, with
    /// --smoke 0,10,100).
    #[arg(long, value_delimiter = ',')]
    rotations: Option<Vec<usize>>,
    /// Interleaved rounds (cost; default 10, with --smoke 2).
    #[arg(long)]
    rounds: Option<usize>,
    /// Sessions measured at rest (memory; default 100000, with --smoke 1000).
    #[arg(long)]
    sessions: Option<usize>,
    /// Sessions rotated `--subset-rotations` times (memory; default 250, with --smoke 20).
    #[arg(long)]
    subset: Option<usize>,
    /// Rotations of each session of the subset (memory; default 1000, with --smoke 20).
    #[arg(long)]
    subset_rotations: Option<usize>,
    /// User-agent lengths recorded at login, one population each at 1 and at 10 sessions per
    /// user; 0 = none (memory; default 0,20,40,64,65,100,200,256, with --smoke 0,40,100).
    #[arg(long, value_delimiter = ',')]
    ua_lengths: Option<Vec<usize>>,
    /// Tokens per user per token-expiry hour, without a family claim (memory; default 1,4,60).
    #[arg(long, value_delimiter = ',')]
    rates: Option<Vec<usize>>,
    /// Spent tokens remembered at each rate (memory; default 100000, with --smoke 1200).
    #[arg(long)]
    spent_tokens: Option<usize>,
    /// Seconds the short-lived population lives (memory; default 8, with --smoke 4).
    #[arg(long)]
    lifetime: Option<u64>,
    /// Other sessions in the keyspace, one measurement each (scale; default
    /// 10000,100000,1000000, with --smoke 1000,2000,4000).
    #[arg(long, value_delimiter = ',')]
    sizes: Option<Vec<usize>>,
}

/// The command line with every default filled in.
pub(crate) struct Options {
    pub(crate) smoke: bool,
    pub(crate) cost: bool,
    pub(crate) memory: bool,
    pub(crate) scale: bool,
    pub(crate) roundtrips: bool,
    pub(crate) calls: usize,
    pub(crate) per_user: Vec<usize>,
    pub(crate) rotations: Vec<usize>,
    pub(crate) min_users: usize,
    pub(crate) rounds: usize,
    pub(crate) sessions: usize,
    pub(crate) subset: usize,
    pub(crate) subset_rotations: usize,
    pub(crate) ua_lengths: Vec<usize>,
    pub(crate) rates: Vec<usize>,
    pub(crate) spent_tokens: usize,
    pub(crate) lifetime: Duration,
    pub(crate) sizes: Vec<usize>,
}

/// The full run's default, or the smoke run's.
pub(crate) fn pick<T>(smoke: bool, full: T, tiny: T) -> T {
    if smoke { tiny } else { full }
}

impl Options {
    pub(crate) fn parse() -> Self {
        let args = Args::parse();
        let smoke = args.smoke;
        let all = !(args.cost || args.memory || args.scale || args.roundtrips);
        Options {
            smoke,
            cost: all || args.cost,
            memory: all || args.memory,
            scale: all || args.scale,
            roundtrips: all || args.roundtrips,
            calls: args.calls.unwrap_or(pick(smoke, 20_000, 60)),
            per_user: args.per_user.unwrap_or_else(|| vec![1, 8, 64]),
            rotations: args
                .rotations
                .unwrap_or_else(|| pick(smoke, vec![0, 100, 1000], vec![0, 10, 100])),
            min_users: 3,
            rounds: args.rounds.unwrap_or(pick(smoke, 10, 2)),
            sessions: args.sessions.unwrap_or(pick(smoke, 100_000, 1000)),
            subset: args.subset.unwrap_or(pick(smoke, 250, 20)),
            subset_rotations: args.subset_rotations.unwrap_or(pick(smoke, 1000, 20)),
            ua_lengths: args.ua_lengths.unwrap_or_else(|| {
                pick(
                    smoke,
                    vec![0, 20, 40, 64, 65, 100, 200, 256],
                    vec![0, 40, 100],
                )
            }),
            rates: args.rates.unwrap_or_else(|| vec![1, 4, 60]),
            spent_tokens: args.spent_tokens.unwrap_or(pick(smoke, 100_000, 1200)),
            lifetime: Duration::from_secs(args.lifetime.unwrap_or(pick(smoke, 8, 4))),
            sizes: args.sizes.unwrap_or_else(|| {
                pick(
                    smoke,
                    vec![10_000, 100_000, 1_000_000],
                    vec![1000, 2000, 4000],
                )
            }),
        }
    }
}
