//! The system test suite: real PostgreSQL (a private cluster per target dir), no mocks.

mod anchor;
mod bench_tasks;
mod browser;
mod cases;
mod checkpoint_first;
mod commit_durability;
mod corrections;
mod demo;
mod directory;
mod eventstore;
mod figures;
mod freshness;
mod gp_outbox;
mod history;
mod http;
mod journey;
mod live;
mod outcomes;
mod personal_scan;
mod pool;
mod privacy;
mod projections;
mod rebuild_all;
mod support;
mod tidy;
mod upgrade;
