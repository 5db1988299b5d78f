"""The clin_linker component on the real default index and the real int8 encoder."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from clin_linker.pipeline.build import build_pipeline


def _ents(doc):
    return {e.text: e for e in doc.ents}


def test_diabetes_and_hypertension_get_e11_and_i10_with_target_icd10cm(default_index):
    icd = build_pipeline(str(default_index), threads=1, ner_config={"threads": 1}, targets=["ICD10CM"])
    doc = icd("Patient with type 2 diabetes mellitus and essential hypertension.")
    tops = [key for e in doc.ents for key, _ in e._.candidates[:5]]
    assert any(k.startswith("ICD10CM:E11") for k in tops), tops
    assert "ICD10CM:I10" in tops, tops
    ents = _ents(doc)
    assert ents["type 2 diabetes mellitus"].label_ == "CONDITION"
    assert ents["essential hypertension"]._.concept == "ICD10CM:I10"


def test_without_targets_every_vocabulary_competes_and_snomed_names_win_here(nlp):
    doc = nlp("Patient with type 2 diabetes mellitus and essential hypertension.")
    assert {e.text: e._.concept for e in doc.ents} == {"type 2 diabetes mellitus": "SNOMED:44054006",
                                                      "essential hypertension": "SNOMED:59621000"}
    vocabularies = {key.split(":")[0] for e in doc.ents for key, _ in e._.candidates}
    assert {"SNOMED", "ICD10CM"} <= vocabularies  # the others were candidates too


def test_layperson_heart_attack_links_to_myocardial_infarction(nlp):
    doc = nlp("He had a heart attack in 2019.")
    span = _ents(doc)["heart attack"]
    store = nlp.get_pipe("clin_linker").resources.store
    assert "myocardial infarction" in store[span._.concept].concept_name.lower()


def test_candidates_are_sorted_and_scored(nlp):
    doc = nlp("Denies chest pain. Difficulty walking up stairs.")
    for span in doc.ents:
        scores = [s for _, s in span._.candidates]
        assert scores == sorted(scores, reverse=True)
        assert 1 <= len(scores) <= 5
        assert span._.score == scores[0]


def test_threshold_above_every_score_makes_mentions_nil_but_keeps_candidates(default_index):
    strict = build_pipeline(str(default_index), threshold=1.01)  # without rerank, threshold is the NIL rule
    doc = strict("Patient with essential hypertension.")
    assert doc.ents
    for span in doc.ents:
        assert span._.concept is None and span._.candidates


def test_pipe_batches_give_the_same_result_as_single_calls(nlp):
    texts = ["Essential hypertension.", "History of asthma and gout.", "No evidence of pneumonia."]
    batched = [[(e.text, e._.concept) for e in d.ents] for d in nlp.pipe(texts, batch_size=3)]
    single = [[(e.text, e._.concept) for e in nlp(t).ents] for t in texts]
    assert batched == single


def test_bad_config_is_refused_with_a_clear_message(default_index):
    with pytest.raises(ValueError, match="detector"):
        build_pipeline(str(default_index), detector="magic")


def _run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_entry_point_and_disk_round_trip_in_a_fresh_process(default_index, tmp_path):
    """add_pipe works without importing clin_linker (spacy_factories entry point); to_disk/load keeps it."""
    stdout = _run(
        f"""
        import spacy
        nlp = spacy.blank("en")
        nlp.add_pipe("clin_linker", config={{"index_dir": {str(default_index)!r}, "k": 3}})
        nlp.to_disk({str(tmp_path / "pipe")!r})
        again = spacy.load({str(tmp_path / "pipe")!r})
        doc = again("Essential hypertension and gout.")
        print(again.pipe_names, again.get_pipe("clin_linker").k, [(e.text, e._.concept) for e in doc.ents])
        print(again.get_pipe_config("clin_linker")["index_dir"])
        """
    )
    assert "['clin_linker'] 3" in stdout
    assert "('Essential hypertension', 'SNOMED:59621000')" in stdout
    # the saved pipeline carries its own copy of the index, not a path into this machine's cache
    assert stdout.splitlines()[-1] == str((tmp_path / "pipe" / "clin_linker" / "index").resolve())


def test_runtime_import_does_not_load_torch():
    _run(
        """
        import sys
        import clin_linker.pipeline
        assert "torch" not in sys.modules
        """
    )


def test_linking_and_the_job_run_with_torch_unavailable(default_index):
    """Run time is onnxruntime + tokenizers: with torch made unimportable the pipeline still links.

    (spaCy's thinc imports torch opportunistically when it is installed, so "not in sys.modules" is only
    checkable for our own package import above; blocking the import proves we never need it.)
    """
    stdout = _run(
        f"""
        import sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        import clin_linker.beam_jobs.job
        from clin_linker.pipeline.build import build_pipeline
        doc = build_pipeline({str(default_index)!r})("Essential hypertension.")
        print([e._.concept for e in doc.ents])
        """
    )
    assert "SNOMED:59621000" in stdout


def test_shipped_pipeline_sets_context_and_expands_abbreviations(nlp):
    doc = nlp("Past Medical History:\nHTN, DM2.\n\nHPI: Denies chest pain. Mother had breast cancer.")
    ents = _ents(doc)
    assert ents["HTN"]._.is_historical and ents["HTN"]._.section == "past_medical_history"
    assert ents["DM2"]._.concept == "SNOMED:44054006"  # embedded as "type 2 diabetes mellitus"
    assert ents["chest pain"]._.is_negated
    assert ents["breast cancer"]._.is_family and not ents["breast cancer"]._.is_negated
