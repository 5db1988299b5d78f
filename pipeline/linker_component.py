"""The ``clin_linker`` spaCy component: the thin wrapper layer of the linker (as in scispaCy).

It (optionally) detects mentions with the dictionary matcher, asks the candidate generator for the
top-k concepts of every mention in a batch at once, and sets the Span extensions of DESIGN §2.

Without reranking, below ``threshold`` (bi-encoder cosine) the mention is NIL: ``span._.concept`` is None but
its candidates are kept. With reranking (``rerank``, on by default when a reranker artifact is installed), the
top ``rerank_k`` candidates are reordered by the cross-encoder and scored with the calibrated probability of
being the right concept (``pipeline.reranking``); below ``nil_threshold`` (default: the calibrated one) the
mention is NIL, again keeping its candidates. ``threshold`` then plays no part.
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time

from collections.abc import Iterable, Iterator

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.util import filter_spans, minibatch

from . import extensions  # noqa: F401  (registers the Span/Doc extensions)
from .abbreviations import linking_query
from .reranking import MentionReranker, resolve_reranker_dir
from .resources import LinkerResources, load_resources

DETECTORS = ("dictionary", "none")


class ClinLinker:
    def __init__(
        self,
        nlp: Language,
        name: str,
        index_dir: str,
        k: int,
        threshold: float,
        detector: str,
        threads: int,
        batch_size: int,
        rerank: bool = True,
        reranker_dir: str = "",
        rerank_k: int = 5,
        nil_threshold: float = -1.0,
        rerank_skip_exact: bool = True,
        rerank_mentions_per_call: int = 1,
    ):
        if detector not in DETECTORS:
            raise ValueError(f"clin_linker: detector {detector!r} is not one of {DETECTORS}")
        if k < 1:
            raise ValueError(f"clin_linker: k must be >= 1, got {k}")
        self.name = name
        self.index_dir = index_dir
        self.k = k
        self.threshold = threshold
        self.detector = detector
        self.batch_size = batch_size
        self.resources: LinkerResources = load_resources(index_dir or None, threads)
        self.reranker: MentionReranker | None = None
        model_dir = resolve_reranker_dir(reranker_dir) if rerank else None
        if model_dir is not None:
            self.reranker = MentionReranker(model_dir, threads, rerank_k, nil_threshold, rerank_skip_exact,
                                            rerank_mentions_per_call)

    @property
    def model_id(self) -> str:
        """Goes into NOTE_NLP.nlp_system."""
        rr = f" rr={self.reranker.model_id}" if self.reranker is not None else ""
        return f"enc={self.resources.encoder_id}{rr} store={self.resources.store.version}"

    def _detect(self, doc: Doc) -> None:
        if self.detector != "dictionary":
            return
        found = []
        for match in self.resources.matcher.find(doc.text):
            span = doc.char_span(match.start_char, match.end_char, label=match.label, alignment_mode="expand")
            if span is not None:
                span._.detector = "dictionary"
                found.append(span)
        # mentions from an upstream detector (e.g. NER) win over overlapping dictionary matches
        kept = [s for s in found if not any(s.start < e.end and e.start < s.end for e in doc.ents)]
        doc.ents = filter_spans(list(doc.ents) + kept)

    def _link(self, docs: list[Doc]) -> None:
        spans: list[Span] = [span for doc in docs for span in doc.ents]
        # abbreviations are embedded as their long form ("CHF" -> "congestive heart failure"); the span
        # itself, and so NOTE_NLP.lexical_variant, keeps the note's own text
        queries = [linking_query(s) for s in spans]
        if self.reranker is not None:
            results = self.resources.candidates(queries, k=max(self.k, self.reranker.rerank_k))
            linked = self.reranker.link(queries, [s.label_ for s in spans], results, self.k)
            for span, outcome in zip(spans, linked):
                span._.candidates = outcome.candidates
                span._.score = outcome.score
                span._.concept = outcome.concept
            return
        results = self.resources.candidates(queries, k=self.k)
        for span, candidates in zip(spans, results):
            span._.candidates = [(c.concept_key, c.score) for c in candidates]
            best = candidates[0] if candidates else None
            span._.score = best.score if best else None
            span._.concept = best.concept_key if best and best.score >= self.threshold else None

    def __call__(self, doc: Doc) -> Doc:
        self._detect(doc)
        self._link([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(stream, size=batch_size or self.batch_size):
            for doc in batch:
                self._detect(doc)
            self._link(batch)
            yield from batch


@Language.factory(
    "clin_linker",
    default_config={
        "index_dir": "",
        "k": 5,
        "threshold": 0.75,
        "detector": "dictionary",
        "threads": 0,
        "batch_size": 64,
        "rerank": True,
        "reranker_dir": "",
        "rerank_k": 5,
        "nil_threshold": -1.0,
        "rerank_skip_exact": True,
        "rerank_mentions_per_call": 1,
    },
)
def make_clin_linker(
    nlp: Language, name: str, index_dir: str, k: int, threshold: float, detector: str, threads: int, batch_size: int,
    rerank: bool, reranker_dir: str, rerank_k: int, nil_threshold: float, rerank_skip_exact: bool,
    rerank_mentions_per_call: int,
) -> ClinLinker:
    """``index_dir`` "" = the embedded default index (ICD-10-CM + HPO), built on first use.

    ``rerank``: rerank with the cross-encoder at ``reranker_dir`` ("" = the shipped one; without one installed
    the linker stays retrieval-only). ``rerank_k``: candidates reranked per mention. ``nil_threshold``: NIL below
    this calibrated probability (< 0 = the threshold calibrated on dev, in the model's calibration.json).
    ``rerank_skip_exact``: link a verbatim vocabulary name without reranking. ``rerank_mentions_per_call``:
    mentions per onnxruntime call (1 = results independent of batching).
    """
    return ClinLinker(nlp, name, index_dir, k, threshold, detector, threads, batch_size, rerank, reranker_dir,
                      rerank_k, nil_threshold, rerank_skip_exact, rerank_mentions_per_call)
