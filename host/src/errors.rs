//! Error text for logs and failure details, shared by every source, the
//! object path and the sinks.

/// An error with every cause after it, `: `-separated. The AWS SDK's errors
/// say little at the top level ("service error"); the causes say what
/// happened.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// What a panic said, from the payload a `JoinError` or `catch_unwind`
/// hands back.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}
