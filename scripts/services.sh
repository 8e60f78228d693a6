#!/usr/bin/env bash
# Start the services tests use, if they can run here: the Docker engine (for the docker
# sandbox backend). Prints what it did; never fails the caller.
set -uo pipefail
if command -v docker >/dev/null 2>&1 && ! docker info >/dev/null 2>&1; then
  if command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    (setsid dockerd >/tmp/codecorpus-dockerd.log 2>&1 &)
    for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  fi
fi
if docker info >/dev/null 2>&1; then
  echo "services: docker engine up"
  # Build the sandbox image once per machine (tagged by the build script's hash).
  bash sandbox/image/build_image.sh >/dev/null 2>&1 || echo "services: sandbox image build failed (docker tests will say why)"
else echo "services: no docker engine (docker tests will skip)"; fi
exit 0
