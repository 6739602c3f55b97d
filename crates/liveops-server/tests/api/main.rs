//! Black-box API tests: a real server on a random port, hit over HTTP (zero2prod `tests/api`).
//! Each test runs on the embedded backends and on the engines: see [`engines`].

#[macro_use]
extern crate liveops_test_macros;

mod admin;
mod engines;
mod fairness;
mod helpers;
mod ingest;
mod leaderboards;
mod openapi;
mod ops;
mod progression;
mod redis;
mod sessions;
mod stream;
mod web;
