"""The trained document coder: candidate codes scored by the site's model (``clin-linker train coder``).

The model reads :mod:`.features` (retrieval evidence, the site's lexicon, code prior, labels, flags); its artifact
directory holds the ONNX scorer (``models.coder.scorer``) and the lexicon (``lexicon.json.gz``). A code is
accepted at the threshold chosen on the dev notes at training time (artifact.json).

Assertion flags: evidence with one of the user's ``excluded_flags`` (negated, family, hypothetical by default) is
removed before scoring. Its features (the ``neg_`` columns, where training put that evidence) are zeroed, so the
model scores each code as if the excluded mentions were not there; all other evidence counts as asserted. A code
with no asserted evidence leaves the list, as in the zero-shot coder. Only
evidence that could propose the code on its own counts there (``features.is_proposing``): "denies cough" with a weak
word association of "fever" to R05.9 does not make R05.9.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from spacy.tokens import Doc

from ...models.coder.scorer import CoderScorer
from .candidates import CandidateCollector
from .evidence import DocumentCode
from .features import FEATURE_NAMES, candidate_features, is_proposing
from .lexicon import CodingLexicon
from .zero_shot import DEFAULT_EXCLUDED_FLAGS, check_flags

LEXICON_FILE = "lexicon.json.gz"


class TrainedCoder:
    """Scores every candidate code of a note with the model in ``directory``."""

    def __init__(self, collector: CandidateCollector, directory: Path,
                 excluded_flags: Iterable[str] = DEFAULT_EXCLUDED_FLAGS, threads: int = 1):
        directory = Path(directory)
        self.scorer = CoderScorer(directory, threads)
        self._columns = self.scorer.columns(FEATURE_NAMES)
        vocabulary = self.scorer.info.meta.get("vocabulary")
        if vocabulary != collector.vocabulary:
            raise ValueError(f"{directory} codes into {vocabulary}, not {collector.vocabulary}: pass --vocabulary "
                             f"{vocabulary} or a coder trained for {collector.vocabulary}")
        lexicon = directory / LEXICON_FILE
        if not lexicon.exists():
            raise FileNotFoundError(f"{directory} has no {LEXICON_FILE}: not a complete coder model; retrain it with "
                                    "`clin-linker train coder`")
        self.lexicon = CodingLexicon.load(lexicon)
        self.collector = collector
        self.excluded_flags = check_flags(excluded_flags)
        self._excluded_columns = [i for i, name in enumerate(FEATURE_NAMES) if name.startswith("neg_")]

    @property
    def model_id(self) -> str:
        return self.scorer.info.short_id

    @property
    def threshold(self) -> float:
        return self.scorer.threshold

    def __call__(self, doc: Doc) -> list[DocumentCode]:
        rows = candidate_features(doc, self.collector, self.lexicon, self.excluded_flags)
        features = np.array([values for _, values in rows], dtype=np.float32).reshape(-1, len(FEATURE_NAMES))
        features[:, self._excluded_columns] = 0.0
        probabilities = self.scorer(features[:, self._columns])
        excluded = set(self.excluded_flags)
        codes = []
        for (candidate, _), probability in zip(rows, probabilities):
            evidence = tuple(sorted({e for e in candidate.evidence if is_proposing(e) and not set(e.flags) & excluded},
                                    key=lambda e: (e.start, e.end, e.source, e.rank, -e.score)))
            if not evidence:
                continue
            score = float(probability)
            codes.append(DocumentCode(candidate.concept_key, score, score >= self.threshold, evidence,
                                      candidate.modifiers))
        return sorted(codes, key=lambda c: (-c.score, c.concept_key))
