"""`codecorpus dedup` through pipelines.cli.main: real files in, shard sets out, clear errors."""

import json

import pyarrow as pa
import pytest
from dedup_fixtures import code_row, near_duplicate_pairs, read, read_set, unrelated_files, write_raw_parquet

from corpus.dedup import optimal_param
from pipelines.cli import main


def _inputs(tmp_path):
    pairs = near_duplicate_pairs(lo=0.9, limit=2)
    texts = [read(p) for a, b, _ in pairs for p in (a, b)] + [read(p) for p in unrelated_files(4)]
    ids = [code_row(f"f{i}.py", t)["id"] for i, t in enumerate(texts)]
    # A user folder of plain Parquet files with only id + content (+ an extra column), two files.
    half = len(texts) // 2
    for name, sl in (("a.parquet", slice(0, half)), ("sub/b.parquet", slice(half, None))):
        write_raw_parquet(str(tmp_path / "in" / name),
                          pa.table({"id": ids[sl], "content": texts[sl], "lang": ["py"] * len(texts[sl])}))
    return len(texts), len(pairs)


def test_cli_dedup_end_to_end(tmp_path, capsys):
    n, n_pairs = _inputs(tmp_path)
    rc = main(["dedup", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out"), "--verify"])
    assert rc == 0
    out = capsys.readouterr().out
    assert f"{n} rows" in out and f"-> {n - n_pairs} kept" in out and "LSH 25x10" in out
    kept = read_set(str(tmp_path / "out"))
    assert kept.num_rows == n - n_pairs and kept.schema.names == ["id", "content", "lang", "cluster_id"]
    assert read_set(str(tmp_path / "out_clusters")).num_rows == n


def test_cli_dedup_options_and_json(tmp_path, capsys):
    n, _ = _inputs(tmp_path)
    rc = main(["dedup", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "o"), "--threshold", "0.8",
               "--ngram", "3", "--num-perm", "64", "--no-clusters", "--json"])
    assert rc == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["input_rows"] == n and (stats["bands"], stats["rows_per_band"]) == optimal_param(0.8, 64)
    assert not (tmp_path / "o_clusters").exists()


def test_cli_dedup_missing_content_names_file(tmp_path, capsys):
    write_raw_parquet(str(tmp_path / "in" / "nocontent.parquet"), pa.table({"id": ["1"], "text": ["x"]}))
    rc = main(["dedup", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 2 and "nocontent.parquet: missing required column(s) ['content']" in err
    assert not (tmp_path / "out").exists()


def test_cli_dedup_bad_settings_and_inputs(tmp_path, capsys):
    assert main(["dedup", "--input", str(tmp_path), "--output", str(tmp_path / "o"), "--threshold", "2"]) == 2
    assert "threshold" in capsys.readouterr().err
    assert main(["dedup", "--input", str(tmp_path / "nope"), "--output", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["dedup", "--input", str(tmp_path), "--output", str(tmp_path / "o")]) == 2
    assert "no .parquet files" in capsys.readouterr().err


def test_cli_dedup_help(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["dedup", "--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--input", "--output", "--threshold", "--ngram", "--num-perm", "--verify", "--keep-policy"):
        assert opt in text


def test_cli_dedup_rerun_is_noop_until_input_or_settings_change(tmp_path, capsys):
    _inputs(tmp_path)
    args = ["dedup", "--input", str(tmp_path / "in"), "--output", str(tmp_path / "out")]
    assert main(args) == 0
    first = (tmp_path / "out" / "_manifest.json").read_text()
    capsys.readouterr()
    assert main(args) == 0
    assert "up to date" in capsys.readouterr().out
    assert (tmp_path / "out" / "_manifest.json").read_text() == first
    assert main(args + ["--threshold", "0.8"]) == 0
    assert "up to date" not in capsys.readouterr().out
    assert main(args + ["--threshold", "0.8", "--force"]) == 0
    assert "up to date" not in capsys.readouterr().out
