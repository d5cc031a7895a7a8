//! devkit
