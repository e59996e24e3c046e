//! The output pipeline of a step: bytes → lines → workflow commands → masking → log events.
//! Also the env-file formats (`GITHUB_ENV`, `GITHUB_OUTPUT`, `GITHUB_STATE`, `GITHUB_PATH`).
//!
//! Must not: do IO or async; callers feed bytes and read events.
