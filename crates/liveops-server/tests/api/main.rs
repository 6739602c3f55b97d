//! Black-box API tests: a real server on a random port, hit over HTTP (zero2prod `tests/api`).

mod admin;
mod engines;
mod fairness;
mod helpers;
mod ingest;
mod leaderboards;
mod on_engines;
mod openapi;
mod ops;
mod progression;
mod redis;
mod sessions;
mod stream;
mod web;
