#!/usr/bin/env bash
# Runs what deploy/container/build.sh made, as Kubernetes would (the
# image's own user and entrypoint, nothing else in the file system):
#
#   deploy/container/smoke.sh IMAGE
#
# It checks that the binary starts FROM scratch, accepts the Kustomize
# base's configuration, and imports the bundled sample bucket through the
# wasm parsers with every component read from the precompiled cache.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
image=${1:?usage: deploy/container/smoke.sh IMAGE}
binary=target/x86_64-unknown-linux-musl/release/s3logd

fail() {
    echo "smoke: $*" >&2
    exit 1
}

user=$(buildah inspect --type image --format '{{.OCIv1.Config.User}}' "$image")
[ "$user" = 65532:65532 ] || fail "the image runs as '$user', not 65532:65532"

work=$(mktemp -d)
container=$(buildah from --pull-never "$image")
trap 'buildah rm "$container" >/dev/null; rm -rf "$work"' EXIT
in_image() {
    buildah run --isolation chroot "$container" -- /usr/local/bin/s3logd "$@"
}

in_image --version

buildah copy --quiet "$container" deploy/kubernetes/base/s3logd.toml /etc/s3logd/s3logd.toml
in_image check-config /etc/s3logd/s3logd.toml >/dev/null ||
    fail "the Kustomize base's s3logd.toml does not pass check-config in the image"

# The sample bucket links to the parsers' samples: copied as files.
cp -rL samples/my-log-bucket "$work/bucket"
buildah copy --quiet --chown 65532:65532 "$container" "$work/bucket" /tmp/my-log-bucket
buildah config --env S3LOGD_LOG_LEVEL=debug "$container"
in_image import --checkpoint /tmp/import.checkpoint /tmp/my-log-bucket \
    >"$work/records" 2>"$work/log" ||
    fail "import failed in the image: $(tail -n 5 "$work/log")"
# The same (static) binary on this machine, with its file system around it.
expected=$("$binary" import --checkpoint "$work/checkpoint" samples/my-log-bucket 2>/dev/null | wc -l)
records=$(wc -l <"$work/records")
[ "$records" -gt 0 ] && [ "$records" -eq "$expected" ] ||
    fail "the image imported $records records of the samples, its binary outside it $expected"
if grep -q "compiling a component the cache does not hold" "$work/log"; then
    fail "a parser was compiled at start: the image's cache is not the one its binary reads"
fi
echo "smoke: $image imported $records records, every parser from its cache"
