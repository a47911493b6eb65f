//! Integration tests of the ledger core, one module per scenario.

mod chain;
mod decode_fuzz;
mod fixture;
mod golden;
mod properties;
mod rejections;
