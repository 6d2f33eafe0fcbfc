//! An example whose listener cannot bind (its port already taken) ends with a one-line
//! message naming the address and the variable to change, and exit status 1: no panic, no
//! backtrace.

mod support;

use std::net::TcpListener;
use std::time::Duration;

/// Runs `name` with `variable` set to an address another socket holds, and checks how it ends.
fn ends_with_a_message(name: &'static str, variable: &str) {
    let taken = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let addr = taken.local_addr().unwrap().to_string();
    // The other listener on a free port, so only `variable` can fail.
    let other = if variable == "BIND_ADDR" {
        "METRICS_ADDR"
    } else {
        "BIND_ADDR"
    };
    let env = [
        (variable, addr.as_str()),
        (other, "127.0.0.1:0"),
        // No warning about a random secret on stderr; a panic would print its backtrace.
        ("JWT_SECRET", "a secret for the bind error test"),
        ("RUST_BACKTRACE", "1"),
    ];
    let output = support::run_to_exit(name, &env, Duration::from_secs(20));
    drop(taken);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(1),
        "{name} with {variable} taken: {stderr}"
    );
    let lowercase = stderr.to_lowercase();
    assert!(
        !lowercase.contains("panicked") && !lowercase.contains("backtrace"),
        "{name} panicked: {stderr}"
    );
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{name}: one line on stderr: {stderr}");
    assert!(
        lines[0].contains(&addr) && lines[0].contains(variable),
        "{name}: the message names {addr} and {variable}: {stderr}"
    );
}

#[test]
fn axum_app_ends_with_a_message_when_its_port_is_taken() {
    ends_with_a_message("axum_app", "BIND_ADDR");
}

#[test]
fn axum_app_ends_with_a_message_when_its_metrics_port_is_taken() {
    ends_with_a_message("axum_app", "METRICS_ADDR");
}

#[test]
fn sessions_page_ends_with_a_message_when_its_port_is_taken() {
    ends_with_a_message("sessions_page", "BIND_ADDR");
}

#[test]
fn sessions_page_ends_with_a_message_when_its_metrics_port_is_taken() {
    ends_with_a_message("sessions_page", "METRICS_ADDR");
}

#[test]
fn hyper_app_ends_with_a_message_when_its_port_is_taken() {
    ends_with_a_message("hyper_app", "BIND_ADDR");
}

#[test]
fn oauth_server_ends_with_a_message_when_its_port_is_taken() {
    ends_with_a_message("oauth_server", "BIND_ADDR");
}

#[test]
fn minimal_ends_with_a_message_when_its_port_is_taken() {
    ends_with_a_message("minimal", "BIND_ADDR");
}
