#!/usr/bin/env bash
# `make image`: the Dockerfile's image, built without Docker and without any registry but Debian's and PyPI.
# mmdebstrap makes a Debian bookworm root filesystem (python3 from Debian), the project's wheel and its
# dependencies go into a venv inside it, and umoci packs it as an OCI image with the Dockerfile's config.
# Needs root (chroot), mmdebstrap and umoci (apt-get install mmdebstrap umoci).
# Usage: image/build.sh OUTPUT.tar [PYTHON]   (OUTPUT.tar: an OCI archive, as `skopeo copy oci-archive:` reads)
set -euo pipefail

output=$(realpath -m "${1:?usage: image/build.sh OUTPUT.tar [PYTHON]}")
python=${2:-python3}
repo=$(cd "$(dirname "$0")/.." && pwd)
version=$("$python" -c 'import tomllib,sys; print(tomllib.load(open(sys.argv[1], "rb"))["project"]["version"])' \
    "$repo/pyproject.toml")
tag=$version
uid=10001
source_url=https://github.com/pyrollouts/pyrollouts
suite=bookworm
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}

for tool in mmdebstrap umoci; do
    command -v "$tool" >/dev/null || { echo "image/build.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "image/build.sh: must run as root (mmdebstrap and chroot)" >&2; exit 1; }
# The dependency wheels and the config's architecture are x86_64's (amd64).
[ "$(uname -m)" = x86_64 ] || { echo "image/build.sh: builds amd64 images on x86_64 only" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# 1. The wheel, built from a copy so the source tree gets no build/ or egg-info.
mkdir "$work/src"
cp -r "$repo/pyproject.toml" "$repo/README.md" "$repo/rollouts" "$repo/analysis" "$repo/crds" "$work/src/"
# (setuptools' deprecation warnings kept out of the output, its errors shown)
"$python" -m pip wheel -q --no-deps -w "$work/wheels" "$work/src" 2>"$work/wheel.log" || { cat "$work/wheel.log" >&2; exit 1; }
wheel=$(basename "$work"/wheels/pyrollouts-*.whl)
# Its dependencies as wheels for bookworm's CPython 3.11 on x86_64 (glibc 2.36), fetched by this machine's pip
# (its index and certificates); the chroot installs them with no network.
platforms=()
for glibc in 36 35 34 33 32 31 28 27 26 24 17 12 5; do platforms+=(--platform "manylinux_2_${glibc}_x86_64"); done
"$python" -m pip download -q --only-binary=:all: --python-version 3.11 --implementation cp \
    --abi cp311 --abi abi3 --abi none "${platforms[@]}" --platform manylinux2014_x86_64 --platform any \
    -d "$work/wheels" "$work/wheels/$wheel" 2> >(grep -v 'is ignored' >&2)

# 2. The root filesystem, straight into the bundle umoci packs. Documentation, man pages and locales are
#    left out; the venv is made and filled inside the chroot with Debian's python3.
umoci init --layout "$work/oci"
umoci new --image "$work/oci:$tag"
umoci unpack --image "$work/oci:$tag" "$work/bundle"
rmdir "$work/bundle/rootfs"
mmdebstrap --quiet --variant=essential --include=python3,python3-venv,ca-certificates \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' --dpkgopt='path-exclude=/usr/share/info/*' \
    --customize-hook="cp -r '$work/wheels' \"\$1/wheels\"" \
    --customize-hook='chroot "$1" python3 -m venv /opt/pyrollouts' \
    --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 /opt/pyrollouts/bin/pip install -q --no-index --find-links /wheels /wheels/'"$wheel" \
    --customize-hook='chroot "$1" env -i PATH=/usr/bin:/bin /opt/pyrollouts/bin/pip uninstall -q -y pip' \
    --customize-hook='rm -rf "$1/wheels" "$1/var/lib/apt/lists/"* "$1/var/cache/apt/"* "$1/var/log/"*' \
    --customize-hook="echo 'pyrollouts:x:$uid:$uid:pyrollouts:/home/pyrollouts:/usr/sbin/nologin' >> \"\$1/etc/passwd\"" \
    --customize-hook="echo 'pyrollouts:x:$uid:' >> \"\$1/etc/group\"" \
    --customize-hook="install -d -o $uid -g $uid \"\$1/home/pyrollouts\"" \
    "$suite" "$work/bundle/rootfs" "$mirror"

# 3. One layer and the Dockerfile's config: user, entrypoint, PATH and the OCI labels.
umoci repack --image "$work/oci:$tag" "$work/bundle"
labels=(
    "org.opencontainers.image.title=pyrollouts"
    "org.opencontainers.image.description=Progressive delivery for Kubernetes: the pyrollouts controller"
    "org.opencontainers.image.version=$version"
    "org.opencontainers.image.source=$source_url"
    "org.opencontainers.image.licenses=Apache-2.0"
    "org.opencontainers.image.base.name=debian:$suite"
)
label_args=()
for label in "${labels[@]}"; do
    label_args+=(--config.label "$label" --manifest.annotation "$label")
done
umoci config --image "$work/oci:$tag" --os linux --architecture amd64 \
    --config.user "$uid:$uid" --config.workingdir /home/pyrollouts \
    --config.env PATH=/opt/pyrollouts/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env PYTHONUNBUFFERED=1 \
    --config.entrypoint pyrollouts --config.entrypoint controller --clear=config.cmd \
    "${label_args[@]}"
umoci gc --layout "$work/oci"

mkdir -p "$(dirname "$output")"
tar -C "$work/oci" -cf "$output.partial" .
mv "$output.partial" "$output"
echo "$output: OCI archive, image pyrollouts:$tag, $(du -h "$output" | cut -f1)"
