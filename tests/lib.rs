//! The system test suite lives in `it/`; this library is empty on purpose.
