"""Local ids are deterministic: same concepts → same ids, whatever the build or the order of the parts."""
from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from athena_fixture import write_athena_export

from clin_linker.ontologies.athena import load_athena
from clin_linker.ontologies.custom_vocab import load_custom
from clin_linker.ontologies.hpo import load_hpo
from clin_linker.ontologies.icf_claml import load_icf_claml
from clin_linker.ontologies.local_ids import LOCAL_ID_MAX, LOCAL_ID_MIN, assign_local_ids
from clin_linker.ontologies.snomed_rf2 import load_snomed_rf2
from clin_linker.ontologies.store import build_store

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """Real HPO, real Athena ids (Eunomia) and every hand-written fixture: 19k+ concepts, 7 vocabularies.

    Athena's SNOMED is left out because the RF2 fixture provides SNOMED (a vocabulary is loaded once).
    """
    athena = write_athena_export(tmp_path_factory.mktemp("athena"))
    return [
        load_hpo(),
        *load_athena(athena, {"ICD10CM", "LOINC", "RxNorm"}),
        load_snomed_rf2(FIXTURES / "snomed_rf2"),
        load_icf_claml(FIXTURES / "icf_claml" / "icf_sample.xml"),
        load_custom(FIXTURES / "custom" / "site_problems.csv", "SITE"),
    ]


def _ids(parts, directory: Path) -> dict[str, int]:
    build_store(parts, directory)
    table = pq.read_table(directory / "concepts.parquet", columns=["concept_key", "omop_concept_id"])
    return dict(zip(table["concept_key"].to_pylist(), table["omop_concept_id"].to_pylist()))


def test_same_ids_on_every_build_and_order(parts, tmp_path):
    first = _ids(parts, tmp_path / "a")
    again = _ids(parts, tmp_path / "b")
    reversed_order = _ids(list(reversed(parts)), tmp_path / "c")
    assert first == again == reversed_order
    assert len(first) == sum(len(p.concepts) for p in parts) > 19_000


def test_local_ids_in_range_real_ids_kept(parts, tmp_path):
    ids = _ids(parts, tmp_path / "store")
    real = {c.concept_key: c.omop_concept_id for p in parts for c in p.concepts if c.omop_concept_id}
    assert real and all(ids[key] == value for key, value in real.items())
    local = [i for key, i in ids.items() if key not in real]
    assert all(LOCAL_ID_MIN <= i <= LOCAL_ID_MAX for i in local)
    assert len(set(ids.values())) == len(ids)
    assert ids["ICD10CM:K92.2"] == 35208414


def test_collision_moves_to_the_next_free_slot_deterministically():
    key = ("HPO", "HP:0001250")
    first_slot = assign_local_ids([key])[key]
    moved = assign_local_ids([key], taken=[first_slot])[key]
    assert moved != first_slot and LOCAL_ID_MIN <= moved <= LOCAL_ID_MAX
    assert assign_local_ids([key], taken=[first_slot])[key] == moved
    assert assign_local_ids([("SITE", "X"), key], taken=[first_slot])[key] == moved


def test_input_order_does_not_matter():
    keys = [("HPO", "HP:0000001"), ("SITE", "X"), ("ICF", "d450")]
    assert assign_local_ids(keys) == assign_local_ids(list(reversed(keys)))
