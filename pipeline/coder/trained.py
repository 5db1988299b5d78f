"""The trained document coder: candidate codes scored by the site's model (``clin-linker train coder``).

The model reads :mod:`.features` (retrieval evidence, the site's lexicon, code prior, labels, flags); its artifact
directory holds the ONNX scorer (``models.coder.scorer``) and the lexicon (``lexicon.json.gz``). A code is
accepted at the threshold chosen on the dev notes at training time (artifact.json).

Assertion flags play two parts. The features always split evidence as the model was trained (the artifact's
``feature_flags``). The user's ``excluded_flags`` decide which evidence may *make* a code: a code whose every
mention is excluded (only negated mentions of it, by default) leaves the list, as in the zero-shot coder.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from spacy.tokens import Doc

from ...models.coder.scorer import CoderScorer
from .candidates import CandidateCollector
from .evidence import DocumentCode
from .features import FEATURE_NAMES, candidate_features
from .lexicon import CodingLexicon
from .zero_shot import DEFAULT_EXCLUDED_FLAGS, check_flags

LEXICON_FILE = "lexicon.json.gz"


class TrainedCoder:
    """Scores every candidate code of a note with the model in ``directory``."""

    def __init__(self, collector: CandidateCollector, directory: Path,
                 excluded_flags: Iterable[str] = DEFAULT_EXCLUDED_FLAGS, threads: int = 1):
        directory = Path(directory)
        self.scorer = CoderScorer(directory, threads)
        self.scorer.check_features(FEATURE_NAMES)
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
        self.feature_flags = tuple(self.scorer.info.meta["feature_flags"])
        self.excluded_flags = check_flags(excluded_flags)

    @property
    def model_id(self) -> str:
        return self.scorer.info.short_id

    @property
    def threshold(self) -> float:
        return self.scorer.threshold

    def __call__(self, doc: Doc) -> list[DocumentCode]:
        rows = candidate_features(doc, self.collector, self.lexicon, self.feature_flags)
        probabilities = self.scorer(np.array([features for _, features in rows], dtype=np.float32))
        excluded = set(self.excluded_flags)
        codes = []
        for (candidate, _), probability in zip(rows, probabilities):
            evidence = tuple(sorted((e for e in candidate.evidence if not set(e.flags) & excluded),
                                    key=lambda e: (e.start, e.end, e.source, e.rank)))
            if not evidence:
                continue
            score = float(probability)
            codes.append(DocumentCode(candidate.concept_key, score, score >= self.threshold, evidence,
                                      candidate.modifiers))
        return sorted(codes, key=lambda c: (-c.score, c.concept_key))
