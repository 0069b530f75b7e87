#!/bin/sh
# Builds, then runs the tests: vectors (test/vectors/native) and live (a server on SB_PORT, or one started here).
set -eu
cd "$(dirname "$0")"
./build.sh >/dev/null
SB_REPO_ROOT=${SB_REPO_ROOT:-$(cd ../.. && pwd)} exec mono build/Switchboard.Tests.exe "${1:-all}"
