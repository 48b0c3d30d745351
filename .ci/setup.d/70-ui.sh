#!/usr/bin/env bash
# What the web UI's tests need (internal/ui): Debian's chromium, driven
# headless by chromedp (the tests start it with a fresh profile and no
# network of its own), and axe-core, the accessibility checker the browser
# test injects into each page, installed from the npm registry at a pinned
# version into /opt/lading-axe (the tests read LADING_AXE, default
# /opt/lading-axe/node_modules/axe-core/axe.min.js). Nothing of axe-core is
# in the repository and nothing of it is served by lading.
# Idempotent and quiet.
set -euo pipefail

AXE_VERSION=4.14.1
AXE_PREFIX=/opt/lading-axe

need=()
dpkg -s chromium >/dev/null 2>&1 || need+=(chromium fonts-dejavu-core)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

installed=$(node -p "require('$AXE_PREFIX/node_modules/axe-core/package.json').version" 2>/dev/null || true)
if [ "$installed" != "$AXE_VERSION" ]; then
	npm install --prefix "$AXE_PREFIX" --no-save --no-audit --no-fund --loglevel=error \
		"axe-core@$AXE_VERSION" >/dev/null
fi
test -s "$AXE_PREFIX/node_modules/axe-core/axe.min.js"
