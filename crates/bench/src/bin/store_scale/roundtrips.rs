//! Part 4: `FCALL` calls per `register` and per `rotate`, and no other command.

use redis::aio::MultiplexedConnection;
use test_support::RedisServer;
use token_rotation::token_core::StoreConfig;

use crate::population::{
    TOKEN_LEN, mode_key, mode_name, month_ahead, register_users, rotate_each, user,
};
use crate::server::{all_command_stats, flushall, reset_stats, store};

/// Every command clients sent since the last `CONFIG RESETSTAT` but this tool's own
/// (`CONFIG`, `INFO`, `FLUSHALL`, `DBSIZE`) and the ones the functions ran: `(fcalls,
/// others)`, where others names any other command with its count.
pub(crate) async fn sent_commands(conn: &mut MultiplexedConnection) -> (u64, String) {
    let stats = all_command_stats(conn).await;
    let fcalls = stats
        .iter()
        .find(|(name, _, _)| name == "fcall")
        .map_or(0, |(_, calls, _)| *calls);
    // Commands run inside a function are counted too; the store's functions only run these.
    let inside = [
        "time", "hget", "hset", "hdel", "hgetall", "hlen", "pexpire", "pttl", "set", "get", "del",
    ];
    let others: Vec<String> = stats
        .iter()
        .filter(|(name, _, _)| {
            let command = name.split('|').next().unwrap_or_default();
            !matches!(command, "fcall" | "config" | "info" | "flushall" | "dbsize")
                && !inside.contains(&command)
        })
        .map(|(name, calls, _)| format!("{name}:{calls}"))
        .collect();
    (fcalls, others.join(","))
}

pub(crate) async fn round_trips(server: &RedisServer, conn: &mut MultiplexedConnection) {
    let store = store(server, StoreConfig::default());
    let token = "t".repeat(TOKEN_LEN);
    let exp = month_ahead();
    let n = 1000;
    let mut line = String::from("RESULT store_roundtrips");
    for claim in [true, false] {
        flushall(conn).await;
        // Load the library first (the first call after a restart adds a FUNCTION LOAD).
        let mut first = register_users(&store, n..n + 1, 1, claim, exp, user).await;
        rotate_each(&store, &mut first, 1, &token, &|_| exp).await;
        reset_stats(conn).await;
        let mut current = register_users(&store, 0..n, 1, claim, exp, user).await;
        let (fcalls, others) = sent_commands(conn).await;
        let register = fcalls as f64 / n as f64;
        assert!(others.is_empty(), "register sent more than FCALL: {others}");
        reset_stats(conn).await;
        rotate_each(&store, &mut current, 1, &token, &|_| exp).await;
        let (fcalls, others) = sent_commands(conn).await;
        let rotate = fcalls as f64 / n as f64;
        assert!(others.is_empty(), "rotate sent more than FCALL: {others}");
        println!(
            "round trips ({}): {register:.2} FCALL per register, {rotate:.2} per rotate, no \
             other command (INFO commandstats over {n} calls each)",
            mode_name(claim)
        );
        let key = mode_key(claim);
        line += &format!(" {key}_register={register:.2} {key}_rotate={rotate:.2}");
    }
    println!("{line}");
    flushall(conn).await;
}
