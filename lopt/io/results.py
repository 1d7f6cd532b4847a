"""Result files and figures: written whole or not at all."""
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from lopt.io import disk


def _umask() -> int:
    """The process's umask, read without changing it (`os.umask` can only be read by setting it,
    which would race with other threads creating files): from /proc where Linux shows it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text(path: Path, text: str) -> None:
    """Write `text` to `path` atomically: a temporary file, flushed to disk, renamed into place.
    The file gets the mode any new file gets under the user's umask (mkstemp's is 0600)."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and disk.is_out_of_space(err):
            raise disk.out_of_space(err, path.name, path, len(text.encode())) from None
        raise


def write_json(path: Path, obj: Any) -> None:
    """Write `obj` as JSON to `path` atomically."""
    write_text(path, json.dumps(obj, indent=1))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl-style file (none if it does not exist)."""
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def trim_records(path: Path, key: str, last: int) -> dict[str, Any] | None:
    """Keep the records of the JSON-lines file `path` whose `key` is at most `last`, dropping newer
    ones and a line cut short by a kill (a resumed run logs those iterations again); rewritten
    atomically. Returns the last record kept (None if none or no file)."""
    path = Path(path)
    if not path.exists():
        return None
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:  # a partial last line
            continue
        if record.get(key, last + 1) <= last:
            kept.append(line)
    write_text(path, "".join(f"{line}\n" for line in kept))
    return json.loads(kept[-1]) if kept else None


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> None:
    """Save a matplotlib figure to `path` atomically, then close it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{path.suffix}")
    fig.tight_layout()
    try:
        fig.savefig(tmp, dpi=100)
        os.replace(tmp, path)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        if disk.is_out_of_space(err):
            raise disk.out_of_space(err, path.name, path) from None
        raise
    finally:
        pyplot().close(fig)
