#!/usr/bin/env bash
# Builds the deployment package of s3logd for Lambda's provided.al2023
# runtime: a zip holding the binary as `bootstrap`, and optionally the
# configuration (s3logd.toml), custom parsers (parsers/) and those parsers
# compiled ahead (parser-cache/), so that no cold start compiles them.
#
#   deploy/lambda/build.sh ARCH [--config FILE] [--parser FILE.wasm]...
#
# ARCH is arm64 or x86_64. With cargo-lambda on PATH (`pip install
# cargo-lambda`) it builds and links for Lambda's glibc from any machine;
# otherwise plain cargo builds for the target, which needs that target's
# Rust standard library and C toolchain (aws-lc is C) and a glibc no newer
# than Amazon Linux 2023's 2.34 on the building machine. The parsers are
# compiled ahead only when this machine has the function's architecture:
# compiled code is specific to it.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2
    exit 2
}

[ $# -ge 1 ] || usage
arch=$1
shift
case $arch in
arm64) target=aarch64-unknown-linux-gnu machine=aarch64 ;;
x86_64) target=x86_64-unknown-linux-gnu machine=x86_64 ;;
*) usage ;;
esac

config=
parsers=()
while [ $# -gt 0 ]; do
    case $1 in
    --config) config=$2; shift 2 ;;
    --parser) parsers+=("$2"); shift 2 ;;
    *) usage ;;
    esac
done

root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/target/lambda-package/$arch
rm -rf "$out"
mkdir -p "$out/package"

cd "$root"
if command -v cargo-lambda >/dev/null; then
    cargo lambda build --release --bin s3logd --target "$target"
    cp "target/lambda/s3logd/bootstrap" "$out/package/bootstrap"
else
    cargo build --release --bin s3logd --target "$target"
    cp "target/$target/release/s3logd" "$out/package/bootstrap"
fi

if [ -n "$config" ]; then
    cp "$config" "$out/package/s3logd.toml"
fi
if [ ${#parsers[@]} -gt 0 ]; then
    mkdir -p "$out/package/parsers"
    cp "${parsers[@]}" "$out/package/parsers/"
fi
if [ "$(uname -m)" = "$machine" ]; then
    # Listing the parsers loads (and so compiles) every one of them.
    args=()
    [ ${#parsers[@]} -gt 0 ] && args=(--parser "$out/package/parsers")
    mkdir -m 700 "$out/package/parser-cache"
    S3LOGD_CACHE_DIR="$out/package/parser-cache" "$out/package/bootstrap" parsers "${args[@]}" >/dev/null
else
    echo "not compiling the parsers ahead: this machine is $(uname -m), the function $arch" >&2
fi

# Lambda runs the function as a user of its own: everything readable,
# nothing writable but by the owner.
chmod -R a+rX,go-w "$out/package"
(cd "$out/package" && zip -qr "$out/s3logd-lambda-$arch.zip" .)
echo "$out/s3logd-lambda-$arch.zip"
