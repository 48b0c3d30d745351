#!/usr/bin/env bash
# What the web UI's tests need (internal/ui): Debian's chromium, driven
# headless by chromedp (the tests start it with a fresh profile and no
# network of its own). axe-core is vendored in internal/ui/testdata.
# Idempotent and quiet.
set -euo pipefail

if ! dpkg -s chromium >/dev/null 2>&1; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
fi
