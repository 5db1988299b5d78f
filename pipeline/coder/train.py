"""``clin-linker train coder``: learn a site's coding from its coded notes (one JSON object per line,
``{"doc_id", "text", "<vocabulary in lower case>": [codes]}``, the format of the shared CodiEsp files).

1. The shipped pipeline (targets = the vocabulary) reads every train and dev note once.
2. The lexicon (:mod:`.lexicon`) is counted on the train notes. The train notes' own features use a lexicon counted
   on the *other* folds (5-fold cross-fitting): a note's lexicon features would otherwise already contain its gold
   codes, and the model would learn to trust the lexicon far more than it deserves on a new note.
3. The tree model (``models.coder.fit``) learns "the coders wrote this code" from every candidate's features; a
   candidate counts as written under the same matching rule ``eval coding`` scores with (``metrics.score_coding``).
4. The accept threshold is the one with the best micro-F1 on the dev notes (features from the full train lexicon).

Takes a few minutes on 2 cores for 500 notes (the pipeline pass dominates). Deterministic: same notes, same model.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc
from tqdm import tqdm

from ...models.coder.fit import export_tree_model, fit_tree_model
from ..evaluation.metrics import normalize_code, score_coding
from .candidates import CandidateCollector, specificity_of
from .features import FEATURE_NAMES, candidate_features, coded_note
from .lexicon import CodingLexicon
from .trained import LEXICON_FILE
from .zero_shot import DEFAULT_EXCLUDED_FLAGS

FOLDS = 5
THRESHOLDS = tuple(round(t, 3) for t in np.arange(0.05, 0.8, 0.025))


def gold_keys(codes: Sequence[str], vocabulary: str) -> frozenset[str]:
    return frozenset(f"{vocabulary}:{normalize_code(c)}" for c in codes)


def is_written(concept_key: str, gold: frozenset[str], billable_gold: frozenset[str]) -> bool:
    """The training label: the code is gold, or under a gold code the vocabulary does not bill (the rule of
    ``metrics.score_coding``)."""
    return concept_key in gold or any(concept_key.startswith(g) for g in billable_gold)


def read_docs(nlp: Language, notes: list[dict], what: str) -> list[Doc]:
    return list(tqdm(nlp.pipe(n["text"] for n in notes), total=len(notes), desc=f"reading {what} notes",
                     unit="note"))


def _matrix(docs: list[Doc], notes: list[dict], collector: CandidateCollector, lexicon: CodingLexicon,
            vocabulary: str, billable: set[str]):
    rows, labels, groups = [], [], []
    field = vocabulary.lower()
    for i, (doc, note) in enumerate(zip(docs, notes)):
        gold = gold_keys(note[field], vocabulary)
        categories = frozenset(g for g in gold if g.split(":", 1)[1] not in billable)
        for candidate, features in candidate_features(doc, collector, lexicon, DEFAULT_EXCLUDED_FLAGS):
            rows.append(features)
            labels.append(is_written(candidate.concept_key, gold, categories))
            groups.append((i, candidate.concept_key))
    return np.array(rows, dtype=np.float32).reshape(-1, len(FEATURE_NAMES)), np.array(labels), groups


def _ranked_lists(groups, probabilities, n_docs: int, threshold: float | None):
    lists: list[list[tuple[float, str]]] = [[] for _ in range(n_docs)]
    for (i, key), p in zip(groups, probabilities):
        if threshold is None or p >= threshold:
            lists[i].append((-float(p), key.split(":", 1)[1]))
    return [[code for _, code in sorted(items)] for items in lists]


def train_coder(nlp: Language, collector: CandidateCollector, train_notes: list[dict], dev_notes: list[dict],
                out_dir: Path, min_notes: int = 2, model_id: str = "clin-coder", description: str = "") -> dict:
    """Train, pick the threshold on dev, write the artifact (model.onnx, artifact.json, lexicon) into ``out_dir``."""
    vocabulary = collector.vocabulary
    field = vocabulary.lower()
    from ..evaluation.coding import vocabulary_codes

    valid, billable = vocabulary_codes(nlp, vocabulary)
    train_docs, dev_docs = read_docs(nlp, train_notes, "train"), read_docs(nlp, dev_notes, "dev")
    coded = [coded_note(d, collector, gold_keys(n[field], vocabulary)) for d, n in zip(train_docs, train_notes)]

    parts = []
    for fold in range(FOLDS):
        others = CodingLexicon.fit((c for i, c in enumerate(coded) if i % FOLDS != fold), min_notes)
        held = [i for i in range(len(train_docs)) if i % FOLDS == fold]
        parts.append(_matrix([train_docs[i] for i in held], [train_notes[i] for i in held], collector, others,
                             vocabulary, billable))
    x_train = np.concatenate([p[0] for p in parts])
    y_train = np.concatenate([p[1] for p in parts])
    model = fit_tree_model(x_train, y_train)

    lexicon = CodingLexicon.fit(coded, min_notes)
    x_dev, _, dev_groups = _matrix(dev_docs, dev_notes, collector, lexicon, vocabulary, billable)
    dev_p = model.predict_proba(x_dev)[:, 1] if len(x_dev) else np.zeros(0)
    gold = [n[field] for n in dev_notes]

    def dev_scores(threshold: float | None) -> dict:
        lists = _ranked_lists(dev_groups, dev_p, len(dev_notes), threshold)
        return score_coding(list(zip(gold, lists)), valid, billable)

    by_threshold = {t: dev_scores(t)["micro"]["f1"] for t in THRESHOLDS}
    threshold = max(THRESHOLDS, key=lambda t: (by_threshold[t], -t))
    ranked, accepted = dev_scores(None), dev_scores(threshold)
    from ..build import linker_of

    reranker = linker_of(nlp).reranker
    summary = {"vocabulary": vocabulary, "feature_flags": list(DEFAULT_EXCLUDED_FLAGS),
               "reranker": reranker.model_id if reranker is not None else None,
               "description": description or f"document coder for {vocabulary}",
               "trained_on": {"train_notes": len(train_notes), "dev_notes": len(dev_notes),
                              "train_candidates": int(len(y_train)), "positive_share": float(y_train.mean()),
                              "lexicon_min_notes": min_notes, "folds": FOLDS},
               "dev": {"map": ranked["map"], "micro": accepted["micro"], "cat3_map": ranked["cat3"]["map"],
                       "threshold_f1": by_threshold}}
    out_dir = Path(out_dir)
    artifact = export_tree_model(model, len(FEATURE_NAMES), out_dir, FEATURE_NAMES, threshold, model_id, summary)
    lexicon.save(out_dir / LEXICON_FILE)
    return artifact


def read_notes(path: str, vocabulary: str) -> list[dict]:
    from ..evaluation.coding import read_coded_documents

    return read_coded_documents(path, vocabulary)


def main(args: argparse.Namespace) -> int:
    from ..build import linker_of
    from . import CANDIDATES_PER_MENTION, build_coding_pipeline, coding_reranker_dir

    train_notes, dev_notes = read_notes(args.docs, args.vocabulary), read_notes(args.dev, args.vocabulary)
    nlp = build_coding_pipeline(args.vocabulary, args.index or "", args.threads,
                                coding_reranker_dir(args.rerank, args.no_rerank, follow_coder=False))
    store = linker_of(nlp).resources.store
    collector = CandidateCollector(args.vocabulary, specificity_of(store.concepts(), args.vocabulary),
                                   CANDIDATES_PER_MENTION)
    artifact = train_coder(nlp, collector, train_notes, dev_notes, Path(args.out), args.min_notes, args.model_id)
    print(json.dumps({k: artifact[k] for k in ("model_id", "threshold", "dev", "trained_on")}, indent=2))
    print(f"wrote the coder model to {args.out} ({dt.date.today().isoformat()}); use it with --coder {args.out}")
    return 0
