#!/usr/bin/env bash
# The browser tests (tests/bot/web/test_browser.py) drive Debian's chromium with Playwright:
# Playwright's own browser download is not reachable, so install the distribution's package
# when it is missing (apt only then). SLAM_CHROMIUM names another binary.
set -u
CHROMIUM="${SLAM_CHROMIUM:-/usr/bin/chromium}"
if [ -x "$CHROMIUM" ]; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
  echo "chromium is missing; installing Debian's chromium for the browser tests"
  SUDO=""
  if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi
  if $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
      chromium >/dev/null; then
    exit 0
  fi
fi
echo "warning: could not install chromium at $CHROMIUM; the browser tests will fail" >&2
exit 0
