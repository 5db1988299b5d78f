"""Acceptance: `clin-linker eval linking` scores what ships.

The shipped pipeline (default index, `clin_linker` as configured by default: k=5, while `eval linking` asks for 25
candidates; the candidate generator searches the same breadth for both) runs over the sample notes; every mention
it linked becomes a pair (its linking query, the concept the component linked). `eval linking` on those pairs,
without --dictionary (the default store with the default index), must give every mention the same top-1 as the
component put on ``span._.candidates[0]``, and so score acc@1 = 1.0. Run as a separate process, so nothing (the
encoder session, the mention vector memo) is shared with the pipeline under test.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from clin_linker.pipeline.abbreviations import linking_query

SAMPLE_NOTES = Path(__file__).resolve().parent.parent / "beam_jobs" / "data" / "sample_notes.jsonl"


def test_eval_linking_and_the_component_agree_on_every_top_1(nlp, tmp_path):
    notes = [json.loads(line) for line in SAMPLE_NOTES.read_text().splitlines() if line.strip()]
    component: dict[str, str] = {}
    for doc in nlp.pipe(n["note_text"] for n in notes):
        for span in doc.ents:
            if span._.candidates:
                component.setdefault(linking_query(span), span._.candidates[0][0])
    assert len(component) >= 200, f"only {len(component)} distinct mentions in the sample notes"
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text("".join(json.dumps({"mention": m, "concept_ids": [c]}) + "\n" for m, c in component.items()))
    predictions = tmp_path / "predictions.jsonl"
    out = subprocess.run([sys.executable, "-m", "clin_linker.beam_jobs.cli", "eval", "linking", "--pairs", str(pairs),
                          "--predictions", str(predictions), "--threads", "1", "--json", "--no-rerank"],
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    evaluated = {r["mention"]: r["candidates"][0][0] for r in map(json.loads, predictions.read_text().splitlines())}
    differ = {m: (component[m], evaluated.get(m)) for m in component if evaluated.get(m) != component[m]}
    assert not differ, (f"{len(differ)} of {len(component)} mentions differ (component, eval): "
                        f"{list(differ.items())[:5]}")
    assert result["acc@1"] == 1.0 and result["n"] == len(component)
    assert result["artifacts"]["encoder"] == nlp.get_pipe("clin_linker").resources.encoder_id
