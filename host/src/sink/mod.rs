//! Delivering records to log stores.

pub mod json;
pub mod victorialogs;
