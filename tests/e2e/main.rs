//! End-to-end tests: real `central-bank` and `intermediary` processes on loopback, talking over
//! authenticated p2p, each with its own database; transactions submitted over HTTP.

mod central_bank;
mod harness;
mod replication;
