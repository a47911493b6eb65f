//! Integration tests of the replicated node.

mod admission;
mod byzantine;
mod common;
mod epochs;
mod simulation;
