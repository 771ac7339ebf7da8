//! Running parser components: engine, loading, sandbox, sessions.
