"""Reranker training code: hard negatives mined by the two real committed encoders (the shipped SapBERT-style one and
the base all-MiniLM-L6-v2) over tiny dictionaries, examples built from a tiny training-data folder, and a
seconds-long training run through the run-time pair encoder."""
from __future__ import annotations

import json

import pytest

from clin_linker.models.artifacts import ARTIFACTS_DIR
from clin_linker.models.biencoder.dictionary import load_names_tsv
from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
from clin_linker.models.reranker.data import (
    Miner, RerankExample, build_examples, load_examples, read_linked_entities, save_examples, tsv_domains,
)
from clin_linker.models.reranker.inputs import MentionContext, TokenBudget, candidate_text

NAMES = """concept_id\tname
MESH:D1\tMyocardial Infarction
MESH:D1\tHeart Attack
MESH:D2\tChest Pain
MESH:D3\tHeart Failure
MESH:D4\tAngina Pectoris
MESH:D5\tDiabetes Mellitus
MESH:D5\tSugar Diabetes
MESH:D6\tDiabetes Insipidus
"""
NAMES_OF = {"MESH:D1": {"Myocardial Infarction", "Heart Attack"}, "MESH:D2": {"Chest Pain"},
            "MESH:D3": {"Heart Failure"}, "MESH:D4": {"Angina Pectoris"},
            "MESH:D5": {"Diabetes Mellitus", "Sugar Diabetes"}, "MESH:D6": {"Diabetes Insipidus"}}


@pytest.fixture(scope="module")
def encoders():
    return (OnnxSentenceEncoder(ARTIFACTS_DIR / "encoder_sapbert_int8", threads=1),
            OnnxSentenceEncoder(ARTIFACTS_DIR / "encoder_minilm_int8", threads=1))


@pytest.fixture(scope="module")
def miner(tmp_path_factory, encoders):
    path = tmp_path_factory.mktemp("rr") / "names.tsv"
    path.write_text(NAMES)
    d = load_names_tsv(path)
    domains = {c: ("drug" if c == "MESH:D6" else "condition") for c in d.concepts}
    return Miner(d, *encoders, domains=domains, cache={}, k=16)


def _concept_of(text: str) -> str:
    """The concept a candidate text names (its name before the ' ; domain' suffix)."""
    name = text.split(" ; ")[0]
    (concept,) = [c for c, names in NAMES_OF.items() if name in names]
    return concept


def _gold(miner, *ids):
    return {miner.d.concept_index(i, create=False) for i in ids}


def test_mined_examples_put_the_gold_name_first_and_no_gold_concept_among_the_negatives(miner):
    ctx = MentionContext("Admitted with a", "heart attack", "last year.")
    queries = [(ctx, "heart attack", _gold(miner, "MESH:D1")),
               (MentionContext.bare("cardiac failure or infarct"), "cardiac failure or infarct",
                _gold(miner, "MESH:D1", "MESH:D3"))]  # composite gold: neither concept is a negative
    ex = miner.examples(queries, negatives=3, source="test")
    assert len(ex) == 2
    first = ex[0]
    assert first.context == ctx and first.source == "test"
    # the positive is the gold concept's name closest to the query (spelled like it: the uncased encoder gives it
    # cosine 1), with its domain
    assert first.positive == candidate_text("Heart Attack", "condition")
    assert len(first.negatives) == 3 and len(set(first.negatives)) == 3
    assert all(_concept_of(n) != "MESH:D1" for n in first.negatives)
    assert all(n.endswith(" ; drug" if _concept_of(n) == "MESH:D6" else " ; condition") for n in first.negatives)
    composite = ex[1]
    assert _concept_of(composite.positive) in {"MESH:D1", "MESH:D3"}
    assert not {_concept_of(n) for n in composite.negatives} & {"MESH:D1", "MESH:D3"}
    assert composite.context == MentionContext.bare("cardiac failure or infarct")


def test_a_gold_concept_outside_both_rankings_is_still_the_positive(encoders, tmp_path):
    path = tmp_path / "names.tsv"
    path.write_text(NAMES)
    d = load_names_tsv(path)
    narrow = Miner(d, *encoders, domains={}, cache={}, k=1)  # each ranking holds 2 of the 6 concepts, maybe not D6
    gold = {d.concept_index("MESH:D6", create=False)}
    (ex,) = narrow.examples([(MentionContext.bare("heart attack"), "heart attack", gold)], negatives=3, source="t")
    assert ex.positive == "Diabetes Insipidus"  # no domain known: the bare name
    assert "Diabetes Insipidus" not in ex.negatives and 1 <= len(ex.negatives) <= 3


def test_synonym_examples_never_use_the_query_as_positive_or_negative(miner):
    queries = [(MentionContext.bare(q), q, _gold(miner, c)) for c, names in NAMES_OF.items() for q in names]
    queries.append((MentionContext.bare("heart attack"), "heart attack", _gold(miner, "MESH:D1")))  # other case
    ex = miner.examples(queries, negatives=3, source="syn", exclude_query_name=True)
    # a concept with a single name has nothing else to be the positive: those queries give no example
    assert sorted(e.mention.lower() for e in ex) == ["diabetes mellitus", "heart attack", "heart attack",
                                                      "myocardial infarction", "sugar diabetes"]
    for e in ex:
        positive = e.positive.split(" ; ")[0]
        assert positive.lower() != e.mention.lower()
        assert positive in next(names for names in NAMES_OF.values() if e.mention.lower() in
                                {n.lower() for n in names})
        assert e.mention.lower() not in {n.split(" ; ")[0].lower() for n in e.negatives}
        assert e.positive not in e.negatives and e.left == e.right == ""


def test_tsv_domains_take_the_first_listed_file_and_know_only_the_training_files(tmp_path):
    medic = tmp_path / "ctd_medic_names.tsv"
    medic.write_text("concept_id\tname\nMESH:D1\tMyocardial Infarction\n")
    mesh = tmp_path / "mesh_descriptor_labels.tsv"
    mesh.write_text("concept_id\tname\nMESH:D1\tMyocardial Infarction\nMESH:D9\tAspirin\n")
    other = tmp_path / "site.tsv"
    other.write_text("concept_id\tname\nX:1\tThing\n")
    assert tsv_domains([medic, mesh, other]) == {"MESH:D1": "condition", "MESH:D9": "drug", "X:1": ""}
    assert tsv_domains([mesh, medic])["MESH:D1"] == "drug"


# --- examples from a tiny training-data folder --------------------------------------------------------------------

MEDIC = """concept_id\tname
MESH:D1\tMyocardial Infarction
MESH:D1\tHeart Attack
MESH:D2\tVentricular Septal Defect
MESH:D3\tHeart Failure
MESH:D3\tCardiac Failure
MESH:D4\tAngina Pectoris
MESH:D5\tDiabetes Mellitus
MESH:D5\tSugar Diabetes
"""


def _doc(doc_id: str, text: str, entities: list[tuple[str, list[str]]]) -> dict:
    out, at = [], 0
    for mention, ids in entities:
        start = text.index(mention, at)
        at = start + len(mention)
        out.append({"start": start, "end": at, "label": "DISEASE", "text": mention, "concept_ids": ids})
    return {"doc_id": doc_id, "text": text, "entities": out}


@pytest.fixture()
def data_folder(tmp_path):
    (tmp_path / "synonyms").mkdir()
    (tmp_path / "synonyms" / "ctd_medic_names.tsv").write_text(MEDIC)
    corpus = tmp_path / "ner" / "ncbi_disease"
    corpus.mkdir(parents=True)
    docs = [
        _doc("1", "Children with ventricular septal defect (VSD) were followed.\nVSD closure helped.",
             [("ventricular septal defect", ["MESH:D2"]), ("VSD", ["MESH:D2"]), ("VSD", ["MESH:D2"])]),
        _doc("2", "He had a heart attack and later cardiac failure; gout was noted.",
             [("heart attack", ["MESH:D1"]), ("cardiac failure", ["MESH:D3"]),
              ("gout", ["MESH:D99"])]),  # gold not in the dictionary: no example
        _doc("3", "No disease here, only a sign.", [("sign", [])]),  # no concept ids: not a linked entity
    ]
    (corpus / "train.jsonl").write_text("".join(json.dumps(d) + "\n" for d in docs))
    (corpus / "dev.jsonl").write_text(json.dumps(_doc("9", "Angina pectoris.", [("Angina pectoris", ["MESH:D4"])]))
                                      + "\n")  # never read by training
    return tmp_path


def test_linked_entities_carry_their_document_context(data_folder):
    entities = read_linked_entities(data_folder / "ner" / "ncbi_disease" / "train.jsonl")
    assert [e["mention"] for e in entities] == ["ventricular septal defect", "VSD", "VSD", "heart attack",
                                                "cardiac failure", "gout"]
    vsd = entities[2]["context"]
    assert vsd == MentionContext("Children with ventricular septal defect (VSD) were followed.", "VSD", "closure helped.")
    assert {e["doc_id"] for e in entities} == {"1", "2"}


def test_build_examples_reads_train_mentions_in_context_and_adds_synonym_queries(data_folder, encoders):
    examples, stats = build_examples(*encoders, data=data_folder, corpora=("ncbi_disease",), negatives=3,
                                     synonyms={"ctd_medic_names.tsv": 2})
    assert stats["ncbi_disease"] == {"entities": 6, "examples": 5}  # all but "gout"
    assert stats["ctd_medic_names.tsv"]["examples"] == 2 and stats["examples"] == len(examples) == 7
    mentions = [e for e in examples if e.source == "mention:ncbi_disease"]
    synonyms = [e for e in examples if e.source == "synonyms:ctd_medic_names.tsv"]
    assert len(mentions) == 5 and len(synonyms) == 2
    assert all(e.positive.endswith(" ; condition") for e in examples)  # the MEDIC file's domain
    # a short form keeps its own spelling and context in the example (its retrieval query was the long form)
    vsd = [e for e in mentions if e.mention == "VSD"]
    assert len(vsd) == 2 and {e.right for e in vsd} == {") were followed. VSD closure helped.", "closure helped."}
    assert all(_in(e.positive, "MESH:D2") for e in vsd)
    heart = next(e for e in mentions if e.mention == "heart attack")
    assert heart.left == "He had a" and heart.right == "and later cardiac failure; gout was noted."
    assert heart.positive == "Heart Attack ; condition" and not any(_in(n, "MESH:D1") for n in heart.negatives)
    for e in synonyms:  # one name of a two-name concept against its other name, no context
        assert e.left == e.right == "" and e.positive.split(" ; ")[0].lower() != e.mention.lower()
    again, _ = build_examples(*encoders, data=data_folder, corpora=("ncbi_disease",), negatives=3,
                              synonyms={"ctd_medic_names.tsv": 2})
    assert again == examples  # seeded: the same examples in the same order


def _in(text: str, concept: str) -> bool:
    names = {line.split("\t")[1] for line in MEDIC.splitlines()[1:] if line.split("\t")[0] == concept}
    return text.split(" ; ")[0] in names


def test_examples_round_trip_through_the_saved_file(tmp_path):
    examples = [RerankExample("Admitted with", "heart attack", "last year.", "Myocardial Infarction ; condition",
                              ["Chest Pain ; condition", "Heart Failure ; condition"], "mention:t"),
                RerankExample("", "sugar diabetes", "", "Diabetes Mellitus", ["Diabetes Insipidus"], "synonyms:t")]
    save_examples(tmp_path / "ex.json.gz", examples, {"examples": 2})
    loaded, stats = load_examples(tmp_path / "ex.json.gz")
    assert loaded == examples and stats == {"examples": 2}
    assert loaded[0].context == MentionContext("Admitted with", "heart attack", "last year.")


# --- a seconds-long training run ----------------------------------------------------------------------------------


def test_tiny_training_run_saves_a_model_that_prefers_the_trained_positive_in_context(tmp_path):
    pytest.importorskip("torch")
    import torch
    from transformers import AutoModelForSequenceClassification

    from clin_linker.models.reranker.inputs import PairEncoder
    from clin_linker.models.reranker.train import load_cross_encoder, main

    examples = [RerankExample("Admitted with a", "heart attack", "last year.", "Myocardial Infarction ; condition",
                              ["Chest Pain ; condition", "Heart Failure ; condition"], "t"),
                RerankExample("", "sugar diabetes", "", "Diabetes Mellitus ; condition",
                              ["Diabetes Insipidus ; condition", "Chest Pain ; condition"], "t")]
    save_examples(tmp_path / "ex.json.gz", examples, {"examples": 2})
    budget = TokenBudget(left=6, mention=6, right=6, candidate=10)
    main(["--examples", str(tmp_path / "ex.json.gz"), "--out", str(tmp_path / "m"), "--layers", "1",
          "--epochs", "60", "--batch-queries", "2", "--group", "3", "--lr", "3e-4", "--warmup", "1",
          "--threads", "1", "--device", "cpu", "--pointwise-weight", "0.5",
          "--budget", *map(str, budget.to_json().values())])
    summary = json.loads((tmp_path / "m" / "train_summary.json").read_text())
    assert summary["steps"] == 60 and summary["layers"] == 1 and summary["examples"] == 2
    assert summary["pointwise_weight"] == 0.5 and summary["budget"] == budget.to_json()
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "m").eval()
    assert model.config.num_hidden_layers == 1 and model.config.num_labels == 1
    # the saved tokenizer.json is the one the base model ships (what export and the runtime will read)
    _, base_tokenizer = load_cross_encoder(None, 1)
    pairs = PairEncoder.from_file(str(tmp_path / "m" / "tokenizer.json"), budget)
    base = PairEncoder.from_file(base_tokenizer, budget)
    probe = [e.context for e in examples], [e.positive for e in examples]
    assert all((pairs.encode(*probe)[k] == base.encode(*probe)[k]).all() for k in ("input_ids", "token_type_ids"))
    with torch.no_grad():
        for e in examples:
            cands = [e.positive] + e.negatives
            inputs = {k: torch.from_numpy(v) for k, v in pairs.encode([e.context] * len(cands), cands).items()}
            assert int(model(**inputs).logits[:, 0].argmax()) == 0
