#!/usr/bin/env bash
# Build the docker sandbox image with no registry: a root filesystem from Debian packages,
# then `docker import`. Two sources for that root:
#   host (default on Debian): the files of the installed toolchain packages and everything
#     they depend on (dpkg -L over the dependency closure), the same binaries bwrap runs;
#   debootstrap (--debootstrap, or when the host is not Debian): a fresh Debian minbase root
#     with the toolchain packages, downloaded from a Debian mirror.
# The image is tagged codecorpus-sandbox:<hash of this script + package versions>, so a
# rebuild only happens when either changes. Prints the tag on its last line.
#   build_image.sh [--print-tag] [--debootstrap] [--force] [--mirror URL]
set -euo pipefail

ROOT_PKGS="bash dash coreutils python3.11 python3.11-minimal libpython3.11-stdlib gcc-12 g++-12 libc6-dev libstdc++-12-dev openjdk-17-jdk-headless nodejs"
# Go (and testify, which HumanEval-X's Go tests import) when the host has them
# (scripts/system_deps.sh installs both); without them the image simply has no Go.
OPTIONAL_PKGS="golang-go golang-github-stretchr-testify-dev"
DEBOOTSTRAP_PKGS="python3,gcc,g++,openjdk-17-jdk-headless,nodejs,golang-go,golang-github-stretchr-testify-dev"
REPO="codecorpus-sandbox"
MODE=host
PRINT_TAG=0
FORCE=0
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
while [ $# -gt 0 ]; do
  case "$1" in
    --print-tag) PRINT_TAG=1 ;;
    --debootstrap) MODE=debootstrap ;;
    --force) FORCE=1 ;;
    --mirror) MIRROR="$2"; shift ;;
    -h|--help) sed -n '2,11p' "$0"; exit 0 ;;
    *) echo "build_image.sh: unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
if [ "$MODE" = host ] && ! command -v dpkg-query >/dev/null 2>&1; then MODE=debootstrap; fi

# Dependency closure of the root packages among installed packages (alternatives: the first
# installed one; virtual packages: their installed providers).
closure() {
  dpkg-query -W -f='${Package}\t${db:Status-Abbrev}\t${Provides}\t${Pre-Depends}, ${Depends}\n' | python3 -c '
import re, sys
roots = sys.argv[1].split()
inst, provides, deps = set(), {}, {}
for line in sys.stdin:
    name, status, prov, dep = (line.rstrip("\n").split("\t") + ["", "", ""])[:4]
    if not status.startswith("ii"):
        continue
    inst.add(name)
    deps[name] = dep
    for p in filter(None, (re.split(r"[ (]", x.strip())[0] for x in prov.split(","))):
        provides.setdefault(p.split(":")[0], []).append(name)
def pick(alts):
    for a in alts:
        n = re.split(r"[ (]", a.strip())[0].split(":")[0]
        if n in inst:
            return [n]
        if n in provides:
            return provides[n][:1]
    return []
seen, todo = set(), [r for r in roots if r in inst]
missing = [r for r in roots if r not in inst]
if missing:
    sys.exit("missing on host: " + " ".join(missing))
while todo:
    p = todo.pop()
    if p in seen:
        continue
    seen.add(p)
    for group in filter(None, (g.strip() for g in deps.get(p, "").split(","))):
        todo.extend(pick(group.split("|")))
print("\n".join(sorted(seen)))
' "$ROOT_PKGS"
}

if [ "$MODE" = host ]; then
  for p in $OPTIONAL_PKGS; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] && ROOT_PKGS="$ROOT_PKGS $p"
  done
  PKGS=$(closure)
  VERSIONS=$(dpkg-query -W -f='${Package}=${Version}\n' $PKGS)
else
  VERSIONS="debootstrap bookworm $DEBOOTSTRAP_PKGS"
fi
HASH=$( { cat "$0"; echo "$MODE"; echo "$VERSIONS"; } | sha256sum | cut -c1-16)
TAG="$REPO:$HASH"
if [ "$PRINT_TAG" = 1 ]; then echo "$TAG"; exit 0; fi
if [ "$FORCE" = 0 ] && docker image inspect "$TAG" >/dev/null 2>&1; then echo "$TAG"; exit 0; fi

STAGE=$(mktemp -d /tmp/codecorpus-image-XXXXXX)
trap 'rm -rf "$STAGE"' EXIT
mkdir -p "$STAGE/extra/etc" "$STAGE/extra/opt/codecorpus" "$STAGE/extra/work" "$STAGE/extra/src" \
         "$STAGE/extra/build" "$STAGE/extra/tmp"
printf 'root:x:0:0::/root:/bin/sh\nsandbox:x:65534:65534::/work:/bin/sh\n' > "$STAGE/extra/etc/passwd"
printf 'root:x:0:\nsandbox:x:65534:\n' > "$STAGE/extra/etc/group"
printf '127.0.0.1 localhost sandbox\n::1 localhost\n' > "$STAGE/extra/etc/hosts"

# Toolchain manifest (read by sandbox/backends/docker.py from the image label): run inside the
# root it describes (host python for the host root, chroot for a debootstrap root).
cat > "$STAGE/manifest.py" <<'PY'
import json, os, shutil, subprocess
def real(name):
    p = shutil.which(name, path="/usr/bin:/bin")
    return os.path.realpath(p) if p else ""
def ver(cmd):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        return (p.stdout + p.stderr).strip().splitlines()[0]
    except Exception:
        return ""
py = real("python3.11") or real("python3")
javac = real("javac")
java = os.path.join(os.path.dirname(javac), "java") if javac else ""
cc, cxx, node, bash = real("gcc-12") or real("gcc"), real("g++-12") or real("g++"), real("node") or real("nodejs"), real("bash")
m = {
    "python": {"tools": {"python": py}, "version": ver([py, "--version"]) if py else ""},
    "java": {"tools": {"javac": javac, "java": java}, "version": ver([javac, "-version"]) if javac else ""},
    "c": {"tools": {"cc": cc}, "version": ver([cc, "--version"]) if cc else ""},
    "cpp": {"tools": {"cc": cxx}, "version": ver([cxx, "--version"]) if cxx else ""},
    "javascript": {"tools": {"node": node}, "version": ("node " + ver([node, "--version"]).lstrip("v")) if node else ""},
    "bash": {"tools": {"bash": bash}, "version": ver([bash, "--version"]) if bash else ""},
}
go = real("go")
if go:
    # Same settings as the bwrap backend (sandbox/languages.py); the warm cache is built below.
    goroot = os.path.dirname(os.path.dirname(go))
    gopath = "/tmp/go:/usr/share/gocode" if os.path.isdir("/usr/share/gocode") else "/tmp/go"
    env = {"GOROOT": goroot, "GOCACHE": "/tmp/go-cache", "GOPATH": gopath, "GO111MODULE": "off",
           "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false", "GOTOOLCHAIN": "local",
           "PATH": goroot + "/bin:/usr/bin:/bin"}
    tools = {"go": go}
    if os.path.isdir("/opt/codecorpus/go-warm/cache") or os.environ.get("GO_WARM"):
        tools["warm_cache"] = "/opt/codecorpus/go-warm"
    m["go"] = {"tools": tools, "env": env, "version": ver([go, "version"])}
print(json.dumps({k: v for k, v in m.items() if all(v["tools"].values())}, sort_keys=True))
PY

if [ "$MODE" = host ]; then
  LIST="$STAGE/files.txt"
  # Files of every package in the closure, minus docs/man/locales and JDK sources/jmods.
  # Paths are canonicalised through the merged-/usr links (/bin/bash -> /usr/bin/bash), so
  # /bin etc. stay links in the image.
  { for l in /bin /lib /lib64 /sbin; do [ -L "$l" ] && printf '%s\n' "$l"; done
    dpkg -L $PKGS 2>/dev/null; find /etc/alternatives /etc/ld.so.cache /usr/lib/locale/C.utf8 2>/dev/null
    # bytecode Debian compiles at install time (not in dpkg -L): without it every import in
    # the read-only image recompiles the stdlib (json alone ~250 ms).
    find /usr/lib/python3.11 -name '*.pyc' -path '*__pycache__*' 2>/dev/null; } \
    | grep -Ev '^/(\.|usr/share/(doc|man|info|locale|lintian|bug)/|usr/lib/jvm/[^/]+/(jmods|lib/src\.zip))' \
    | python3 -c '
import os, sys
seen = set()
for line in sys.stdin:
    p = line.rstrip("\n")
    if not (os.path.islink(p) or os.path.isfile(p)):
        continue
    canon = os.path.join(os.path.realpath(os.path.dirname(p)), os.path.basename(p))
    if canon not in seen:
        seen.add(canon)
        print(canon)
' | sort -u > "$LIST"
  # Go: a GOCACHE with testing + testify compiled (same paths and settings as in the image), so
  # a compile there takes ~0.3 s instead of ~3 s; each step copies it into its own /tmp.
  GO_WARM=""
  if command -v go >/dev/null 2>&1 && [ -d /usr/share/gocode/src/github.com/stretchr/testify ]; then
    mkdir -p "$STAGE/gowarm/src" "$STAGE/extra/opt/codecorpus/go-warm"
    printf 'package main\n\nimport (\n\t"testing"\n\n\t"github.com/stretchr/testify/assert"\n)\n\nfunc TestWarm(t *testing.T) { assert.New(t).Equal(1, 1) }\n' \
      > "$STAGE/gowarm/src/warm_test.go"
    if (cd "$STAGE/gowarm/src" && env GOROOT="$(dirname "$(dirname "$(readlink -f "$(command -v go)")")")" \
          GOCACHE="$STAGE/extra/opt/codecorpus/go-warm/cache" GOPATH="$STAGE/gowarm/gp:/usr/share/gocode" \
          GO111MODULE=off CGO_ENABLED=0 GOFLAGS=-buildvcs=false GOTOOLCHAIN=local \
          go test -c -vet=off -o "$STAGE/gowarm/warm.test" warm_test.go >&2); then
      chmod -R a+rX "$STAGE/extra/opt/codecorpus/go-warm"
      GO_WARM=1
    fi
  fi
  GO_WARM=$GO_WARM python3 "$STAGE/manifest.py" > "$STAGE/extra/opt/codecorpus/toolchains.json"
  LABEL=$(base64 -w0 < "$STAGE/extra/opt/codecorpus/toolchains.json")
  echo "build_image.sh: $(wc -l < "$LIST") files from $(echo $PKGS | wc -w) packages" >&2
  # One tar stream: host files (paths made relative) then the generated extras.
  sed 's|^/||' "$LIST" > "$STAGE/rel.txt"
  tar --no-recursion -cf "$STAGE/root.tar" -C / -T "$STAGE/rel.txt"
  # tmpfs mounts copy the mode of the image's directory: the per-run dirs must be 1777.
  chmod 1777 "$STAGE/extra/work" "$STAGE/extra/src" "$STAGE/extra/build" "$STAGE/extra/tmp"
  tar -rf "$STAGE/root.tar" -C "$STAGE/extra" --owner=0 --group=0 etc/passwd etc/group etc/hosts opt work src build tmp
else
  command -v debootstrap >/dev/null || { echo "build_image.sh: debootstrap not installed" >&2; exit 3; }
  ROOTFS="$STAGE/rootfs"
  debootstrap --variant=minbase --include="$DEBOOTSTRAP_PKGS" bookworm "$ROOTFS" "$MIRROR" >&2
  rm -rf "$ROOTFS"/usr/share/doc/* "$ROOTFS"/usr/share/man/* "$ROOTFS"/var/cache/apt/archives/*.deb
  chmod 1777 "$STAGE/extra/work" "$STAGE/extra/src" "$STAGE/extra/build" "$STAGE/extra/tmp"
  cp -a "$STAGE/extra/." "$ROOTFS/"
  chroot "$ROOTFS" /bin/sh -c 'command -v nodejs >/dev/null && [ ! -e /usr/bin/node ] && ln -s nodejs /usr/bin/node; true'
  cp "$STAGE/manifest.py" "$ROOTFS/tmp/manifest.py"
  chroot "$ROOTFS" /usr/bin/python3 /tmp/manifest.py > "$ROOTFS/opt/codecorpus/toolchains.json"
  rm -f "$ROOTFS/tmp/manifest.py"
  LABEL=$(base64 -w0 < "$ROOTFS/opt/codecorpus/toolchains.json")
  tar -cf "$STAGE/root.tar" -C "$ROOTFS" .
fi
docker import \
  --change 'USER 65534:65534' --change 'WORKDIR /work' --change 'ENV PATH=/usr/bin:/bin LANG=C.UTF-8' \
  --change 'CMD ["/usr/bin/sleep", "infinity"]' \
  --change "LABEL codecorpus.sandbox.image=1 codecorpus.toolchains=$LABEL" \
  "$STAGE/root.tar" "$TAG" >&2
# Older builds of this image are dead weight: drop those no container uses and that are over a
# day old (a younger one may belong to another checkout on this machine, e.g. a git worktree).
docker images "$REPO" --format '{{.Repository}}:{{.Tag}} {{.CreatedAt}}' | while read -r ref day time zone _; do
  [ "$ref" = "$TAG" ] && continue
  age=$(( $(date +%s) - $(date -d "$day $time $zone" +%s 2>/dev/null || date +%s) ))
  [ "$age" -gt 86400 ] && docker rmi "$ref" >/dev/null 2>&1 || true
done
echo "$TAG"
