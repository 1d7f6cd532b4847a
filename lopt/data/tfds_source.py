"""Real datasets through TensorFlow Datasets.

Prepared data is read with `as_data_source` (random-access formats, no TensorFlow needed) or, for
data prepared as TFRecord, with `as_dataset` when TensorFlow is installed. Missing data is
downloaded and prepared when `download` is set (needs TensorFlow and a network); when that is not
possible the user gets one paragraph saying how to prepare it.
"""
import importlib.util
import os
import socket

import numpy as np

from lopt.errors import DataUnavailableError

DOWNLOAD_TIMEOUT_S = 30  # per network operation of a download

def default_data_dir(data_dir: str | None) -> str:
    """`data_dir`, else $TFDS_DATA_DIR, else TFDS's own default (~/tensorflow_datasets)."""
    if data_dir:
        return os.path.expanduser(data_dir)
    return os.environ.get("TFDS_DATA_DIR", os.path.expanduser("~/tensorflow_datasets"))


def _unavailable(name: str, data_dir: str, reason: str) -> DataUnavailableError:
    return DataUnavailableError(
        f"TFDS dataset {name!r} is not prepared in {data_dir} and could not be downloaded here "
        f"({reason}). Prepare it on a machine with network access (`pip install tensorflow "
        f"tensorflow-datasets && tfds build {name} --data_dir <dir> --file_format array_record`), "
        f"copy <dir> here and point lopt at it with data.dir=<dir> or TFDS_DATA_DIR=<dir>; or run "
        f"without real data using data.source=synthetic."
    )


def _records_to_arrays(source) -> tuple[np.ndarray, np.ndarray]:
    records = [source[i] for i in range(len(source))]
    return (np.stack([np.asarray(r["image"]) for r in records]),
            np.asarray([int(r["label"]) for r in records], np.int32))


def can_prepare() -> bool:
    """Whether TensorFlow, which TFDS needs to prepare a dataset, is installed."""
    return importlib.util.find_spec("tensorflow") is not None


def _prepared(name: str, data_dir: str | None, download: bool):
    """The TFDS builder of `name` in `data_dir`, downloading and preparing it if allowed."""
    import tensorflow_datasets as tfds

    data_dir = default_data_dir(data_dir)
    builder = tfds.builder(name, data_dir=data_dir)
    if not builder.is_prepared():
        if not download:
            raise _unavailable(name, data_dir, "data.download=false")
        if not can_prepare():  # fail fast, before any network access
            raise _unavailable(name, data_dir, "preparing it needs TensorFlow, which is not installed")
        timeout = socket.getdefaulttimeout()
        socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)  # offline behind a firewall: fail, don't hang
        try:
            builder.download_and_prepare(file_format="array_record")
        except Exception as err:  # TFDS raises many types here (DNS, HTTP, timeouts, ...)
            raise _unavailable(name, data_dir, f"{type(err).__name__}: {err}".splitlines()[0]) from None
        finally:
            socket.setdefaulttimeout(timeout)
    return builder


def _data_source(builder, split: str):
    """Random access to a split prepared as array_record; None when it was prepared as TFRecord,
    which only `as_dataset` (TensorFlow) reads; then TensorFlow must be installed."""
    try:
        return builder.as_data_source(split=split)
    except ValueError as err:
        if "file format" not in str(err):
            raise
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        raise DataUnavailableError(
            f"TFDS dataset {builder.name!r} in {builder.data_dir} was prepared as TFRecord, which needs "
            f"TensorFlow to read. Install it (`pip install tensorflow`) or re-prepare the data with "
            f"`--file_format array_record`."
        ) from None
    return None


def load_split(name: str, split: str, data_dir: str | None, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """Images (uint8 [N, H, W, C]) and labels (int32 [N]) of one split of TFDS dataset `name`."""
    import tensorflow_datasets as tfds

    builder = _prepared(name, data_dir, download)
    source = _data_source(builder, split)
    if source is not None:
        return _records_to_arrays(source)
    batch = tfds.as_numpy(builder.as_dataset(split=split, batch_size=-1))
    return np.asarray(batch["image"]), np.asarray(batch["label"], np.int32)


def load_texts(name: str, split: str, data_dir: str | None, download: bool, limit: int) -> list[bytes | str]:
    """The "text" feature of the first `limit` records of one split of TFDS dataset `name`."""
    import tensorflow_datasets as tfds

    builder = _prepared(name, data_dir, download)
    source = _data_source(builder, split)
    if source is not None:
        return [source[i]["text"] for i in range(min(limit, len(source)))]
    return [r["text"] for r in tfds.as_numpy(builder.as_dataset(split=split).take(limit))]
