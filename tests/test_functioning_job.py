"""Functioning statements in the shipped pipeline and the batch job (``--functioning``): the ``clin_functioning``
spans are coded into ICF while the NER's mentions keep their own target, and land in NOTE_NLP as Observation rows
whose term_modifiers carry assistance, device and distance.

The store: a hand-written ICF ClaML sample (tests/fixtures/icf_claml, not WHO's file; with our therapy terms) and the
custom vocabulary CODES (tests/fixtures/targets), embedded with the real encoder; the real NER model finds the
conditions.
"""
from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from clin_linker.beam_jobs.cli import main as cli_main
from clin_linker.pipeline.build import build_pipeline
from small_indexes import build_small_index

FIXTURES = Path(__file__).parent / "fixtures"
NOTE = ("Pt ambulated 200 ft with a rolling walker, min assist. "
        "Past medical history: arterial hypertension and asthma.")


@pytest.fixture(scope="module")
def icf_index(tmp_path_factory) -> Path:
    sources = [f"icf-claml={FIXTURES / 'icf_claml' / 'icf_sample.xml'}",
               f"custom:CODES={FIXTURES / 'targets' / 'codes.csv'}"]
    return build_small_index(tmp_path_factory.mktemp("icf"), sources)


def test_functioning_spans_are_coded_into_icf_and_the_other_mentions_keep_their_target(icf_index):
    nlp = build_pipeline(str(icf_index), functioning=True, targets=["CODES"], threads=1, ner_config={"threads": 1},
                         threshold=0.5)
    doc = nlp(NOTE)
    walking = next(e for e in doc.ents if e._.detector == "functioning")
    assert walking.text == "ambulated 200 ft" and walking.label_ == "OBSERVATION"
    assert walking._.concept.startswith("ICF:d450")
    assert all(key.startswith("ICF:") for key, _ in walking._.candidates)
    assert walking._.functioning == {"assistance": "minimal assist", "device": "rolling walker", "distance": "200 ft"}
    others = [e for e in doc.ents if e._.detector != "functioning"]
    assert others, "the NER model found no condition in the note"
    for span in others:
        assert all(key.startswith("CODES:") for key, _ in span._.candidates)
    assert any(span._.concept == "CODES:I10" for span in others)
    assert "functioning=ICF" in nlp.get_pipe("clin_linker").model_id


def test_the_batch_job_writes_functioning_rows_with_their_modifiers(icf_index, tmp_path, capsys):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 7, "person_id": 1, "note_text": NOTE}) + "\n")
    out = tmp_path / "omop.duckdb"
    code = cli_main(["run", "--no-report", "--threads", "1", "--notes", str(notes), "--out", str(out),
                     "--index", str(icf_index), "--functioning", "--target", "CODES", "--threshold", "0.5"])
    assert code == 0, capsys.readouterr().out
    with duckdb.connect(str(out), read_only=True) as con:
        rows = con.execute('select lexical_variant, term_modifiers, nlp_system from note_nlp order by "offset"'
                           ).fetchall()
    walking = [r for r in rows if r[0] == "ambulated 200 ft"]
    assert len(walking) == 1
    modifiers = walking[0][1]
    assert "code=ICF:d450" in modifiers and "label=OBSERVATION" in modifiers
    assert "assistance=minimal assist,device=rolling walker,distance=200 ft" in modifiers
    assert all("functioning=ICF" in r[2] for r in rows)


def test_functioning_without_icf_in_the_store_fails_before_any_note_naming_the_fix(small_index, tmp_path, capsys):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 1, "note_text": NOTE}) + "\n")
    code = cli_main(["run", "--no-report", "--notes", str(notes), "--out", str(tmp_path / "o.duckdb"),
                     "--index", str(small_index), "--functioning"])
    said = capsys.readouterr()
    assert code != 0
    assert "holds no ICF concept" in said.out + said.err and "--source icf-claml=" in said.out + said.err
    assert not (tmp_path / "o.duckdb").exists()
