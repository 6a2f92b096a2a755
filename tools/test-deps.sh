#!/bin/sh
# Everything the test suite needs on a fresh Debian 12 machine (run as root):
# the peers and tools the integration tests drive, and a virtualenv with the project.
set -eu
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    python3 python3-venv ca-certificates git procps gcc libc6-dev passwd \
    busybox-static runc crun bubblewrap podman conmon catatonit skopeo umoci docker-registry \
    uidmap slirp4netns nftables iproute2 libseccomp2 apache2-utils strace \
    qemu-system-x86 cpio xz-utils zstd >/dev/null
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
