//! Delivering records to log stores.
