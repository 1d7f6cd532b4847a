"""Result files: written whole, with the mode any new file gets under the user's umask."""
import json
import os
import stat

import pytest

from lopt.io.results import pyplot, read_jsonl, save_figure, trim_records, write_json, write_text


@pytest.fixture
def umask():
    """Set the process umask for one test, restored after it."""
    previous = os.umask(0o022)
    yield os.umask
    os.umask(previous)


def _mode(path):
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_result_files_get_the_users_umask(mask, mode, umask, tmp_path):
    umask(mask)
    write_text(tmp_path / "config.yaml", "a: 1\n")
    write_json(tmp_path / "sweep.json", {"a": 1})
    fig = pyplot().figure()
    save_figure(fig, tmp_path / "curves.png")
    for name in ("config.yaml", "sweep.json", "curves.png"):
        assert _mode(tmp_path / name) == mode, name


def test_rewriting_a_file_keeps_the_umask_mode(umask, tmp_path):
    umask(0o022)
    path = tmp_path / "metrics.jsonl"
    write_text(path, "".join(json.dumps({"i": i}) + "\n" for i in range(3)))
    assert trim_records(path, "i", 1) == {"i": 1}
    assert _mode(path) == 0o644
    assert [json.loads(line)["i"] for line in path.read_text().splitlines()] == [0, 1]


def test_a_failed_write_leaves_neither_the_file_nor_a_temporary(tmp_path):
    with pytest.raises(TypeError):
        write_text(tmp_path / "best.json", 123)  # type: ignore[arg-type]  # fails inside the write
    assert list(tmp_path.iterdir()) == []


def test_records_are_read_skipping_blank_lines_and_a_missing_file_has_none(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"a": 1}) + "\n\n" + json.dumps({"a": 2}) + "\n")
    assert read_jsonl(path) == [{"a": 1}, {"a": 2}]
    assert read_jsonl(tmp_path / "none.jsonl") == []
