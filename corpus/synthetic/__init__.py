"""Executor-validated synthetic code (the report's synthetic pretraining data).

Programs with their tests are generated (by an LLM from seed topics and corpus snippets, or
offline from corpus functions), executed in the sandbox, and only passing programs are kept,
then decontaminated. See ``generate.py``.
"""

from corpus.synthetic.generate import (
    SYNTHETIC_SCHEMA,
    ChatProgramSource,
    OfflineProgramSource,
    Program,
    SynthStats,
    build_synthetic,
)

__all__ = ["SYNTHETIC_SCHEMA", "ChatProgramSource", "OfflineProgramSource", "Program", "SynthStats",
           "build_synthetic"]
