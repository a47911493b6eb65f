//! Integration tests of the replicated node.

mod byzantine;
mod common;
mod epochs;
mod simulation;
