#!/bin/sh
# Installs what the tests need: strace watches the blob store fsync (test/unit/store/fs-blob-store.test.ts), tmux
# drives the terminal client (test/integration/cli.test.ts), redis-server is
# started privately by the cluster test to restart it; and for the clients (test/interop/*.test.ts): g++ and cmake (and make) for clients/cpp, Mono
# for clients/csharp, lighttpd for clients/cgi, python3 for clients/python and clients/cgi. Idempotent: a second
# run installs nothing. Debian/Ubuntu (apt-get); needs root or sudo. Called by .ci/run.
set -eu

PACKAGES="gcc g++ cmake make mono-mcs mono-runtime lighttpd python3 tmux redis-server strace"

missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
  echo "install-toolchains: all present ($PACKAGES)"
  exit 0
fi

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "install-toolchains: installing$missing"
# The lock keeps concurrent installers on one machine from tripping over dpkg's own lock.
LOCK=/tmp/apt.lock
if command -v flock >/dev/null 2>&1; then
  $SUDO flock "$LOCK" sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$missing"
else
  $SUDO sh -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$missing"
fi
# lighttpd's package enables and starts a system service on port 80; the tests start their own on a free port.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet lighttpd 2>/dev/null; then
  $SUDO systemctl disable --now lighttpd >/dev/null 2>&1 || true
fi
