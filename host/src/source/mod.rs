//! Where the collector's work comes from.

pub mod queue;
