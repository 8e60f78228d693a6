"""Fixtures for decontamination tests: real benchmark items, no synthetic stand-ins."""

from __future__ import annotations

import gzip
import json
import os

import pytest

from corpus.decontam import Decontaminator
from corpus.decontam.benchmarks import DATA_DIR


@pytest.fixture(scope="session")
def decon() -> Decontaminator:
    return Decontaminator.from_config()


@pytest.fixture(scope="session")
def humaneval() -> list[dict]:
    with gzip.open(os.path.join(DATA_DIR, "humaneval.jsonl.gz"), "rt", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def mbpp() -> list[dict]:
    with open(os.path.join(DATA_DIR, "mbpp_sanitized_test.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def gsm8k() -> list[dict]:
    with open(os.path.join(DATA_DIR, "gsm8k_test.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


@pytest.fixture(scope="session")
def math500() -> list[dict]:
    with open(os.path.join(DATA_DIR, "math500_test.jsonl"), encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]
