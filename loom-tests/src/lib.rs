//! Loom models of keepwatch live in `tests/`.
