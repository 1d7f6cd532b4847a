"""The TFDS tests stand in for TFDS's downloader (tfds.testing.mock_data or a monkeypatched
download_and_prepare), so they run as if TensorFlow, which real preparation needs, were installed."""
import pytest

from lopt.data import tfds_source


@pytest.fixture(autouse=True)
def tensorflow_present(monkeypatch):
    monkeypatch.setattr(tfds_source, "can_prepare", lambda: True)
