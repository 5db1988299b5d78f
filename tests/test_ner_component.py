"""The clin_ner component on the committed int8 model, and `clin-linker eval ner` on a hand-made file."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
import spacy

from clin_linker.pipeline import ner_component  # noqa: F401  (factory)

SENTENCE = "The patient has type 2 diabetes mellitus and was started on metformin."


@pytest.fixture(scope="module")
def ner_nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("clin_ner", config={"threads": 1})
    return nlp


def test_component_sets_omop_labelled_ents(ner_nlp):
    doc = ner_nlp(SENTENCE)
    assert [(e.text, e.label_) for e in doc.ents] == [("type 2 diabetes mellitus", "CONDITION"), ("metformin", "DRUG")]
    assert all(e._.detector == "ner" for e in doc.ents)


def test_pipe_equals_single_calls_on_crlf_and_unicode(ner_nlp):
    texts = [SENTENCE, "Fever 38.5°C.\r\nStarted aspirin 81 mg.\r\n", "Blood pressure 150/90, no chest pain."]
    single = [[(e.start_char, e.end_char, e.label_) for e in ner_nlp(t).ents] for t in texts]
    piped = [[(e.start_char, e.end_char, e.label_) for e in d.ents] for d in ner_nlp.pipe(texts, batch_size=3)]
    assert piped == single
    for text, spans in zip(texts, single):
        for start, end, _ in spans:
            assert text[start:end] == text[start:end].strip()


def test_to_disk_carries_the_model_and_spacy_load_tags_the_same(ner_nlp, tmp_path):
    ner_nlp.to_disk(tmp_path / "p")
    saved = (tmp_path / "p" / "clin_ner" / "model").resolve()
    assert (saved / "model.onnx").exists()
    again = spacy.load(tmp_path / "p")
    assert again.get_pipe_config("clin_ner")["model_dir"] == str(saved)
    assert again.get_pipe("clin_ner").tagger.info.directory == saved
    assert [(e.start_char, e.end_char, e.label_) for e in again(SENTENCE).ents] == \
        [(e.start_char, e.end_char, e.label_) for e in ner_nlp(SENTENCE).ents]


def test_shipped_pipeline_runs_ner_before_the_linker(nlp):
    assert nlp.pipe_names == ["sentencizer", "clin_abbreviations", "clin_ner", "clin_linker", "clin_sections",
                              "clin_context"]
    doc = nlp(SENTENCE)
    labels = {e.text: e.label_ for e in doc.ents}
    assert labels["metformin"] == "DRUG"  # the vocabularies hold no drugs: this came from the NER model


def test_eval_cli_on_a_hand_made_file(tmp_path):
    """Gold: the two mentions the model finds + one it cannot ("patient" as a CONDITION): P=1, R=2/3."""
    start = SENTENCE.index("type 2")
    gold = [
        {"start": start, "end": start + len("type 2 diabetes mellitus"), "label": "CONDITION"},
        {"start": SENTENCE.index("metformin"), "end": SENTENCE.index("metformin") + 9, "label": "DRUG"},
        {"start": 4, "end": 11, "label": "CONDITION"},
    ]
    data = tmp_path / "tiny.jsonl"
    data.write_text(json.dumps({"text": SENTENCE, "entities": gold}) + "\n")
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", "eval", "ner", "--data", str(data),
                          "--threads", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    report = json.loads(out.stdout)
    assert report["n_docs"] == 1
    assert report["micro"]["precision"] == pytest.approx(1.0)
    assert report["micro"]["recall"] == pytest.approx(2 / 3)
    assert report["micro"]["f1"] == pytest.approx(0.8)
    assert report["labels"]["CONDITION"]["recall"] == pytest.approx(0.5)
    assert report["labels"]["DRUG"]["f1"] == pytest.approx(1.0)
