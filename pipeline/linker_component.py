"""The ``clin_linker`` spaCy component: the thin wrapper layer of the linker (as in scispaCy).

It (optionally) detects mentions with the dictionary matcher, asks the candidate generator for the
top-k concepts of every mention in a batch at once, and sets the Span extensions of DESIGN §2.

Exactly one NIL rule applies, chosen by ``rerank`` (off by default; the shipped reranker is opt-in, docs/reranking.md):

* ``rerank = false``: below ``threshold`` (the bi-encoder cosine of the best candidate) the mention is NIL:
  ``span._.concept`` is None but its candidates are kept. ``nil_threshold`` must stay unset.
* ``rerank = true``: the top ``rerank_k`` candidates are reordered by the reranker at ``reranker_dir`` ("" = the
  shipped context-reading feature reranker; none installed is an error) and scored with the calibrated probability
  of being the right concept (``pipeline.reranking``); below ``nil_threshold`` (< 0: the calibrated one) the mention is NIL, again
  keeping its candidates. ``threshold`` plays no part.

``targets`` (default none) asks for codes of chosen vocabularies, e.g. ``["ICD10CM", "HPO"]``: each span gets
``span._.codes``, the best candidate of every target vocabulary, and its ``span._.candidates`` (so its concept, score
and NOTE_NLP row) are the first target's alone, under the same NIL rule. Without targets every vocabulary of the
index competes for one winner, as before targets existed. A target the store lacks is an error at load time.
``detector_targets`` gives the mentions of one detector (``span._.detector``) their own target: with
``{"functioning": "ICF"}`` the ``clin_functioning`` spans of a therapy note are coded into ICF while the NER's
mentions keep ``targets``. ``window_k`` > 0 also retrieves that many candidates of the first target for each
mention read with the words around it (``abbreviations.window_query``) into ``span._.window_candidates``: the
ICD-10-PCS coder reads them, because "CT" alone does not say which body part was imaged.

spaCy's component contract: the constructor only stores and checks the config. The index (the default one is
built on first use, minutes) and the models load in ``initialize`` (``nlp.initialize()``, which
``pipeline.build.build_pipeline`` calls) or ``from_disk`` (``spacy.load``); a pipeline called before either
loads them on first use, once. ``to_disk`` saves a self-contained copy of the index (store and encoder inside)
and of the reranker, and points the saved config at them, so ``spacy.load`` links the same on another machine.
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time

import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable, Dict, List, Optional

from spacy import util
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import filter_spans, minibatch

from . import extensions  # noqa: F401  (registers the Span/Doc extensions)
from .abbreviations import linking_query, window_query
from ..models.reranker.inputs import mention_context
from .reranking import MentionReranker, resolve_reranker_dir
from .resources import LinkerResources, check_targets, load_resources
from .serialization import check_saved_index, link_or_copy_tree, point_saved_config_at, save_index

DETECTORS = ("dictionary", "none")
#: Folders of a saved component (``to_disk``), also the names ``exclude`` takes.
SAVED_INDEX = "index"
SAVED_RERANKER = "reranker"

_LOAD_LOCK = threading.Lock()


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
        rerank: bool = False,
        reranker_dir: str = "",
        rerank_k: int = 5,
        nil_threshold: float = -1.0,
        rerank_skip_exact: bool = False,
        rerank_mentions_per_call: int = 1,
        targets: Iterable[str] = (),
        detector_targets: Optional[Dict[str, str]] = None,
        window_k: int = 0,
    ):
        targets = list(targets)
        detector_targets = dict(detector_targets or {})
        if detector not in DETECTORS:
            raise ValueError(f"clin_linker: detector {detector!r} is not one of {DETECTORS}")
        if k < 1 or window_k < 0:
            raise ValueError(f"clin_linker: k must be >= 1 and window_k >= 0, got {k}, {window_k}")
        if batch_size < 1 or threads < 0:
            raise ValueError(f"clin_linker: batch_size must be >= 1 and threads >= 0, got {batch_size}, {threads}")
        if not rerank and (reranker_dir or nil_threshold >= 0):
            raise ValueError("clin_linker: reranker_dir and nil_threshold apply only with rerank = true (without "
                             "reranking, threshold decides NIL); set rerank true, or leave them unset")
        if any(not isinstance(t, str) or not t or "," in t for t in targets) or len(set(targets)) != len(targets):
            raise ValueError(f"clin_linker: targets must be distinct vocabulary ids (a list, e.g. [\"ICD10CM\", "
                             f"\"HPO\"]), got {targets}")
        if any(not isinstance(v, str) or not v or "," in v for v in detector_targets.values()):
            raise ValueError("clin_linker: detector_targets maps a detector name to one vocabulary id, e.g. "
                             f"{{\"functioning\": \"ICF\"}}, got {detector_targets}")
        self.nlp = nlp
        self.name = name
        self.index_dir = index_dir
        self.k = k
        self.threshold = threshold
        self.detector = detector
        self.threads = threads
        self.batch_size = batch_size
        self.rerank = rerank
        self.reranker_dir = reranker_dir
        self.rerank_k = rerank_k
        self.nil_threshold = nil_threshold
        self.rerank_skip_exact = rerank_skip_exact
        self.rerank_mentions_per_call = rerank_mentions_per_call
        self.targets = targets
        self.detector_targets = detector_targets
        self.window_k = window_k
        self._resources: Optional[LinkerResources] = None
        self._reranker: Optional[MentionReranker] = None

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None) -> None:
        """Load the index (building the default one if missing) and the reranker named by the config."""
        with _LOAD_LOCK:
            self._install(*self._load(self.index_dir, self.reranker_dir))

    def _load(self, index_dir: str, reranker_dir: str) -> tuple[LinkerResources, Optional[MentionReranker]]:
        resources = load_resources(index_dir or None, self.threads)
        check_targets([*self.targets, *sorted(set(self.detector_targets.values()))], resources.store)
        if not self.rerank:
            return resources, None
        return resources, MentionReranker(resolve_reranker_dir(reranker_dir), self.threads, self.rerank_k,
                                          self.nil_threshold, self.rerank_skip_exact, self.rerank_mentions_per_call,
                                          domain_of=lambda key: resources.domains.get(key, ""))

    def _install(self, resources: LinkerResources, reranker: Optional[MentionReranker]) -> None:
        self._reranker = reranker  # before the resources: a thread that sees them loaded sees the reranker too
        self._resources = resources

    def _loaded(self) -> LinkerResources:
        """The resources, loaded on first use (once, whichever thread gets here first)."""
        if self._resources is None:
            with _LOAD_LOCK:
                if self._resources is None:
                    self._install(*self._load(self.index_dir, self.reranker_dir))
        return self._resources

    @property
    def resources(self) -> LinkerResources:
        """The index, concept store, candidate generator and dictionary matcher (loaded on first use)."""
        return self._loaded()

    @property
    def reranker(self) -> Optional[MentionReranker]:
        """The cross-encoder reranker when ``rerank`` is on, else None (loaded on first use)."""
        self._loaded()
        return self._reranker

    def to_disk(self, path: Path, *, exclude: Iterable[str] = tuple()) -> None:
        """Save copies of the index (its store and encoder inside) and of the reranker into ``path``.

        The pipeline's saved config then names these copies instead of "" (whatever default index the next
        machine has) or a path into this machine's cache. ``exclude`` takes "index" / "reranker" to save a
        reference (the config's path) instead.
        """
        path = Path(path)
        resources, reranker = self.resources, self.reranker
        writers = {SAVED_INDEX: lambda p: save_index(resources.index_dir, p)}
        if reranker is not None:
            writers[SAVED_RERANKER] = lambda p: link_or_copy_tree(reranker.encoder.info.directory, p)
        util.to_disk(path, writers, exclude)
        saved = {"index_dir": SAVED_INDEX, "reranker_dir": SAVED_RERANKER}
        point_saved_config_at(path, self.name, {key: str((path / folder).resolve()) for key, folder in saved.items()
                                                if folder in writers and folder not in exclude})

    def from_disk(self, path: Path, *, exclude: Iterable[str] = tuple()) -> "ClinLinker":
        """Load the index and reranker ``to_disk`` saved in ``path`` (the config's paths for any not saved)."""
        path = Path(path)
        saved = {folder: (path / folder).resolve() for folder in (SAVED_INDEX, SAVED_RERANKER)
                 if folder not in exclude and (path / folder).exists()}
        index_dir = str(saved.get(SAVED_INDEX, self.index_dir))
        reranker_dir = str(saved.get(SAVED_RERANKER, self.reranker_dir))
        with _LOAD_LOCK:
            resources, reranker = self._load(index_dir, reranker_dir)
            if SAVED_INDEX in saved:
                check_saved_index(saved[SAVED_INDEX], resources.store)
            self._install(resources, reranker)
        # the in-memory config names what was loaded, so nlp.config, a re-save and initialize() agree with it
        self.index_dir = index_dir
        self.reranker_dir = reranker_dir if self.rerank else ""
        if self.name in self.nlp.component_names:
            self.nlp.get_pipe_config(self.name).update(index_dir=self.index_dir, reranker_dir=self.reranker_dir)
        return self

    @property
    def model_id(self) -> str:
        """Goes into NOTE_NLP.nlp_system."""
        rr = f" rr={self.reranker.model_id}" if self.reranker is not None else ""
        targets = f" targets={','.join(self.targets)}" if self.targets else ""
        targets += "".join(f" {d}={t}" for d, t in sorted(self.detector_targets.items()))
        return f"enc={self.resources.encoder_id}{rr} store={self.resources.store.version}{targets}"

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
        self._link_into([s for s in spans if s._.detector not in self.detector_targets], self.targets)
        for detector, target in sorted(self.detector_targets.items()):
            self._link_into([s for s in spans if s._.detector == detector], [target])

    def _link_into(self, spans: list[Span], targets: list[str]) -> None:
        """Link ``spans`` into ``targets`` (the module doc's rule; [] = every vocabulary competes)."""
        if not spans:
            return
        # abbreviations are embedded as their long form ("CHF" -> "congestive heart failure"); the span
        # itself, and so NOTE_NLP.lexical_variant, keeps the note's own text
        queries = [linking_query(s) for s in spans]
        first = targets[0] if targets else None
        self._choose(spans, queries, first)
        if self.window_k:
            windows = self.resources.candidates([window_query(s) for s in spans], k=self.window_k, vocabulary=first)
            for span, candidates in zip(spans, windows):
                span._.window_candidates = [(c.concept_key, c.score) for c in candidates]
        if first is None:
            return
        # the other targets' best only: at the generator's fixed search breadth, top-1 at k=1 is top-1 at any k
        best = {t: self.resources.candidates(queries, k=1, vocabulary=t) for t in targets[1:]}
        for i, span in enumerate(spans):
            codes = {first: span._.candidates[0]} if span._.candidates else {}
            for target, results in best.items():
                if results[i]:
                    codes[target] = (results[i][0].concept_key, results[i][0].score)
            span._.codes = codes

    def _choose(self, spans: list[Span], queries: list[str], vocabulary: Optional[str]) -> None:
        """Candidates of ``vocabulary`` (None: all), reranked when configured, and the concept the NIL rule keeps."""
        if self.reranker is not None:
            results = self.resources.candidates(queries, k=max(self.k, self.reranker.rerank_k), vocabulary=vocabulary)
            texts = {id(s.doc): s.doc.text for s in spans}  # spaCy rebuilds Doc.text on every access
            contexts = [mention_context(texts[id(s.doc)], s.start_char, s.end_char) for s in spans]
            linked = self.reranker.link(contexts, [s.label_ for s in spans], results, self.k)
            for span, outcome in zip(spans, linked):
                span._.candidates = outcome.candidates
                span._.score = outcome.score
                span._.concept = outcome.concept
            return
        results = self.resources.candidates(queries, k=self.k, vocabulary=vocabulary)
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
        "rerank": False,
        "reranker_dir": "",
        "rerank_k": 5,
        "nil_threshold": -1.0,
        "rerank_skip_exact": False,
        "rerank_mentions_per_call": 1,
        "targets": [],
        "detector_targets": {},
        "window_k": 0,
    },
    # doc.ents: the dictionary detector's mentions (detector "dictionary"); span._.codes: only with targets
    assigns=["doc.ents", "span._.candidates", "span._.concept", "span._.score", "span._.detector", "span._.codes",
             "span._.window_candidates"],
)
def make_clin_linker(
    nlp: Language, name: str, index_dir: str, k: int, threshold: float, detector: str, threads: int, batch_size: int,
    rerank: bool, reranker_dir: str, rerank_k: int, nil_threshold: float, rerank_skip_exact: bool,
    rerank_mentions_per_call: int, targets: List[str], detector_targets: Dict[str, str], window_k: int,
) -> ClinLinker:
    """``index_dir`` "" = the embedded default index (ICD-10-CM + HPO), built on first use.

    NIL rule: ``threshold`` (bi-encoder cosine) when ``rerank`` is false (the default), ``nil_threshold`` when true.
    ``rerank``: rerank with the reranker at ``reranker_dir`` ("" = the shipped one; none installed is an
    error). ``rerank_k``: candidates reranked per mention. ``nil_threshold``: NIL below this calibrated
    probability (< 0 = the threshold calibrated on dev, in the model's calibration.json).
    ``rerank_skip_exact``: link a verbatim vocabulary name without reranking (off: a verbatim name of the wrong
    concept is common, e.g. a MeSH heading spelled like the disease the mention means). ``rerank_mentions_per_call``:
    mentions per onnxruntime call (1 = results independent of batching). ``targets``: vocabulary ids to code into
    (``span._.codes``); the first one's candidates become the span's; [] = every vocabulary competes, one winner.
    ``detector_targets``: ``{detector: vocabulary}``, the target of that detector's spans instead of ``targets``.
    ``window_k``: candidates per mention read with its surrounding words (``span._.window_candidates``; 0 = none).
    """
    return ClinLinker(nlp, name, index_dir, k, threshold, detector, threads, batch_size, rerank, reranker_dir,
                      rerank_k, nil_threshold, rerank_skip_exact, rerank_mentions_per_call, targets, detector_targets,
                      window_k)
