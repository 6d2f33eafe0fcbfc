//! A short run of the false-logout harness with fixed seeds: a regression in the replay
//! window, the replay cap, the outage handling, reuse detection or key binding fails here.
//! It drives the Axum and OAuth examples' binaries, which `cargo test --workspace` builds
//! beside this test (alone: `cargo build --examples -p token-rotation` first), on
//! `redis-server`s of its own.

use token_rotation_bench::false_logouts::{Report, Size, run};

async fn smoke(scenario: &'static str, seed: u64) -> Report {
    let report = run(scenario, seed, Size::SMOKE).await;
    println!("{}", report.row());
    report
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn legitimate_clients_are_never_logged_out_and_every_late_copy_is_caught() {
    // Sixteen parallel refreshes of one token at every round.
    let report = smoke("fanout-16", 16).await;
    assert_eq!(report.false_logouts, 0, "{report:?}");
    assert_eq!(
        report.granted,
        16 * Size::SMOKE.sessions * Size::SMOKE.rounds
    );

    // A fifth of the replies lost after the app answered, retried with backoff past a 2 s
    // and a 10 s grace window.
    for (scenario, seed) in [("lost-20-grace-2", 202), ("lost-20-grace-10", 2010)] {
        let report = smoke(scenario, seed).await;
        assert_eq!(report.false_logouts, 0, "{report:?}");
        assert!(report.lost > 0, "the proxy dropped nothing: {report:?}");
    }

    // Redis paused 0.7 s every 3 s, then killed and started again, under a 1 s client
    // timeout.
    for (scenario, seed) in [("redis-paused", 7), ("redis-refusing", 8)] {
        let report = smoke(scenario, seed).await;
        assert_eq!(report.false_logouts, 0, "{report:?}");
        assert!(report.granted > 0, "{report:?}");
    }

    // A copy replayed after the window ends its session, every time.
    let report = smoke("thief-bearer", 99).await;
    assert_eq!(report.false_logouts, 0, "{report:?}");
    assert_eq!(report.thefts, Size::SMOKE.sessions, "{report:?}");
    assert_eq!(report.caught, report.thefts, "{report:?}");

    // A copy of a DPoP-bound session's token, presented with another key inside the window
    // and after it, is refused every time, and the owner goes on.
    let report = smoke("thief-dpop", 98).await;
    assert_eq!(report.false_logouts, 0, "{report:?}");
    assert_eq!(report.thefts, 2 * Size::SMOKE.sessions, "{report:?}");
    assert_eq!(report.caught, report.thefts, "{report:?}");
}
