//! Blocking API (placeholder).
