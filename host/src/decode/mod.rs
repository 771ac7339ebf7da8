//! Decompression by magic bytes and cutting streams into batches of whole lines.
