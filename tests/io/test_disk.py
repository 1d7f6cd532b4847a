"""A full disk: recognized as orbax and Python report it, and said in one paragraph; a result file
that cannot be written leaves the previous one whole and no temporary file."""
import errno
import os

import pytest

from lopt.errors import UserError
from lopt.io import disk
from lopt.io.results import write_text

# what orbax (TensorStore) raised when a checkpoint overflowed a 3 MB tmpfs
ORBAX = ("RESOURCE_EXHAUSTED: Error writing \"w/0\" in OCDBT database at local file \"/x/ck/2.orbax-checkpoint-tmp/\": "
         "Failed writing: \"/x/ck/2.orbax-checkpoint-tmp/d/8fa3\": Failed to write 4698112 bytes to file 11: No space "
         "left on device [os_error_code='28']")


def test_a_full_disk_is_recognized_however_it_is_reported(tmp_path):
    assert disk.is_out_of_space(ValueError(ORBAX))
    assert disk.is_out_of_space(OSError(errno.EDQUOT, "quota"))
    try:
        raise RuntimeError("wrapped") from OSError(errno.ENOSPC, "full")
    except RuntimeError as err:
        assert disk.is_out_of_space(err)
    assert not disk.is_out_of_space(OSError(errno.EACCES, "Permission denied"))
    said = str(disk.out_of_space(ValueError(ORBAX), "checkpoint 2", tmp_path / "ck"))
    assert f"writing checkpoint 2 to {tmp_path / 'ck'} failed (no space left on the device; it needed about 4.7 MB" in said
    assert "MB free there now" in said and "run the same command" in said


def test_a_result_that_does_not_fit_leaves_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "suite.json"
    write_text(path, "before")

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(UserError, match=f"writing suite.json to {path} failed .*it needed about 0.0 MB"):
        write_text(path, "after")
    assert path.read_text() == "before" and [p.name for p in tmp_path.iterdir()] == ["suite.json"]
