"""scripts/chaos.py: each fault once (SIGKILL, SIGTERM, a damaged latest checkpoint, a second launch
into the live directory) on a small meta-train, each resumed to the uninterrupted run's theta."""
import json

import pytest

from tests.scripts import load_script


@pytest.mark.slow  # 45-90 s of process starts; each fault has its own faster test (tests/io: resume, run lock)
def test_every_fault_is_survived_bitwise(tmp_path):
    result = load_script("chaos").main(["--quick", "--runs", "4", "--out", str(tmp_path), "tracking.mode=disabled",
                                        "outer_iterations=120", "checkpoint_every=10"])
    rows = result["runs"]
    assert [r["fault"] for r in rows] == ["sigkill", "sigterm", "corrupt", "second"]
    assert all(r["survived"] for r in rows), rows
    assert "Preempted (SIGTERM at outer iteration" in rows[1]["what"]
    assert "checkpoint" in rows[2]["what"] and "a second launch refused (pid" in rows[3]["what"]
    assert json.loads((tmp_path / "chaos.json").read_text())["verdicts"][0]["reproduced"] is True
