"""clin_context: medspaCy ConText + our rules set the DESIGN §2 assertion flags.

The sentences are tests/fixtures/context_sentences.jsonl (the `clin-linker eval context` format)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import spacy

from clin_linker.pipeline.context_component import (
    CATEGORY_FLAGS,
    EVAL_FLAGS,
    assert_span,
    context_pipeline,
)
from clin_linker.pipeline.evaluation.metrics import predict_flags, score_context

FIXTURE = Path(__file__).parent / "fixtures" / "context_sentences.jsonl"
EXAMPLES = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def nlp():
    return context_pipeline()


def test_fixture_size_and_traps():
    assert len(EXAMPLES) >= 60
    texts = " ".join(e["text"].lower() for e in EXAMPLES)
    for trap in ("negative for fever, chills and night sweats", "no evidence of", "r/o", "rule out", "mother had",
                 "history of", "denies", "no increase", "not only", " but ", "family history:\n", "pmh:"):
        assert trap in texts, trap
    for example in EXAMPLES:  # offsets point at the target
        assert 0 <= example["start"] < example["end"] <= len(example["text"])


IDS = [f"{i}:{e['text'][e['start']:e['end']]}" for i, e in enumerate(EXAMPLES)]


@pytest.mark.parametrize("example", EXAMPLES, ids=IDS)
def test_context_sentence(nlp, example):
    span = assert_span(nlp, example["text"], example["start"], example["end"])
    got = {flag: bool(getattr(span._, attr)) for flag, attr in EVAL_FLAGS.items()}
    want = {flag: example[flag] for flag in EVAL_FLAGS if example.get(flag) is not None}
    assert {f: got[f] for f in want} == want, example["text"]
    if "section" in example:
        assert span._.section == example["section"]


def test_flag_names_are_medspacy_attribute_names():
    assert set(CATEGORY_FLAGS.values()) == set(EVAL_FLAGS.values())


def test_all_mentions_whatever_detector(nlp):
    """Flags are set on every doc.ents span, and recomputed (not only ever set) when the component reruns."""
    doc = nlp.make_doc("Denies fever. Reports cough.")
    doc.ents = [doc.char_span(7, 12, label="Condition"), doc.char_span(22, 27, label="Observation")]
    for _, component in nlp.pipeline:
        doc = component(doc)
    fever, cough = doc.ents
    assert fever._.is_negated and not cough._.is_negated
    cough._.is_negated = True  # stale value from a previous run
    nlp.get_pipe("clin_context")(doc)
    assert not doc.ents[1]._.is_negated


def test_no_entities_is_a_no_op(nlp):
    doc = nlp("No evidence of anything here.")
    assert doc.ents == ()


def test_section_flags_config_off():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_sections")
    nlp.add_pipe("clin_context", config={"section_flags": {}})
    span = assert_span(nlp, "PMH: asthma.", 5, 11)
    assert span._.section == "past_medical_history" and not span._.is_historical


def test_section_flags_reject_unknown_flag():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="unknown flags"):
        nlp.add_pipe("clin_context", config={"section_flags": {"family_history": {"is_relative": True}}})


def test_newline_terminates_scope_config():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_context", config={"newline_terminates": False})
    assert assert_span(nlp, "Denies fever\nwheezing", 13, 21)._.is_negated
    assert not assert_span(context_pipeline(), "Denies fever\nwheezing", 13, 21)._.is_negated


def test_mention_detectors_skipped_in_evaluation():
    nlp = context_pipeline()
    ruler = nlp.add_pipe("entity_ruler", first=True)
    ruler.add_patterns([{"label": "X", "pattern": "cough"}])
    flags = predict_flags(nlp, {"text": "No fever or cough.", "start": 3, "end": 8})
    assert flags["negated"]


def test_score_context_counts():
    examples = [
        {"text": "No fever.", "start": 3, "end": 8, "negated": True},  # tp
        {"text": "Fever.", "start": 0, "end": 5, "negated": True},  # fn
        {"text": "No fever.", "start": 3, "end": 8, "negated": False, "family": False},  # fp, family tn
        {"text": "Cough.", "start": 0, "end": 5, "negated": False},  # tn
    ]
    scores = score_context(examples)
    assert set(scores) == {"negated", "family"}  # flags absent from every example are not scored
    neg = scores["negated"]
    assert neg == {"accuracy": 0.5, "precision": 0.5, "recall": 0.5, "f1": 0.5, "n": 4}
    assert scores["family"] == {"accuracy": 1.0, "precision": 0.0, "recall": 0.0, "f1": 0.0, "n": 1}


def test_score_context_on_fixture(nlp):
    scores = score_context(EXAMPLES, nlp)
    assert set(scores) == set(EVAL_FLAGS)
    for flag, s in scores.items():
        assert set(s) == {"accuracy", "precision", "recall", "f1", "n"}
        assert s["accuracy"] == 1.0, flag
