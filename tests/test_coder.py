"""The document coders (pipeline.coder), ``clin-linker code`` and ``clin-linker train coder``, on the real shipped
pipeline (default index, NER, ConText) and hand-written notes."""
from __future__ import annotations

import json

import duckdb
import pytest

from clin_linker.beam_jobs.cli import main
from clin_linker.ontologies.icd10cm_specificity import Specificity
from clin_linker.pipeline.build import linker_of
from clin_linker.pipeline.coder import build_coding_pipeline, load_coder
from clin_linker.pipeline.coder.lexicon import CodedNote, CodingLexicon


@pytest.fixture(scope="module")
def coding_nlp(default_index):
    return build_coding_pipeline("ICD10CM", str(default_index), threads=1)


@pytest.fixture(scope="module")
def specificity(coding_nlp):
    return Specificity(linker_of(coding_nlp).resources.store.concepts())


def test_zero_shot_codes_asserted_conditions_and_leaves_negated_ones_out_unless_asked(coding_nlp):
    store = linker_of(coding_nlp).resources.store
    text = "The patient has essential hypertension. No hematuria. History of type 2 diabetes mellitus."
    doc = coding_nlp(text)
    codes = load_coder(store, zero_shot=True)(doc)
    by_code = {c.code: c for c in codes}
    assert "I10" in by_code and by_code["I10"].accepted, [c.code for c in codes]
    assert not any(c.code.startswith("R31") for c in codes), "the negated hematuria made a code"
    assert any(c.code.startswith("E11") for c in codes), "a historical condition must be coded"
    evidence = by_code["I10"].evidence[0]
    assert text[evidence.start:evidence.end] == evidence.text == "essential hypertension"
    order = [(-c.score, c.concept_key) for c in codes]
    assert order == sorted(order)  # best score first, ties by code

    with_negated = load_coder(store, zero_shot=True, excluded_flags=("is_family", "is_hypothetical"))(doc)
    hematuria = [c for c in with_negated if c.code.startswith("R31")]
    assert hematuria and hematuria[0].evidence[0].flags == ("is_negated",)
    with pytest.raises(ValueError, match="unknown assertion flag"):
        load_coder(store, zero_shot=True, excluded_flags=("negated",))


def test_the_shipped_coder_ranks_billable_codes_with_evidence(coding_nlp, specificity):
    store = linker_of(coding_nlp).resources.store
    doc = coding_nlp("She was admitted with fever and abdominal pain. She denies cough.")
    codes = load_coder(store)(doc)
    assert codes and all(specificity.is_valid(c.code) for c in codes)
    accepted = [c.code for c in codes if c.accepted]
    assert "R50.9" in accepted, [(c.code, round(c.score, 2)) for c in codes[:8]]
    assert all(not set(e.flags) & {"is_negated"} for c in codes for e in c.evidence)
    # the denied cough is removed before scoring: R05 may still be ranked from the site's habits around fever, but
    # it is not accepted and the negated mention is not its evidence
    cough = [c for c in codes if c.code.startswith("R05")]
    assert not any(c.accepted for c in cough), [(c.code, c.score) for c in cough]
    assert all(e.text != "cough" for c in cough for e in c.evidence)


def _code(tmp_path, capsys, *extra: str) -> list[dict]:
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 7, "note_text": "Patient with constipation and essential hypertension."})
                     + "\n" + json.dumps({"note_id": 8, "note_text": ""}) + "\n")
    out = tmp_path / "codes.jsonl"
    assert main(["code", "--notes", str(notes), "--out", str(out), "--threads", "1", *extra]) == 0
    captured = capsys.readouterr()
    assert "note 8 note_text is empty" in captured.err  # the invalid record is named, not silently dropped
    return [json.loads(line) for line in out.read_text().splitlines()]


@pytest.mark.parametrize("mode", [(), ("--zero-shot",)], ids=["coder-model", "zero-shot"])
def test_code_command_codes_constipation_and_essential_hypertension(tmp_path, capsys, specificity, mode):
    db = tmp_path / "run.duckdb"
    lines = _code(tmp_path, capsys, "--db", str(db), *mode)
    assert [line["note_id"] for line in lines] == [7]
    codes = {c["code"]: c for c in lines[0]["codes"]}
    assert {"K59.00", "I10"} <= set(codes), sorted(codes)
    assert all(c["accepted"] for c in codes.values())  # without --all only accepted codes are written
    assert all(specificity.is_valid(code) for code in codes)
    assert {"text": "essential hypertension", "source": "retrieval", "rank": 0} in [
        {k: e[k] for k in ("text", "source", "rank")} for e in codes["I10"]["evidence"]]
    # the table holds the same list; a re-run replaces it instead of adding to it
    _code(tmp_path, capsys, "--db", str(db), *mode)
    con = duckdb.connect(str(db))
    rows = con.execute("SELECT concept_code, code_rank, accepted FROM clin_linker_note_code WHERE note_id = 7 "
                       "ORDER BY code_rank").fetchall()
    con.close()
    assert [r[0] for r in rows] == [c["code"] for c in lines[0]["codes"]] and [r[1] for r in rows] == list(
        range(1, len(rows) + 1))


def test_lexicon_counts_pairs_seen_in_enough_notes_and_round_trips(tmp_path):
    notes = [CodedNote({"mention": frozenset({"tired", "fever"})}, frozenset({"ICD10CM:R53.83"})),
             CodedNote({"mention": frozenset({"tired"})}, frozenset({"ICD10CM:R53.83", "ICD10CM:I10"})),
             CodedNote({"mention": frozenset({"fever"})}, frozenset({"ICD10CM:R50.9"}))]
    lexicon = CodingLexicon.fit(notes, min_notes=2)
    # "tired": 2 notes, both with R53.83 -> share 2 / (2 + 1); I10 was seen once: dropped. "fever": no pair twice.
    assert list(lexicon.association("mention", "tired")) == [("ICD10CM:R53.83", pytest.approx(2 / 3), 2)]
    assert list(lexicon.association("mention", "fever")) == []
    assert lexicon.prior_share("ICD10CM:R53.83") == pytest.approx(2.5 / 4)
    lexicon.save(tmp_path / "lexicon.json.gz")
    again = CodingLexicon.load(tmp_path / "lexicon.json.gz")
    assert again.tables == lexicon.tables and again.prior == lexicon.prior and again.n_notes == 3


def test_train_coder_learns_a_site_habit_in_seconds(coding_nlp, tmp_path, capsys):
    # the site codes "feeling tired" as R53.83 (other fatigue): retrieval alone does not know that habit
    habit = [{"doc_id": f"t{i}", "text": f"The patient reports feeling tired. {extra}", "icd10cm": ["R53.83", *codes]}
             for i, (extra, codes) in enumerate([("She has essential hypertension.", ["I10"]),
                                                  ("He has type 2 diabetes mellitus.", ["E11.9"]),
                                                  ("No fever.", []), ("She has asthma.", ["J45.909"]),
                                                  ("He has essential hypertension.", ["I10"]),
                                                  ("She has constipation.", ["K59.00"])])]
    other = [{"doc_id": "o1", "text": "She has asthma.", "icd10cm": ["J45.909"]},
             {"doc_id": "o2", "text": "He has constipation.", "icd10cm": ["K59.00"]}]
    docs, dev = tmp_path / "train.jsonl", tmp_path / "dev.jsonl"
    docs.write_text("".join(json.dumps(d) + "\n" for d in habit + other))
    dev.write_text("".join(json.dumps(d) + "\n" for d in habit[:3] + other))
    out = tmp_path / "coder"
    assert main(["train", "coder", "--docs", str(docs), "--dev", str(dev), "--out", str(out), "--threads", "1"]) == 0
    assert {"model.onnx", "artifact.json", "lexicon.json.gz"} <= {p.name for p in out.iterdir()}
    artifact = json.loads((out / "artifact.json").read_text())
    assert artifact["kind"] == "document-coder" and 0 < artifact["threshold"] < 1
    capsys.readouterr()

    lines = _code(tmp_path, capsys, "--coder", str(out), "--all")
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 9, "note_text": "The patient reports feeling tired."}) + "\n")
    result = tmp_path / "tired.jsonl"
    assert main(["code", "--notes", str(notes), "--out", str(result), "--coder", str(out), "--all"]) == 0
    ranked = [c["code"] for c in json.loads(result.read_text())["codes"]]
    assert ranked[:1] == ["R53.83"], ranked[:5]
    assert lines and lines[0]["coder"].startswith("clin-coder")

    # a model that needs a feature this version does not compute is refused, naming it
    artifact["feature_names"] = [*artifact["feature_names"], "a_feature_of_a_newer_version"]
    (out / "artifact.json").write_text(json.dumps(artifact))
    with pytest.raises(ValueError, match=r"does not compute \(a_feature_of_a_newer_version\); retrain"):
        load_coder(linker_of(coding_nlp).resources.store, "ICD10CM", out)


def test_the_shipped_icd10pcs_coder_codes_procedures_to_the_level_the_note_supports(tmp_path, capsys):
    notes = tmp_path / "notes.jsonl"
    notes.write_text(json.dumps({"note_id": 3, "note_text": "A laparoscopic cholecystectomy was performed. A chest "
                                 "X-ray showed no infiltrates."}) + "\n")
    out = tmp_path / "pcs.jsonl"
    assert main(["code", "--vocabulary", "ICD10PCS", "--notes", str(notes), "--out", str(out), "--all",
                 "--threads", "1"]) == 0
    line = json.loads(out.read_text())
    assert line["coder"].startswith("clin-coder-codiesp-pcs")
    ranked = [c["code"] for c in line["codes"]]
    # the approach the mention names completes 0FT4 (resection of gallbladder); the chest X-ray is imaging (GEMs)
    assert "0FT44ZZ" in ranked[:5] and "BW03ZZZ" in ranked[:5], ranked[:10]
    completed = next(c for c in line["codes"] if c["code"] == "0FT44ZZ")
    assert any(e["text"].lower().endswith("cholecystectomy") for e in completed["evidence"])
