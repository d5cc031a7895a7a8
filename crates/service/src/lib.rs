//! shared daemon plumbing
