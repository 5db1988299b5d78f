"""Locating and describing the shipped model artifacts (torch-free: used at run time)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

#: Folder of the committed artifacts, next to this module (installed as package data).
ARTIFACTS_DIR = Path(__file__).resolve().parent


def file_sha256(path: Path) -> str:
    """Content hash recorded in manifests so an index knows exactly which encoder built it."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


@dataclass(frozen=True)
class ArtifactInfo:
    """What an artifact directory's ``artifact.json`` says about it."""

    directory: Path
    model_id: str
    onnx_file: str
    sha256: str
    meta: dict

    @property
    def onnx_path(self) -> Path:
        return self.directory / self.onnx_file

    @property
    def short_id(self) -> str:
        """``model_id@hash8``: goes into nlp_system and index manifests."""
        return f"{self.model_id}@{self.sha256[:8]}"


def read_artifact(directory: Path) -> ArtifactInfo:
    """Read ``artifact.json`` of a model directory (written by the export step)."""
    directory = Path(directory)
    path = directory / "artifact.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{directory} has no artifact.json: it is not a clin-linker model directory "
            "(export one with `clin-linker model export-encoder`)"
        )
    meta = json.loads(path.read_text())
    return ArtifactInfo(directory, meta["model_id"], meta["onnx_file"], meta["sha256"], meta)
