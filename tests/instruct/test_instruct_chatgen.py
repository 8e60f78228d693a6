"""ChatGenerator parsing and endpoint-error accounting against the local server."""

from __future__ import annotations

from corpus.instruct.candidates import ANSWER_SYSTEM, ChatGenerator, code_blocks
from corpus.llm import OpenAICompatBackend
from corpus.llm.local_server import LocalChatServer, Reply

SNIP = {"id": "a" * 32, "language": "python", "kind": "function", "name": "inc",
        "code": "def inc(x):\n    '''Add one.'''\n    return x + 1", "docstring": "Add one.", "signature": "def inc(x)"}


def test_code_blocks_parse_language_tags_and_unlabelled_blocks():
    text = "Intro\n```python\nx = 1\n```\nthen\n```\nassert x == 1\n```\n```c++ title\nint a;\n```"
    assert code_blocks(text) == [("python", "x = 1"), ("", "assert x == 1"), ("c++", "int a;")]


def test_endpoint_errors_and_bad_replies_are_counted_not_fatal():
    def responder(body):
        user = body["messages"][-1]["content"]
        if body["messages"][0]["content"] != ANSWER_SYSTEM:
            return Reply(status=500) if "BROKEN" in user else ("" if "EMPTY" in user else "Write inc(x).")
        return "No code here, sorry." if "NOCODE" in user else "```python\ndef inc(x):\n    return x + 1\n```"

    snippets = [dict(SNIP, id=f"{i:032d}", code=SNIP["code"] + f"  # {tag}")
                for i, tag in enumerate(["ok", "BROKEN", "EMPTY", "ok2"])]
    with LocalChatServer(responder) as srv:
        b = OpenAICompatBackend(srv.base_url, "m", max_retries=1, backoff_s=0.0)
        b._sleep = lambda s: None
        skips: dict[str, int] = {}
        out = ChatGenerator(b).generate(snippets, skips)
    assert [c.source_id for c in out] == [snippets[0]["id"], snippets[3]["id"]]
    assert skips == {"llm_error:http_500": 1, "llm_empty_instruction": 1}
    assert out[0].tests == "" and out[0].test_origin == "none" and out[0].answer.startswith("def inc")
    assert b.usage.failures == 1 and b.usage.retries == 1
