"""Byte-level text from the Python standard library's own source files: text for language models
that needs no download and is the same on every machine with the same Python.

The files are the *.py files directly in `sysconfig.get_paths()["stdlib"]` and in its packages
(directories with an __init__.py, recursively; site-packages is none), in the sorted order of
their paths relative to it. A file is in the test split when zlib.crc32 of that path is 0 mod 10
(about a tenth of the files), else in the train split: the splits share no file. Each file's bytes
are cut into consecutive non-overlapping windows (a shorter tail is dropped). A split keeps at most
MAX_TRAIN / MAX_TEST of its windows, evenly spaced over all of them, so they come from the whole
library rather than its first files.
"""
import sysconfig
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

MAX_TRAIN, MAX_TEST = 2**16, 2**13  # 2.2 MB and 0.3 MB of windows at seq_len 32


def stdlib_dir() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def source_files(root: Path) -> list[str]:
    """The paths, relative to `root` and sorted, of the *.py files in `root` and its packages."""
    def walk(directory: Path) -> Iterator[Path]:
        for path in directory.iterdir():
            if path.is_dir():
                if (path / "__init__.py").is_file():
                    yield from walk(path)
            elif path.suffix == ".py":
                yield path

    return sorted(p.relative_to(root).as_posix() for p in walk(root))


def is_test(path: str) -> bool:
    """Whether the file at relative path `path` belongs to the test split."""
    return zlib.crc32(path.encode()) % 10 == 0


def cut(data: bytes, length: int) -> np.ndarray:
    """`data` as consecutive windows of `length` bytes, the tail dropped: uint8 [len // length, length]."""
    n = len(data) // length
    return np.frombuffer(data, np.uint8, n * length).reshape(n, length)


def spread(rows: np.ndarray, limit: int) -> np.ndarray:
    """At most `limit` of `rows`, evenly spaced from the first."""
    if len(rows) <= limit:
        return rows
    return rows[np.linspace(0, len(rows), limit, endpoint=False).astype(np.int64)]


def load_windows(data_dir: str | None, download: bool, length: int) -> tuple[np.ndarray, np.ndarray]:
    """The (train, test) windows of `length` bytes; the files are local, so `data_dir` and
    `download` are unused."""
    root = stdlib_dir()
    splits: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for path in source_files(root):
        splits[is_test(path)].append(cut((root / path).read_bytes(), length))
    return spread(np.concatenate(splits[False]), MAX_TRAIN), spread(np.concatenate(splits[True]), MAX_TEST)
