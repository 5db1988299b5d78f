"""Retrieval index: manifest contents, staleness detection, nearest-name queries with the real encoder."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from clin_linker.models.artifacts import read_artifact
from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
from clin_linker.ontologies.default_index import DEFAULT_ENCODER_DIR, default_fingerprint, ensure_default_index
from clin_linker.ontologies.index import NameIndex, encoder_dir_of, index_is_current, read_manifest, store_dir_of
from clin_linker.ontologies.sources import load_sources
from clin_linker.ontologies.store import ConceptStore, build_store

FIXTURES = Path(__file__).parent / "fixtures"


def test_manifest_records_encoder_store_counts_and_params(small_index):
    manifest = read_manifest(small_index)
    store = ConceptStore(store_dir_of(small_index))
    assert manifest["encoder"]["sha256"] == read_artifact(DEFAULT_ENCODER_DIR).sha256
    assert manifest["store_version"] == store.version
    assert manifest["counts"]["names"] == store.names().num_rows
    assert manifest["hnsw"]["space"] == "cosine" and manifest["hnsw"]["M"] > 0
    assert encoder_dir_of(small_index) == DEFAULT_ENCODER_DIR


def test_nearest_name_of_a_synonym_is_its_concept(small_index):
    index = NameIndex(small_index)
    encoder = OnnxSentenceEncoder(DEFAULT_ENCODER_DIR)
    labels, sims = index.query(encoder.encode(["lumbago", "falls at home"]), k=1)
    assert index.concept_keys[labels[0][0]] == "SITE:LP002"
    assert index.concept_keys[labels[1][0]] == "SITE:LP001"
    # identical text, but int8 dynamic quantisation scales activations per batch, so not exactly 1.0
    assert sims[0][0] > 0.95


def test_index_goes_stale_when_the_store_changes(small_index, tmp_path):
    store_dir = store_dir_of(small_index)
    assert index_is_current(small_index, store_dir, DEFAULT_ENCODER_DIR)
    changed = tmp_path / "site_problems.csv"
    changed.write_text((FIXTURES / "custom" / "site_problems.csv").read_text() + "LP999,Pressure ulcer,,,\n")
    other = tmp_path / "store"
    build_store(load_sources([f"custom:SITE={changed}"]), other)
    assert ConceptStore(other).version != ConceptStore(store_dir).version
    assert not index_is_current(small_index, other, DEFAULT_ENCODER_DIR)


def test_index_survives_a_moved_home_directory(small_index, tmp_path):
    moved = tmp_path / "moved"
    shutil.copytree(small_index.parent, moved)
    assert store_dir_of(moved / "index") == (moved / "store").resolve()
    assert NameIndex(moved / "index").concept_keys


def test_default_index_is_reused_not_rebuilt(default_index):
    before = (default_index / "names.hnsw").stat().st_mtime_ns
    again = ensure_default_index()
    assert again == default_index
    assert (default_index / "names.hnsw").stat().st_mtime_ns == before
    fingerprint = json.loads((default_index.parent / "fingerprint.json").read_text())
    assert fingerprint == default_fingerprint()
    manifest = read_manifest(default_index)
    assert manifest["counts"]["concepts"] > 100_000  # ICD-10-CM + HPO


def test_the_shipped_encoder_is_the_fine_tuned_one_and_an_index_of_the_base_goes_stale(small_index, tmp_path):
    from clin_linker.ontologies.default_index import BASE_ENCODER_DIR
    from clin_linker.ontologies.index import build_index

    assert read_artifact(DEFAULT_ENCODER_DIR).model_id == "clin-sapbert-minilm-l6-int8"
    assert default_fingerprint()["encoder_sha256"] == read_artifact(DEFAULT_ENCODER_DIR).sha256
    old = tmp_path / "old_index"
    build_index(store_dir_of(small_index), BASE_ENCODER_DIR, old)
    assert encoder_dir_of(old) == BASE_ENCODER_DIR
    assert not index_is_current(old, store_dir_of(small_index), DEFAULT_ENCODER_DIR)
    assert index_is_current(small_index, store_dir_of(small_index), DEFAULT_ENCODER_DIR)


def test_heart_attack_is_myocardial_infarction_at_rank_one(default_index):
    """The issue's example: the general MiniLM put Chest pain first; the fine-tuned default must not."""
    index = NameIndex(default_index)
    encoder = OnnxSentenceEncoder(DEFAULT_ENCODER_DIR)
    store = ConceptStore(store_dir_of(default_index))
    labels, _ = index.query(encoder.encode(["heart attack"]), k=1)
    key = index.concept_keys[labels[0][0]]
    assert key.startswith("ICD10CM:I21") or key == "HPO:HP:0001658", (key, store[key])
