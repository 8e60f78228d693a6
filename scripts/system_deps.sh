#!/usr/bin/env bash
# Debian packages the sandbox, its tests and the embedded default use: bubblewrap (default
# sandbox backend), docker.io (docker backend), debootstrap (sandbox image), python3-doc
# (real code documentation for the text-code classifier), postgresql (the Postgres instance
# tests start a throw-away server), chromium (the browser test drives it with Playwright).
# Installs only what is missing;
# without root it prints what to install and carries on (the tests skip with reasons).
set -uo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || need+=(nodejs)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
[ -d /usr/share/doc/python3/html ] || [ -d /usr/share/doc/python3-doc/html ] || need+=(python3-doc)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "system_deps: not root; please install: ${need[*]}" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null 2>&1 || true
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null 2>&1 \
  || apt-get install -y -qq "${need[@]}" >/dev/null \
  || echo "system_deps: could not install ${need[*]}" >&2
exit 0
