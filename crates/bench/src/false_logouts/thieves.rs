//! Thieves: a copied bearer token replayed after the window, and a DPoP-bound token
//! presented with another key.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;

use super::http::{send, send_form, token_of};
use super::report::{Report, Size};
use super::stack::Stack;

/// A thief copies a session's current token at a random moment and replays it after the
/// replay window; the owner goes on refreshing every 0.5 s. The app's replay window is 2 s (grace
/// and retry window), so runs stay short. A theft is caught when the session ends (the
/// thief's replay or the owner's next refresh is refused); the time to detection runs from
/// the copy to the first refusal either gets.
pub(super) async fn thieves(rng: &mut StdRng, seed: u64, size: Size) -> Report {
    let env = [("ROTATION_GRACE_SECS", "2"), ("ROTATION_RETRY_SECS", "2")];
    let stack = Arc::new(Stack::start(&[], &env, seed).await);
    let report = Arc::new(std::sync::Mutex::new(Report::new(
        "thief-bearer",
        seed,
        size.sessions,
    )));
    let mut tasks = Vec::new();
    for s in 0..size.sessions {
        let (stack, report) = (stack.clone(), report.clone());
        let mut rng = StdRng::seed_from_u64(rng.random());
        tasks.push(tokio::spawn(async move {
            let mut token = stack.login(&format!("victim{s}")).await;
            let steal_after = rng.random_range(0..size.rounds.max(1));
            // After the replay window (2 s): by then the owner has used the successor.
            let replay_after = Duration::from_millis(rng.random_range(2500..6000));
            let mut theft: Option<(Instant, String)> = None;
            let mut thief_done = false;
            for round in 0..size.rounds + 20 {
                if round == steal_after {
                    theft = Some((Instant::now(), token.clone()));
                }
                // The thief replays its copy once, `replay_after` after the theft.
                if let Some((at, copy)) = &theft
                    && !thief_done
                    && at.elapsed() >= replay_after
                {
                    thief_done = true;
                    let body = json!({"refresh_token": copy});
                    if let Ok((401, _)) =
                        send(stack.app_port, "POST", "/refresh", Some(&body)).await
                    {
                        let mut report = report.lock().unwrap();
                        report.thefts += 1;
                        report.caught += 1;
                        report.detection_ms.push(at.elapsed().as_millis() as u64);
                        return;
                    }
                }
                let body = json!({"refresh_token": token});
                match send(stack.app_port, "POST", "/refresh", Some(&body)).await {
                    Ok((200, body)) => {
                        report.lock().unwrap().granted += 1;
                        token = token_of(&body);
                    }
                    Ok((401, _)) => {
                        let mut report = report.lock().unwrap();
                        match &theft {
                            Some((at, _)) if thief_done => {
                                report.thefts += 1;
                                report.caught += 1;
                                report.detection_ms.push(at.elapsed().as_millis() as u64);
                            }
                            _ => report.false_logouts += 1,
                        }
                        return;
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // The session outlived the theft: the copy was never told apart.
            if thief_done {
                report.lock().unwrap().thefts += 1;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    let mut report = report.lock().unwrap().clone();
    report.detection_ms.sort_unstable();
    report
}

/// DPoP-bound sessions through the OAuth example (logged in with a proof, so bound to the
/// owner's key): a thief copies the refresh token at a random moment and presents it with
/// proofs by its own key, at once (inside the replay window) and again 2.5 s later (after
/// it, the copy spent); the owner refreshes every 0.5 s with fresh proofs. Every theft must
/// be refused and the owner must go on: a theft counts as caught when it is refused.
pub(super) async fn dpop_thieves(rng: &mut StdRng, seed: u64, size: Size) -> Report {
    use test_support::dpop::DpopKey;
    let env = [("ROTATION_GRACE_SECS", "2"), ("ROTATION_RETRY_SECS", "2")];
    let stack = Arc::new(Stack::start_example("oauth_server", &[], &env, seed).await);
    let report = Arc::new(std::sync::Mutex::new(Report::new(
        "thief-dpop",
        seed,
        size.sessions,
    )));
    let htu = format!("http://127.0.0.1:{}/token", stack.app_port);
    let mut tasks = Vec::new();
    for s in 0..size.sessions {
        let (stack, report, htu) = (stack.clone(), report.clone(), htu.clone());
        let steal_at = rng.random_range(0..size.rounds.max(1));
        tasks.push(tokio::spawn(async move {
            let (owner, thief) = (DpopKey::ed25519(), DpopKey::ed25519());
            let user = format!("dpop{s}");
            let login = [
                ("grant_type", "password"),
                ("username", user.as_str()),
                ("password", "demo"),
            ];
            let Ok((200, body)) = send_form(
                stack.app_port,
                "/token",
                &login,
                &owner.proof("POST", &htu, None),
            )
            .await
            else {
                panic!("a DPoP login failed (seed {})", stack.seed);
            };
            let mut token = token_of(&body);
            let mut copy: Option<(Instant, String)> = None;
            let mut replays_left = 2;
            for round in 0..size.rounds + 8 {
                if round == steal_at {
                    copy = Some((Instant::now(), token.clone()));
                }
                if let Some((at, stolen)) = &copy
                    && replays_left > 0
                    && (replays_left == 2 || at.elapsed() >= Duration::from_millis(2500))
                {
                    replays_left -= 1;
                    let form = [
                        ("grant_type", "refresh_token"),
                        ("refresh_token", stolen.as_str()),
                    ];
                    let answer = send_form(
                        stack.app_port,
                        "/token",
                        &form,
                        &thief.proof("POST", &htu, None),
                    )
                    .await;
                    let mut report = report.lock().unwrap();
                    report.thefts += 1;
                    if matches!(answer, Ok((400 | 401, _))) {
                        report.caught += 1;
                    }
                }
                let form = [
                    ("grant_type", "refresh_token"),
                    ("refresh_token", token.as_str()),
                ];
                match send_form(
                    stack.app_port,
                    "/token",
                    &form,
                    &owner.proof("POST", &htu, None),
                )
                .await
                {
                    Ok((200, body)) => {
                        report.lock().unwrap().granted += 1;
                        token = token_of(&body);
                    }
                    Ok((400 | 401, _)) => {
                        report.lock().unwrap().false_logouts += 1;
                        return;
                    }
                    _ => {}
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }));
    }
    for task in tasks {
        task.await.expect("a session task");
    }
    report.lock().unwrap().clone()
}
