"""The installed packages that ship or generate datasets: their modules and data files."""
import importlib
import importlib.util
import os
from types import ModuleType

from lopt.errors import DataUnavailableError


def require(module: str, package: str, dataset: str) -> ModuleType:
    """`import module`, or a DataUnavailableError naming the missing pip `package` (a requirement
    such as 'mnist1d>=0.0.2') that dataset `dataset` needs."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataUnavailableError(
            f"Dataset {dataset!r} needs the {package.split('>')[0]} package, which is not installed. "
            f"Install it with `pip install '{package}'`, or run without real data using data.source=synthetic."
        ) from None


def package_file(package: str, *parts: str) -> str:
    """The path of a data file inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"the {package} package is not installed")
    return os.path.join(spec.submodule_search_locations[0], *parts)
