#!/usr/bin/env bash
# Debian's Chromium for the web page's browser test (test/integration/web.test.ts drives it with
# playwright-core at /usr/bin/chromium; Playwright's own browser download does not work on CI machines).
# Idempotent: does nothing when chromium is already there. Uses apt's lock through flock so that parallel
# installers on the same machine wait instead of failing.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
  echo "chromium: $(chromium --version 2>/dev/null || echo present)"
  exit 0
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO flock /tmp/apt.lock sh -c 'apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core >/dev/null'
echo "chromium: $(chromium --version)"
