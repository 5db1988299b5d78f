"""spaCy's component contract for clin_ner and clin_linker: cheap constructors, initialize / first use,
to_disk / from_disk that survive a move to another machine, declared assigns / requires.

Everything runs on the real int8 models and the small custom index (``small_index``), no mocks.
"""
from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest
import spacy
from thinc.api import Config

from clin_linker.pipeline import reranking
from clin_linker.pipeline.build import build_pipeline

NOTES = [
    "Past medical history:\nFrequent falls, lumbago.\n\nHPI: recurrent falls at home, denies LBP. On home oxygen therapy.",
    "The patient has type 2 diabetes mellitus and chronic pain, lower back; started on metformin.",
    "No falls since May. Family history: mother on home oxygen.",
]

def describe(nlp, notes: list[str]) -> list:
    """Every mention of ``notes``: offsets, label, detector and all that linking and ConText put on the span.

    Self-contained (imports inside) because the fresh process runs its source too.
    """
    from clin_linker.pipeline.extensions import CONTEXT_FLAGS

    return [[[e.start_char, e.end_char, e.label_, e._.detector, e._.concept, e._.score,
              [list(c) for c in e._.candidates], e._.section, [getattr(e._, f) for f in CONTEXT_FLAGS]]
             for e in doc.ents] for doc in nlp.pipe(notes)]


def _pipeline(index: Path) -> spacy.Language:
    # the dictionary detector too, so both mention sources go through the round trip
    return build_pipeline(str(index), detector="dictionary", threads=1,
                          ner_config={"threads": 1})


def test_saved_pipeline_links_the_same_in_a_fresh_process_with_an_empty_cache(small_index, tmp_path):
    """Save, delete the index it was built from, load in a new process whose CLIN_LINKER_HOME is empty."""
    source = tmp_path / "source"
    shutil.copytree(small_index.parent, source)
    nlp = _pipeline(source / "index")
    expected = describe(nlp, NOTES)
    assert any(m[4] for doc in expected for m in doc) and any(m[3] == "ner" for doc in expected for m in doc)

    saved = tmp_path / "pipeline"
    nlp.to_disk(saved)
    copy = saved / "clin_linker" / "index"
    assert os.path.samefile(copy / "names.hnsw", source / "index" / "names.hnsw")  # hard-linked: no extra space
    components = Config().from_disk(saved / "config.cfg")["components"]
    assert components["clin_linker"]["index_dir"] == str(copy.resolve())
    assert components["clin_ner"]["model_dir"] == str((saved / "clin_ner" / "model").resolve())
    shutil.rmtree(source)  # "another machine": the original index is gone

    home = tmp_path / "empty_home"
    home.mkdir()
    code = inspect.getsource(describe) + textwrap.dedent(
        f"""
        import json, spacy
        from clin_linker.pipeline.build import linker_of
        nlp = spacy.load({str(saved)!r})
        linker = linker_of(nlp)
        print(json.dumps({{"mentions": describe(nlp, {NOTES!r}),
                          "encoder": str(linker.resources.candidates.encoder.info.directory),
                          "ner": str(nlp.get_pipe("clin_ner").tagger.info.directory),
                          "index_dir": nlp.get_pipe_config("clin_linker")["index_dir"]}}))
        """
    )
    env = {**os.environ, "CLIN_LINKER_HOME": str(home)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded["mentions"] == expected
    assert Path(loaded["encoder"]).resolve() == (copy / "encoder").resolve()
    assert Path(loaded["ner"]).resolve() == (saved / "clin_ner" / "model").resolve()
    assert loaded["index_dir"] == str(copy.resolve())
    assert list(home.iterdir()) == []  # no default index was looked up or built


def test_a_saved_index_whose_store_changed_is_refused(small_index, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("clin_linker", config={"index_dir": str(small_index), "threads": 1})
    nlp.to_disk(tmp_path / "p")
    store_manifest = tmp_path / "p" / "clin_linker" / "index" / "store" / "manifest.json"
    manifest = json.loads(store_manifest.read_text())
    manifest["store_version"] = "0" * 16
    store_manifest.unlink()  # a hard link: replace the file, never write through to the source store
    store_manifest.write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match="save the pipeline again"):
        spacy.load(tmp_path / "p")


def test_constructors_load_nothing_and_first_use_fails_loudly(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("clin_ner", config={"model_dir": str(tmp_path / "no_model")})
    nlp.add_pipe("clin_linker", config={"index_dir": str(tmp_path / "no_index"), "detector": "none"})
    with pytest.raises(FileNotFoundError, match="no_model"):
        nlp("Essential hypertension.")
    nlp.remove_pipe("clin_ner")
    with pytest.raises(FileNotFoundError, match="no_index.*clin-linker index build"):
        nlp.initialize()


def test_first_use_from_several_threads_loads_once_and_links_alike(small_index):
    nlp = spacy.blank("en")
    linker = nlp.add_pipe("clin_linker", config={"index_dir": str(small_index), "threads": 1})
    results: list = [None] * 4

    def work(i: int) -> None:
        results[i] = [(e.text, e._.concept, e._.score) for e in nlp("Recurrent falls and lumbago.").ents]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(results))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results[0] and all(r == results[0] for r in results)
    assert linker.resources.store.version and linker.reranker is None


def test_rerank_is_off_by_default_and_on_without_a_reranker_fails_naming_the_fix(small_index, tmp_path,
                                                                                 monkeypatch):
    nlp = spacy.blank("en")
    assert nlp.add_pipe("clin_linker", config={"index_dir": str(small_index)}).rerank is False
    monkeypatch.setattr(reranking, "DEFAULT_RERANKER_DIR", tmp_path / "not_shipped")
    on = spacy.blank("en")
    on.add_pipe("clin_linker", config={"index_dir": str(small_index), "rerank": True})
    with pytest.raises(FileNotFoundError, match="ships no reranker.*reranker_dir.*or set rerank false"):
        on.initialize()


def test_reranker_options_without_rerank_are_refused():
    for config in ({"reranker_dir": "/some/reranker"}, {"nil_threshold": 0.4}):
        with pytest.raises(ValueError, match="apply only with rerank = true"):
            spacy.blank("en").add_pipe("clin_linker", config={"rerank": False, **config})


def test_shipped_pipeline_declares_what_it_assigns_and_needs(small_index):
    nlp = build_pipeline(str(small_index), threads=1, ner_config={"threads": 1})
    analysis = nlp.analyze_pipes()
    assert all(not missing for missing in analysis["problems"].values()), analysis["problems"]
    assert "doc.ents" in analysis["summary"]["clin_ner"]["assigns"]
    assert {"span._.concept", "span._.candidates", "span._.score"} <= set(
        analysis["summary"]["clin_linker"]["assigns"])
    assert "doc.ents" in analysis["summary"]["clin_context"]["requires"]


def test_cli_run_refuses_contradictory_nil_options(capsys):
    from clin_linker.beam_jobs.cli import main

    assert main(["run", "--reranker", "/some/reranker"]) == 2
    assert "apply only with --rerank" in capsys.readouterr().err
    assert main(["run", "--rerank", "--threshold", "0.8"]) == 2
    assert "with --rerank use --nil-threshold" in capsys.readouterr().err
