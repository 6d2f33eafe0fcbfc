//! The scenarios, a run's size and what a scenario measured, as a row of the table.

/// The scenarios, by name.
pub const SCENARIOS: [&str; 10] = [
    "fanout-1",
    "fanout-4",
    "fanout-16",
    "lost-5-grace-2",
    "lost-20-grace-2",
    "lost-20-grace-10",
    "redis-paused",
    "redis-refusing",
    "thief-bearer",
    "thief-dpop",
];

/// How big a run is.
#[derive(Clone, Copy, Debug)]
pub struct Size {
    /// Sessions per scenario.
    pub sessions: usize,
    /// Refreshes each session makes (its rounds).
    pub rounds: usize,
    /// How long the Redis fault scenarios run.
    pub fault_secs: u64,
}

impl Size {
    /// The figures of `BENCHMARKS.md`.
    pub const FULL: Size = Size {
        sessions: 200,
        rounds: 5,
        fault_secs: 20,
    };
    /// A few seconds per scenario, for the test suite.
    pub const SMOKE: Size = Size {
        sessions: 24,
        rounds: 3,
        fault_secs: 5,
    };
}

/// What one scenario measured.
#[derive(Clone, Debug)]
pub struct Report {
    /// The scenario's name (one of [`SCENARIOS`]).
    pub scenario: &'static str,
    /// The seed its clients drew from.
    pub seed: u64,
    /// Sessions it drove.
    pub sessions: usize,
    /// Sessions whose own client got a 401 for its own token.
    pub false_logouts: usize,
    /// Refreshes answered 200.
    pub granted: usize,
    /// Refreshes answered 503 (retried).
    pub unavailable: usize,
    /// Refreshes whose reply never came (dropped, or past the client's timeout: retried).
    pub lost: usize,
    /// For the thief scenario: thefts replayed.
    pub thefts: usize,
    /// Thefts that ended the session.
    pub caught: usize,
    /// The time from each caught theft to the first refusal (ms, sorted).
    pub detection_ms: Vec<u64>,
}

impl Report {
    pub(super) fn new(scenario: &'static str, seed: u64, sessions: usize) -> Self {
        Report {
            scenario,
            seed,
            sessions,
            false_logouts: 0,
            granted: 0,
            unavailable: 0,
            lost: 0,
            thefts: 0,
            caught: 0,
            detection_ms: Vec::new(),
        }
    }

    /// False logouts per 1 000 sessions.
    pub fn per_thousand(&self) -> f64 {
        self.false_logouts as f64 * 1000.0 / self.sessions.max(1) as f64
    }

    /// One row of the printed table.
    pub fn row(&self) -> String {
        let thefts = if self.thefts == 0 {
            "–".to_owned()
        } else {
            format!(
                "{:.0} % of {}",
                self.caught as f64 * 100.0 / self.thefts as f64,
                self.thefts
            )
        };
        let detection = match self.detection_ms.as_slice() {
            [] => "–".to_owned(),
            d => format!(
                "p50 {} ms, p95 {} ms, max {} ms",
                d[d.len() / 2],
                d[(d.len() * 95 / 100).min(d.len() - 1)],
                d[d.len() - 1]
            ),
        };
        format!(
            "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} |",
            self.scenario,
            self.seed,
            self.sessions,
            self.per_thousand(),
            self.granted,
            self.unavailable,
            self.lost,
            thefts,
            detection
        )
    }
}

/// The table's header.
pub const HEADER: &str = "| scenario | seed | sessions | false logouts per 1 000 | 200s | 503s | lost replies | thefts caught | theft to detection |\n|---|---:|---:|---:|---:|---:|---:|---|---|";
