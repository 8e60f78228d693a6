"""Sandboxed execution of untrusted (model-generated) code: bwrap or a warm Docker pool.

    import sandbox
    r = sandbox.execute("print(1)", "python", tests="assert 1 == 1")
    r.status  # passed | failed | syntax_error | compile_error | timeout | memory_limit | ...

See sandbox/api.py for the flow and sandbox/backends/ for the isolation each backend gives.
"""

from sandbox.api import available_languages, execute, execute_many, languages_report
from sandbox.result import STATUSES, Request, Result

__all__ = ["Request", "Result", "STATUSES", "available_languages", "execute", "execute_many", "languages_report"]
