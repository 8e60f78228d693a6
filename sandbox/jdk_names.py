"""Public type names of the host's JDK, for the Java harness's shadowing check.

Why: a top-level class in the default package hides a class of the same simple name that the
tests import on demand (``import java.util.*``; ``java.lang`` is always imported so), so code
declaring ``class Arrays`` would decide what the tests' ``Arrays.asList(...)`` returns. The
harness refuses such code; it needs the JDK's names, read once per machine with ``jimage list``.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import threading

_lock = threading.Lock()
_names: frozenset[str] | None = None


def _jdk_home() -> str | None:
    javac = shutil.which("javac", path=os.environ.get("PATH", "") + ":/usr/bin:/bin")
    if javac is None:
        return None
    return os.path.dirname(os.path.dirname(os.path.realpath(javac)))


def type_names() -> frozenset[str]:
    """``{"java.util.Arrays", ...}``: top-level types of java.* and javax.* packages (empty when
    the host has no JDK with ``jimage``; the check is then skipped)."""
    global _names
    with _lock:
        if _names is None:
            _names = _load()
        return _names


def _load() -> frozenset[str]:
    from sandbox.languages import MIRROR_ROOT

    home = _jdk_home()
    modules = os.path.join(home or "", "lib", "modules")
    jimage = os.path.join(home or "", "bin", "jimage")
    if home is None or not os.path.exists(modules) or not os.access(jimage, os.X_OK):
        return frozenset()
    st = os.stat(modules)
    key = hashlib.sha256(f"{modules}\n{st.st_size}\n{st.st_mtime_ns}".encode()).hexdigest()[:12]
    cache = os.path.join(MIRROR_ROOT, f"jdk-names-{key}.txt")
    try:
        with open(cache) as f:
            return frozenset(f.read().split())
    except OSError:
        pass
    try:
        p = subprocess.run([jimage, "list", modules], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in p.stdout.splitlines():
        path = line.strip()
        if path.endswith(".class") and path.startswith(("java/", "javax/")) and "$" not in path \
                and not path.endswith(("module-info.class", "package-info.class")):
            names.add(path[: -len(".class")].replace("/", "."))
    try:
        os.makedirs(MIRROR_ROOT, mode=0o755, exist_ok=True)
        tmp = f"{cache}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write("\n".join(sorted(names)))
        os.replace(tmp, cache)
    except OSError:
        pass
    return frozenset(names)
