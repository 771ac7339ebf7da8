# Recipes for working on s3logd. Every recipe is plain cargo/python
# underneath; README.md shows the commands without `just`.

# Import the bundled sample bucket with the bundled parser components, to stdout.
demo:
    cargo run --release -p s3logd -- import --restart samples/my-log-bucket

# Install what the tests need: the wasm target and moto_server in .venv.
setup:
    rustup target add wasm32-wasip2
    python3 -m venv .venv
    .venv/bin/pip install --quiet -r tests/requirements.txt

# Every test of the workspace (installs moto into .venv on first use).
test:
    cargo test --workspace

# Throughput of the parse path and of every bundled parser component.
bench:
    cargo bench -p s3logd --bench parse_path

# Formatting and lints, as CI checks them.
lint:
    cargo fmt --all -- --check
    cargo clippy --workspace --all-targets -- -D warnings

# List the bundled parsers with their patterns and schemas.
parsers:
    cargo run --release -p s3logd -- parsers
