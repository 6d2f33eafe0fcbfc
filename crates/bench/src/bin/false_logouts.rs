//! False logouts and thefts caught, per scenario, on the Axum example and a `redis-server`
//! of its own (see `token_rotation_bench::false_logouts`). Build the examples first, in the
//! same profile:
//!
//! ```sh
//! cargo build --release --example axum_app --example oauth_server -p token-rotation
//! cargo run --release -p token-rotation-bench --bin false_logouts            # every scenario
//! cargo run --release -p token-rotation-bench --bin false_logouts -- --smoke # a few seconds each
//! ```

use clap::Parser;
use token_rotation_bench::false_logouts::{HEADER, SCENARIOS, Size, run};

/// False logouts per 1 000 sessions and thefts caught, per scenario, with the seeds used.
#[derive(Parser)]
struct Args {
    /// Tiny counts and short fault runs (the test suite's size).
    #[arg(long)]
    smoke: bool,
    /// One scenario instead of all of them.
    #[arg(long)]
    scenario: Option<String>,
    /// The seed of the first scenario; each next one adds 1.
    #[arg(long, default_value_t = 2026)]
    seed: u64,
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let size = if args.smoke { Size::SMOKE } else { Size::FULL };
    let chosen: Vec<&'static str> = match &args.scenario {
        Some(name) => vec![
            SCENARIOS
                .into_iter()
                .find(|s| s == name)
                .unwrap_or_else(|| panic!("no scenario {name:?}; the scenarios: {SCENARIOS:?}")),
        ],
        None => SCENARIOS.to_vec(),
    };
    println!("{HEADER}");
    for (i, scenario) in chosen.into_iter().enumerate() {
        let report = run(scenario, args.seed + i as u64, size).await;
        println!("{}", report.row());
    }
}
