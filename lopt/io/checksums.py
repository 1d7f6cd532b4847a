"""A folder's files checked against the SHA-256s listed in its SHA256SUMS (`sha256sum -c`'s
format), as `lopt export` writes them: every theta loader verifies a folder that has one."""
import hashlib
from pathlib import Path

from lopt.errors import UserError

CHECKSUMS = "SHA256SUMS"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write(root: Path) -> None:
    """List every file under `root` (but the list itself) with its SHA-256 in root/SHA256SUMS."""
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.name != CHECKSUMS)
    (root / CHECKSUMS).write_text("".join(f"{sha256(p)}  {p.relative_to(root)}\n" for p in files))


def verify(root: Path) -> None:
    """Check every file `root`'s SHA256SUMS lists (no such file: nothing to check); a `UserError`
    naming the first file that is missing or differs."""
    listed = root / CHECKSUMS
    if not listed.is_file():
        return
    for line in listed.read_text().splitlines():
        digest, _, name = line.partition("  ")
        path = root / name
        if not path.is_file():
            raise UserError(f"{path} is missing: the exported optimizer {root} is incomplete ({CHECKSUMS} lists it). "
                            f"Export it again with `lopt export`.")
        if sha256(path) != digest:
            raise UserError(f"{path} does not match its SHA-256 in {listed}: the exported optimizer {root} was "
                            f"changed or damaged after export. Export it again with `lopt export`.")
