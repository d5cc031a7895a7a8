//! JSONL tailer
