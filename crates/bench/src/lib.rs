//! The benchmark tooling behind `BENCHMARKS.md`; not published, not an example to copy.
//!
//! - `bench_server` (binary): the Axum example's `/login`, `/refresh` and `/me` in four modes
//!   (the layer on Redis, the layer on the memory store, no layer, the hand-rolled
//!   `GET` + `DEL` + `SETEX`).
//! - `loadgen` (binary): drives a server over HTTP (peak throughput, paced latency, races,
//!   Redis round trips per request).
//! - `false_logouts` (binary, module [`false_logouts`]): false logouts and thefts caught
//!   under client models (fan-out, lost replies, Redis paused or refusing, thieves), on the
//!   Axum example and a `redis-server` of its own.
//! - `store_scale` (binary): Redis cost per store operation, memory per session, keyspace
//!   scale, on a `redis-server` of its own.
//! - `benches/store.rs`, `benches/layer.rs`: criterion benchmarks of the store and of the
//!   layer in process.
//!
//! `bench/run` builds and runs all of them. The app's own token minting they put behind the
//! layer is `test_support::minter`, which the in-process test apps use too.
#![forbid(unsafe_code)]

pub mod false_logouts;
