//! The system test suite: real PostgreSQL (a private cluster per target dir), no mocks.

mod eventstore;
mod tidy;
mod support;
