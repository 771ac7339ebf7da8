#!/usr/bin/env bash
# Builds s3logd's container image from a fully static binary:
#
#   deploy/container/build.sh [IMAGE]     (default localhost/s3logd:VERSION)
#
# (deploy/container/smoke.sh IMAGE then runs it.)
# Needs the x86_64-unknown-linux-musl target (added here through rustup),
# musl-gcc for aws-lc's C (Debian: musl-tools) and buildah (Debian:
# buildah; rootless or root, no daemon). The binary is built with the
# workspace's release profile; the parsers are compiled ahead with it, so
# the image's cold start compiles none.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
target=x86_64-unknown-linux-musl
cd "$root"
version=$(cargo pkgid -p s3logd | sed 's/.*[#@]//')
image=${1:-localhost/s3logd:$version}

rustup target add "$target" >/dev/null
cargo build --release --locked --target "$target" -p s3logd --bin s3logd
binary=target/$target/release/s3logd
if readelf --dynamic "$binary" | grep -q NEEDED; then
    echo "$binary needs shared libraries: it would not run FROM scratch" >&2
    exit 1
fi

context=target/container-context
rm -rf "$context"
mkdir -p "$context/parser-cache"
# /tmp for checkpoints and spools when nothing is mounted there; copied
# as a directory's content, so that it keeps its mode.
mkdir -p "$context/root"
mkdir -m 1777 "$context/root/tmp"
cp "$binary" "$context/s3logd"
strip "$context/s3logd"
cp deploy/container/Containerfile "$context/"
cp /etc/ssl/certs/ca-certificates.crt "$context/"
printf 'root:x:0:0:root:/:/sbin/nologin\ns3logd:x:65532:65532:s3logd:/nonexistent:/sbin/nologin\n' >"$context/passwd"
# Listing the parsers loads, and so compiles and caches, every one. The
# cache stays root's and not writable by the user s3logd runs as.
chmod 755 "$context/parser-cache"
S3LOGD_CACHE_DIR="$context/parser-cache" "$context/s3logd" parsers >/dev/null
chmod -R a+rX,go-w "$context/parser-cache" "$context/s3logd"

buildah bud --isolation chroot --layers=false -t "$image" -f "$context/Containerfile" "$context"
echo "$image"
