"""Per-vocabulary targets (issue 12): ``span._.codes``, the first target's candidates on the span, and the
per-vocabulary search of the name index behind them.

The store holds two custom vocabularies (tests/fixtures/targets/), embedded with the real encoder: CODES, named the
ICD-10-CM way ("Essential (primary) hypertension"), and PHENO, named the HPO way ("Hypertension", synonym "arterial
hypertension"). So a mention can be spelled like a PHENO name and only resemble the CODES one: without targets PHENO
wins it, with CODES as the target CODES must.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import numpy as np
import pytest
import spacy

from clin_linker.ontologies import index as index_module
from clin_linker.ontologies.default_index import DEFAULT_ENCODER_DIR
from clin_linker.ontologies.index import HnswParams, NameIndex
from clin_linker.pipeline import linker_component  # noqa: F401  (registers the factory)
from clin_linker.pipeline.resources import load_resources
from small_indexes import build_small_index

FIXTURES = Path(__file__).parent / "fixtures" / "targets"
PHRASES = ("arterial hypertension", "high blood pressure", "blood in urine", "asthma")
TEXT = "Arterial hypertension. High blood pressure again. Blood in urine. Asthma since childhood."


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    sources = [f"custom:CODES={FIXTURES / 'codes.csv'}", f"custom:PHENO={FIXTURES / 'pheno.csv'}"]
    return build_small_index(tmp_path_factory.mktemp("targets"), sources)


def _nlp(index: Path, **linker):
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "CONDITION", "pattern": [{"LOWER": w} for w in p.split()]} for p in PHRASES])
    nlp.add_pipe("clin_linker", config={"index_dir": str(index), "detector": "none", "threads": 2, **linker})
    return nlp


def _spans(doc) -> dict:
    return {e.text.lower(): e for e in doc.ents}


def test_the_first_target_wins_where_another_vocabulary_spells_or_resembles_the_mention_better(index_dir):
    plain = _spans(_nlp(index_dir, threshold=0.5)(TEXT))
    coded = _spans(_nlp(index_dir, threshold=0.5, targets=["CODES"])(TEXT))
    # without targets PHENO wins: its synonym is the mention itself, its name is nearer "high blood pressure"
    assert plain["arterial hypertension"]._.concept == "PHENO:HP:0000822"
    assert plain["high blood pressure"]._.concept == "PHENO:HP:0000822"
    assert coded["arterial hypertension"]._.concept == "CODES:I10"
    assert coded["high blood pressure"]._.concept == "CODES:I10"
    assert coded["blood in urine"]._.concept == "CODES:R31.9"
    for span in coded.values():
        assert span._.candidates and all(key.startswith("CODES:") for key, _ in span._.candidates)
        assert span._.score == span._.candidates[0][1]
        assert span._.codes == {"CODES": span._.candidates[0]}
    assert all(span._.codes is None for span in plain.values())


def test_the_nil_threshold_applies_to_the_first_targets_candidates(index_dir):
    spans = _spans(_nlp(index_dir, targets=["CODES"])(TEXT))  # the default threshold, 0.75
    span = spans["arterial hypertension"]
    assert span._.candidates[0][0] == "CODES:I10" and span._.score < 0.75
    assert span._.concept is None  # NIL in CODES, although PHENO spells it exactly
    assert span._.codes == {"CODES": span._.candidates[0]}  # the best code stays, as the candidates do
    assert spans["asthma"]._.concept == "CODES:J45.909"  # a CODES synonym: exact, score 1.0


def test_codes_carry_every_targets_best_and_the_note_nlp_row_the_first_targets(index_dir):
    from clin_linker.pipeline.omop import note_nlp_rows

    nlp = _nlp(index_dir, threshold=0.5, targets=["CODES", "PHENO"])
    doc = nlp(TEXT)
    generator = nlp.get_pipe("clin_linker").resources.candidates
    for span in doc.ents:
        assert set(span._.codes) == {"CODES", "PHENO"}
        assert span._.codes["CODES"] == span._.candidates[0]
        best_pheno = generator([span.text], k=5, vocabulary="PHENO")[0][0]
        assert span._.codes["PHENO"] == (best_pheno.concept_key, best_pheno.score)
    spans = _spans(doc)
    assert spans["arterial hypertension"]._.codes == {"CODES": spans["arterial hypertension"]._.candidates[0],
                                                      "PHENO": ("PHENO:HP:0000822", 1.0)}
    assert "targets=CODES,PHENO" in nlp.get_pipe("clin_linker").model_id
    store = nlp.get_pipe("clin_linker").resources.store
    rows = note_nlp_rows(doc, 1, store, "test", dt.datetime(2024, 1, 1))
    assert {r["lexical_variant"].lower(): r["concept_key"] for r in rows} == {
        text: span._.concept for text, span in spans.items()}
    assert {r["vocabulary_id"] for r in rows} == {"CODES"}
    # the top code of every target is the same whatever k the component keeps
    narrow = _nlp(index_dir, threshold=0.5, targets=["CODES", "PHENO"], k=1)(TEXT)
    assert [(e._.concept, e._.codes) for e in narrow.ents] == [(e._.concept, e._.codes) for e in doc.ents]


def test_without_targets_the_component_links_as_before(index_dir):
    default, explicit = _nlp(index_dir), _nlp(index_dir, targets=[])
    generator = default.get_pipe("clin_linker").resources.candidates
    vocabularies = set()
    for a, b in zip(default(TEXT).ents, explicit(TEXT).ents):
        expected = [(c.concept_key, c.score) for c in generator([a.text], k=5)[0]]
        assert a._.candidates == b._.candidates == expected
        assert a._.codes is None and b._.codes is None
        vocabularies |= {key.split(":", 1)[0] for key, _ in a._.candidates}
    assert vocabularies == {"CODES", "PHENO"}  # both vocabularies compete for one winner
    assert "targets=" not in default.get_pipe("clin_linker").model_id


def test_an_unknown_or_repeated_target_is_refused_naming_what_the_store_holds(index_dir):
    with pytest.raises(ValueError, match=r"ICD10CM is not in the concept store .* which holds CODES, PHENO"):
        _nlp(index_dir, targets=["ICD10CM"]).initialize()
    with pytest.raises(ValueError, match="distinct vocabulary ids"):
        _nlp(index_dir, targets=["CODES", "CODES"])
    with pytest.raises(ValueError, match="holds CODES, PHENO"):
        NameIndex(index_dir).query(np.zeros((1, 384), dtype=np.float32), k=1, vocabulary="ICD10CM")


def test_exact_name_evidence_counts_only_in_its_own_vocabulary(index_dir):
    generator = load_resources(index_dir, threads=2).candidates
    [plain], [codes], [pheno] = (generator(["arterial hypertension"], k=5, vocabulary=v) for v in (None, "CODES", "PHENO"))
    assert plain[0].concept_key == "PHENO:HP:0000822" and plain[0].exact  # "arterial hypertension" is PHENO's name
    assert codes[0].concept_key == "CODES:I10" and codes[0].score < 1.0 and not any(c.exact for c in codes)
    assert pheno[0].concept_key == "PHENO:HP:0000822" and pheno[0].exact and pheno[0].score == 1.0
    # a name both vocabularies have: each keeps its own exact concept, and only that one
    [codes], [pheno] = (generator(["asthma"], k=5, vocabulary=v) for v in ("CODES", "PHENO"))
    assert [c.concept_key for c in codes if c.exact] == ["CODES:J45.909"]
    assert [c.concept_key for c in pheno if c.exact] == ["PHENO:HP:0002099"]


def test_an_exact_in_memory_index_searches_one_vocabulary_exactly():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((500, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = [f"{'A' if i % 4 else 'B'}:{i}" for i in range(len(vectors))]
    index = NameIndex.from_vectors(keys, keys, vectors, exact=True)
    labels, sims = index.query(vectors[:20], k=5, vocabulary="B")
    b = np.flatnonzero([k.startswith("B:") for k in keys])
    expected = b[np.argsort(-(vectors[:20] @ vectors[b].T), axis=1, kind="stable")[:, :5]]
    assert np.array_equal(labels, expected)
    assert np.allclose(sims, np.take_along_axis(vectors[:20] @ vectors.T, labels.astype(np.int64), axis=1), atol=1e-5)


def test_the_filtered_graph_and_the_exact_sub_index_agree_on_a_small_index(index_dir, monkeypatch):
    from clin_linker.models.encoder_runtime import OnnxSentenceEncoder

    index = NameIndex(index_dir)
    vectors = OnnxSentenceEncoder(DEFAULT_ENCODER_DIR, threads=2).encode(list(PHRASES))
    for vocabulary in ("CODES", "PHENO"):
        exact = index.query(vectors, k=4, ef=200, vocabulary=vocabulary)  # a small vocabulary: the exact route
        monkeypatch.setattr(index_module, "EXACT_VOCABULARY_NAMES", 0)  # every vocabulary through the graph
        graph = index.query(vectors, k=4, ef=200, vocabulary=vocabulary)
        monkeypatch.undo()
        assert np.array_equal(exact[0], graph[0]) and np.allclose(exact[1], graph[1], atol=1e-5)
        assert {index.concept_keys[label].split(":", 1)[0] for label in exact[0].ravel()} == {vocabulary}


@pytest.mark.parametrize("exact_names", [index_module.EXACT_VOCABULARY_NAMES, 0], ids=["exact-sub-index", "filter"])
def test_a_vocabulary_search_keeps_to_it_and_its_top1_does_not_depend_on_k(monkeypatch, exact_names):
    monkeypatch.setattr(index_module, "EXACT_VOCABULARY_NAMES", exact_names)
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((6000, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    keys = [f"{'BIG' if i % 3 else 'SMALL'}:{i}" for i in range(len(vectors))]
    # a deliberately weak graph with no search breadth of its own: what it finds depends on how broadly it searches
    index = NameIndex.from_vectors(keys, keys, vectors, HnswParams(M=4, ef_construction=16, ef_search=1))
    queries = rng.standard_normal((200, 32)).astype(np.float32)
    unfixed = index.query(queries, k=1)[0][:, 0] != index.query(queries, k=40)[0][:, 0]
    assert unfixed.any()  # k alone changes this graph's top-1, so the check below can fail
    for vocabulary in (None, "BIG", "SMALL"):
        one, _ = index.query(queries, k=1, ef=40, vocabulary=vocabulary)
        many, sims = index.query(queries, k=40, ef=40, vocabulary=vocabulary)
        assert np.array_equal(one[:, 0], many[:, 0]), vocabulary
        assert many.shape == (200, 40) and (np.diff(sims, axis=1) <= 1e-6).all()
        assert all(len(set(row)) == 40 for row in many.tolist())  # 40 different names, none twice
        if vocabulary is not None:
            assert {keys[label].split(":")[0] for label in many.ravel()} == {vocabulary}
    if exact_names:  # the small vocabulary's sub-index is exact: its top-1 is the brute-force nearest name
        small = np.flatnonzero([k.startswith("SMALL:") for k in keys])
        nearest = small[np.argmax((queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ vectors[small].T, axis=1)]
        assert np.array_equal(index.query(queries, k=1, vocabulary="SMALL")[0][:, 0], nearest)


def test_a_saved_pipeline_keeps_its_targets(index_dir, tmp_path):
    nlp = _nlp(index_dir, threshold=0.5, targets=["CODES", "PHENO"])
    expected = [(e.text, e._.concept, e._.codes) for e in nlp(TEXT).ents]
    nlp.to_disk(tmp_path / "p")
    again = spacy.load(tmp_path / "p")
    assert again.get_pipe_config("clin_linker")["targets"] == ["CODES", "PHENO"]
    assert again.get_pipe("clin_linker").targets == ["CODES", "PHENO"]
    assert [(e.text, e._.concept, e._.codes) for e in again(TEXT).ents] == expected


def test_reranking_orders_the_first_targets_candidates_and_its_code_follows_the_winner(index_dir, tmp_path):
    pytest.importorskip("torch", reason="training the tiny reranker needs the [train] extra")
    from reranker_fixture import train_tiny_cross_encoder

    from clin_linker.models.reranker.export import export_cross_encoder
    from clin_linker.models.reranker.inputs import mention_context

    # one epoch: this checks where the reranked candidates go, not how well a ten-group model ranks them
    export_cross_encoder(train_tiny_cross_encoder(tmp_path / "hf", epochs=1), tmp_path / "int8", "tiny-reranker")
    nlp = _nlp(index_dir, rerank=True, reranker_dir=str(tmp_path / "int8"), rerank_k=3, targets=["CODES", "PHENO"])
    doc = nlp(TEXT)
    reranker = nlp.get_pipe("clin_linker").reranker
    for span in doc.ents:
        assert all(key.startswith("CODES:") for key, _ in span._.candidates)
        assert span._.codes["CODES"] == span._.candidates[0] and span._.codes["PHENO"][0].startswith("PHENO:")
    reranked = _spans(doc)["high blood pressure"]  # no exact name in CODES: it went through the cross-encoder
    # the cross-encoder read the mention in its note context: the cache key is that context, the label and the
    # first target's retrieved head, whose concepts are exactly the reranked candidates on the span
    ctx = mention_context(TEXT, reranked.start_char, reranked.end_char)
    assert ctx.left and ctx.right
    keys = [key for key in reranker._cache
            if key[:4] == (ctx.left.lower(), ctx.mention, ctx.right.lower(), "CONDITION")]
    assert len(keys) == 1
    outcome = reranker._cache[keys[0]]
    assert outcome.reranked and reranked._.candidates == outcome.candidates
    assert set(keys[0][4]) == {key for key, _ in reranked._.candidates} and len(keys[0][4]) == 3
    assert all(key.startswith("CODES:") for key in keys[0][4])


def test_run_target_writes_the_targets_concepts_and_an_unknown_target_stops_before_any_work(index_dir, tmp_path,
                                                                                          capsys):
    from clin_linker.beam_jobs.cli import main

    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 1, "note_text": "Arterial hypertension. Asthma since childhood."}) + "\n")
    run = ["run", "--notes", str(notes), "--index", str(index_dir), "--threads", "1", "--threshold", "0.5"]
    assert main(run + ["--out", str(tmp_path / "o.duckdb"), "--target", "CODES,PHENO", "--target", "CODES"]) == 0
    con = duckdb.connect(str(tmp_path / "o.duckdb"), read_only=True)
    rows = con.execute("select c.vocabulary_id, c.concept_code, n.nlp_system from note_nlp n "
                       "join concept c on c.concept_id = n.note_nlp_source_concept_id").fetchall()
    assert rows and {r[0] for r in rows} == {"CODES"}
    assert {r[1] for r in rows} >= {"J45.909"}
    assert all("targets=CODES,PHENO" in r[2] for r in rows)
    capsys.readouterr()
    assert main(run + ["--out", str(tmp_path / "bad.duckdb"), "--target", "ICD10CM"]) == 2
    assert "which holds CODES, PHENO" in capsys.readouterr().err
    assert not (tmp_path / "bad.duckdb").exists()


def test_window_candidates_read_the_mention_with_the_words_around_it(index_dir):
    def linked(**linker):
        nlp = spacy.blank("en")
        nlp.add_pipe("sentencizer")
        ruler = nlp.add_pipe("entity_ruler")
        ruler.add_patterns([{"label": "CONDITION", "pattern": [{"LOWER": "urine"}]}])
        nlp.add_pipe("clin_linker", config={"index_dir": str(index_dir), "detector": "none", "threads": 2,
                                            "targets": ["CODES"], **linker})
        return nlp("Blood in urine, twice.").ents[0]

    span = linked(window_k=3)
    assert span.text == "urine"
    # "urine" alone is nearest nothing in particular; "Blood in urine" is hematuria
    assert span._.window_candidates[0][0] == "CODES:R31.9"
    assert len(span._.window_candidates) == 3 and all(k.startswith("CODES:") for k, _ in span._.window_candidates)
    assert linked()._.window_candidates is None  # off by default
