#!/usr/bin/env bash
# Debian packages the sandbox, its tests and the embedded default use: bubblewrap (default
# sandbox backend), docker.io (docker backend), debootstrap (sandbox image), the toolchains and
# libraries HumanEval-X needs (below), python3-doc (real code documentation for the text-code
# classifier), postgresql (the Postgres instance tests start a throw-away server), chromium (the
# browser test drives it with Playwright). Installs only what is missing;
# without root it prints what to install and carries on (the tests skip with reasons).
set -uo pipefail
need=()
command -v bwrap >/dev/null 2>&1 || need+=(bubblewrap)
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
command -v g++ >/dev/null 2>&1 || need+=(g++)
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
command -v node >/dev/null 2>&1 || need+=(nodejs)
# HumanEval-X in the sandbox: Go + testify (Go tests), boost headers (CPP/22), libcrypto (CPP/162),
# rustc + the crates its Rust tests use, as Debian sources built offline (sandbox/languages.py).
command -v go >/dev/null 2>&1 || need+=(golang-go)
[ -d /usr/share/gocode/src/github.com/stretchr/testify ] || need+=(golang-github-stretchr-testify-dev)
[ -f /usr/include/boost/any.hpp ] || need+=(libboost-dev)
[ -f /usr/include/openssl/md5.h ] || need+=(libssl-dev)
{ command -v rustc >/dev/null 2>&1 || [ -x "$HOME/.cargo/bin/rustc" ]; } || need+=(rustc cargo)
for crate in rand regex md5 aho-corasick memchr; do
  ls -d /usr/share/cargo/registry/"$crate"-[0-9]* >/dev/null 2>&1 || need+=("librust-$crate-dev")
done
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
