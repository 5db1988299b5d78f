"""Linking evaluation (acc@k, MRR, ceiling, alt ids, composite gold ids) on a tiny hand-made set.

Scored through the shipped candidate generator over an in-memory index (exact search and hnsw), with the real
committed base encoder: every dev mention below is either a verbatim dictionary name (an exact-name hit, rank 1
by construction), the prefix of exactly one other name, or absent from the dictionary, so the expected ranks are
known by hand.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from clin_linker.beam_jobs.cli import main
from clin_linker.models.biencoder.dictionary import load_names_tsv
from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
from clin_linker.ontologies.default_index import BASE_ENCODER_DIR
from clin_linker.pipeline.evaluation import linking
from clin_linker.pipeline.evaluation.linking import (
    add_train_mentions, dictionary_linker, evaluate_linking, load_dictionary,
)

NAMES = """concept_id\tname\tname_type\talt_ids
MESH:D001\tmyocardial infarction\tpreferred\tOMIM:100|DOID:5
MESH:D001\tMI\tsynonym\tOMIM:100|DOID:5
MESH:D002\tdiabetes\tpreferred\t
MESH:D003\tdiabetes mellitus\tpreferred\t
MESH:D004\tasthma\tpreferred\t
MESH:D005\tpneumonia\tpreferred\t
MESH:D006\tfracture of femur\tpreferred\t
"""
DRUGS = """concept_id\tname\tname_type
MESH:D100\tmetformin\tpreferred
"""
PAIRS = [
    {"mention": "myocardial infarction", "concept_ids": ["OMIM:100"], "label": "CONDITION"},  # alt id: rank 1
    {"mention": "asthma", "concept_ids": ["MESH:D004"], "label": "CONDITION"},                # rank 1
    {"mention": "pneumonia", "concept_ids": ["MESH:D999", "MESH:D005"], "label": "CONDITION"},  # composite: 1
    {"mention": "diabetes", "concept_ids": ["MESH:D003"], "label": "CONDITION"},              # rank 2
    {"mention": "gout", "concept_ids": ["MESH:D777"], "label": "CONDITION"},                  # not in dict
    {"mention": "metformin", "concept_ids": ["MESH:D100"], "label": "DRUG"},                  # rank 1
]


@pytest.fixture(scope="module")
def encoder():
    return OnnxSentenceEncoder(BASE_ENCODER_DIR, threads=1)


def score(pairs, dictionary, encoder, exact=True, add=None, **kwargs):
    """evaluate_linking over a fresh in-memory index of ``dictionary`` (+ train mentions ``add``)."""
    d = load_dictionary(dictionary)
    if add:
        d = add_train_mentions(d, add)
    return evaluate_linking(pairs, dictionary_linker(d, encoder, exact=exact), **kwargs)


@pytest.fixture()
def files(tmp_path):
    (tmp_path / "names.tsv").write_text(NAMES)
    (tmp_path / "drugs.tsv").write_text(DRUGS)
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(p) + "\n" for p in PAIRS))
    return tmp_path


@pytest.mark.parametrize("exact", [True, False], ids=["exact", "hnsw"])
def test_known_acc_and_mrr(files, encoder, exact):
    r = score(files / "dev.jsonl", [files / "names.tsv", files / "drugs.tsv"], encoder, exact=exact, k=25)
    assert set(r) == {"acc@1", "acc@5", "acc@25", "mrr", "n", "ceiling", "labels"}
    assert r["n"] == 6
    assert r["acc@1"] == pytest.approx(4 / 6)
    assert r["acc@5"] == pytest.approx(5 / 6)
    assert r["acc@25"] == pytest.approx(5 / 6)
    assert r["mrr"] == pytest.approx((1 + 1 + 1 + 0.5 + 0 + 1) / 6)
    assert r["ceiling"] == pytest.approx(5 / 6)
    cond, drug = r["labels"]["CONDITION"], r["labels"]["DRUG"]
    assert cond["n"] == 5 and cond["acc@1"] == pytest.approx(3 / 5) and cond["mrr"] == pytest.approx(3.5 / 5)
    assert cond["ceiling"] == pytest.approx(4 / 5)
    assert drug == {"acc@1": 1.0, "acc@5": 1.0, "acc@25": 1.0, "mrr": 1.0, "n": 1, "ceiling": 1.0}


def test_alt_ids_and_dictionary_loading(files):
    d = load_dictionary([files / "names.tsv", files / "drugs.tsv"])
    assert len(d) == 7 and len(d.names) == 8
    mi = d.concepts.index("MESH:D001")
    assert d.ids[mi] == {"MESH:D001", "OMIM:100", "DOID:5"}
    with pytest.raises(ValueError):
        (files / "bad.tsv").write_text("id\tlabel\nX\ty\n")
        load_names_tsv(files / "bad.tsv")


def test_without_alt_ids_the_omim_mention_is_unreachable(files, encoder):
    (files / "noalt.tsv").write_text("\n".join(l.rsplit("\t", 1)[0] for l in NAMES.splitlines()) + "\n")
    r = score(files / "dev.jsonl", [files / "noalt.tsv", files / "drugs.tsv"], encoder)
    assert r["acc@1"] == pytest.approx(3 / 6)
    assert r["ceiling"] == pytest.approx(4 / 6)


def test_train_mentions_added_to_the_dictionary(files, encoder):
    (files / "train.jsonl").write_text(json.dumps({"mention": "gout", "concept_ids": ["MESH:D777"]}) + "\n"
                                       + json.dumps({"mention": "sugar disease", "concept_ids": ["MESH:D003"]}) + "\n")
    base = load_dictionary([files / "names.tsv", files / "drugs.tsv"])
    d = add_train_mentions(base, files / "train.jsonl")
    assert len(base) == 7 and len(d) == 8  # a copy; the unknown id became a concept
    r = score(files / "dev.jsonl", [files / "names.tsv", files / "drugs.tsv"], encoder, add=[files / "train.jsonl"])
    assert r["ceiling"] == 1.0
    assert r["acc@1"] == pytest.approx(5 / 6)  # "gout" is now a verbatim name


def test_names_are_embedded_once_per_process_and_details_are_reported(files, encoder):
    d = load_dictionary([files / "names.tsv", files / "drugs.tsv"])
    first = dictionary_linker(d, encoder, exact=True)
    cache = linking._NAME_VECTORS[encoder.info.sha256]
    vectors = {n: cache[n] for n in d.names}
    assert all(np.isclose(np.linalg.norm(v), 1.0, atol=1e-4) for v in vectors.values())
    second = dictionary_linker(d, encoder, exact=True)  # the second index reuses the vectors
    assert all(cache[n] is vectors[n] for n in d.names)
    r = evaluate_linking(files / "dev.jsonl", second, return_details=True)
    assert r["acc@1"] == pytest.approx(4 / 6) and r["dictionary_concepts"] == 7 and r["ms_per_mention"] > 0
    assert first.artifacts["encoder"] == encoder.info.short_id and "exact" in first.artifacts["index"]


def test_cli_json(files, capsys):
    main(["eval", "linking", "--pairs", str(files / "dev.jsonl"), "--dictionary", str(files / "names.tsv"),
          str(files / "drugs.tsv"), "--encoder", str(BASE_ENCODER_DIR), "--json", "--threads", "1", "--no-rerank",
          "--predictions", str(files / "pred.jsonl")])
    out = json.loads(capsys.readouterr().out)
    assert out["acc@1"] == pytest.approx(4 / 6) and out["labels"]["DRUG"]["acc@1"] == 1.0
    assert out["artifacts"]["encoder"].startswith("all-MiniLM-L6-v2-int8@")
    predicted = {r["mention"]: r for r in map(json.loads, (files / "pred.jsonl").read_text().splitlines())}
    assert predicted["diabetes"]["candidates"][0][0] == "MESH:D002" and predicted["diabetes"]["exact"]
    assert predicted["diabetes"]["candidates"][1][0] == "MESH:D003"


def test_an_encoder_other_than_the_default_index_needs_a_dictionary(files, default_index, capsys):
    rc = main(["eval", "linking", "--pairs", str(files / "dev.jsonl"), "--encoder", str(BASE_ENCODER_DIR)])
    assert rc == 2 and "pass --dictionary" in capsys.readouterr().err


def test_train_usage_breaks_ties_between_same_named_concepts(tmp_path, encoder):
    """Two concepts named "depression": the one the train mentions use wins; without them, the first wins."""
    (tmp_path / "names.tsv").write_text("concept_id\tname\nMESH:D863\tDepression\nMESH:D866\tDepressive Disorder\n")
    (tmp_path / "dev.jsonl").write_text(json.dumps({"mention": "depression", "concept_ids": ["MESH:D866"]}) + "\n")
    (tmp_path / "train.jsonl").write_text(
        "".join(json.dumps({"mention": "depression", "concept_ids": [c]}) + "\n"
                for c in ["MESH:D866", "MESH:D866", "MESH:D863"]))
    plain = score(tmp_path / "dev.jsonl", tmp_path / "names.tsv", encoder)
    assert plain["acc@1"] == 0.0 and plain["acc@5"] == 1.0
    used = score(tmp_path / "dev.jsonl", tmp_path / "names.tsv", encoder, add=tmp_path / "train.jsonl")
    assert used["acc@1"] == 1.0


def test_short_forms_expand_from_same_document_mentions(tmp_path, encoder):
    from clin_linker.models.biencoder.doc_abbreviations import DocAbbreviationExpander, looks_like_short_form

    assert looks_like_short_form("VSD") and looks_like_short_form("MDs") and not looks_like_short_form("gout")
    pairs = [
        {"mention": "ventricular septal defect", "concept_ids": ["MESH:D1"], "doc_id": "1"},
        {"mention": "VSD", "concept_ids": ["MESH:D1"], "doc_id": "1"},
        {"mention": "MI", "concept_ids": ["MESH:D2"], "doc_id": "1"},           # no long form in doc 1
        {"mention": "VSD", "concept_ids": ["MESH:D1"], "doc_id": "2"},          # other document: untouched
        {"mention": "myocardial infarction", "concept_ids": ["MESH:D2"], "doc_id": "2"},
    ]
    out = DocAbbreviationExpander().expand(pairs)
    assert [p["mention"] for p in out] == ["ventricular septal defect", "ventricular septal defect", "MI", "VSD",
                                          "myocardial infarction"]
    assert out[1]["mention_as_written"] == "VSD" and "mention_as_written" not in out[3]
    (tmp_path / "names.tsv").write_text("concept_id\tname\nMESH:D1\tventricular septal defect\n"
                                        "MESH:D2\tmyocardial infarction\nMESH:D3\tVentricular Septal Rupture\n")
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(p) + "\n" for p in pairs[:2]))
    r = score(tmp_path / "dev.jsonl", tmp_path / "names.tsv", encoder, expand_abbreviations=True,
              return_details=True)
    assert r["acc@1"] == 1.0 and r["abbreviations_expanded"] == 1
