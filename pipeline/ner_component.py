"""The ``clin_ner`` spaCy component: the int8 ONNX token classifier sets ``doc.ents`` with OMOP labels.

The onnxruntime session is loaded once per process and model directory; ``nlp.pipe`` tags a whole
batch of docs in one ``predict`` call, which pools the windows of all its docs.

spaCy's component contract: the constructor only stores and checks the config; the model loads in
``initialize`` (``nlp.initialize()``) or ``from_disk`` (``spacy.load``), or on first use. ``to_disk`` saves a
copy of the model directory (hard links where possible) and points the saved config at it.
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Callable, Optional

from spacy import util
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import filter_spans, minibatch

from ..models.artifacts import ARTIFACTS_DIR
from ..models.encoder_runtime import default_threads
from ..models.ner.runtime import OnnxNerTagger
from . import extensions  # noqa: F401  (registers the Span extensions)
from .serialization import link_or_copy_tree, point_saved_config_at

DEFAULT_NER_DIR = ARTIFACTS_DIR / "ner_minilm_int8"
#: The folder of a saved component (``to_disk``) holding the model, also the name ``exclude`` takes.
SAVED_MODEL = "model"
_TAGGERS: dict[tuple[str, int], OnnxNerTagger] = {}
_LOCK = threading.Lock()


def load_tagger(model_dir: str | Path | None, threads: int = 0) -> OnnxNerTagger:
    directory = Path(model_dir).expanduser().resolve() if model_dir else DEFAULT_NER_DIR
    key = (str(directory), threads or default_threads())
    with _LOCK:
        if key not in _TAGGERS:
            _TAGGERS[key] = OnnxNerTagger(directory, threads=key[1])
        return _TAGGERS[key]


class ClinNer:
    def __init__(self, nlp: Language, name: str, model_dir: str, threads: int, batch_size: int):
        if batch_size < 1:
            raise ValueError(f"clin_ner: batch_size must be >= 1, got {batch_size}")
        if threads < 0:
            raise ValueError(f"clin_ner: threads must be >= 0, got {threads}")
        self.nlp = nlp
        self.name = name
        self.model_dir = model_dir
        self.threads = threads
        self.batch_size = batch_size
        self._tagger: Optional[OnnxNerTagger] = None

    def initialize(self, get_examples: Optional[Callable[[], Iterable[Example]]] = None, *,
                   nlp: Optional[Language] = None) -> None:
        """Load the model named by the config (``model_dir``; "" = the shipped one)."""
        self._tagger = load_tagger(self.model_dir or None, self.threads)

    @property
    def tagger(self) -> OnnxNerTagger:
        """The ONNX tagger, loaded on first use (``load_tagger`` makes that once per process and thread-safe)."""
        if self._tagger is None:
            self._tagger = load_tagger(self.model_dir or None, self.threads)
        return self._tagger

    @property
    def model_id(self) -> str:
        """Goes into NOTE_NLP.nlp_system."""
        return f"ner={self.tagger.info.short_id}"

    def to_disk(self, path: Path, *, exclude: Iterable[str] = tuple()) -> None:
        """Save a copy of the model directory into ``path`` and point the pipeline's saved config at it."""
        path = Path(path)
        tagger = self.tagger
        util.to_disk(path, {SAVED_MODEL: lambda p: link_or_copy_tree(tagger.info.directory, p)}, exclude)
        if SAVED_MODEL not in exclude:
            point_saved_config_at(path, self.name, {"model_dir": str((path / SAVED_MODEL).resolve())})

    def from_disk(self, path: Path, *, exclude: Iterable[str] = tuple()) -> "ClinNer":
        """Load the model ``to_disk`` saved in ``path`` (the config's ``model_dir`` when none was saved)."""
        saved = (Path(path) / SAVED_MODEL).resolve()
        if SAVED_MODEL not in exclude and saved.exists():
            self.model_dir = str(saved)
            if self.name in self.nlp.component_names:  # nlp.config names the model that was loaded
                self.nlp.get_pipe_config(self.name)["model_dir"] = self.model_dir
        self.initialize()
        return self

    def _set_ents(self, docs: list[Doc]) -> None:
        predictions = self.tagger.predict([d.text for d in docs])
        for doc, spans in zip(docs, predictions):
            found = []
            for start, end, label in spans:
                span = doc.char_span(start, end, label=label, alignment_mode="expand")
                if span is not None:
                    span._.detector = "ner"
                    found.append(span)
            doc.ents = filter_spans(found)

    def __call__(self, doc: Doc) -> Doc:
        self._set_ents([doc])
        return doc

    def pipe(self, stream: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        for batch in minibatch(stream, size=batch_size or self.batch_size):
            self._set_ents(batch)
            yield from batch


@Language.factory(
    "clin_ner",
    default_config={"model_dir": "", "threads": 0, "batch_size": 32},
    assigns=["doc.ents", "token.ent_iob", "token.ent_type", "span._.detector"],
)
def make_clin_ner(nlp: Language, name: str, model_dir: str, threads: int, batch_size: int) -> ClinNer:
    """``model_dir`` "" = the shipped int8 model (models/ner_minilm_int8).

    The tagger runs one 256-token window per onnxruntime call (``models.ner.runtime.OnnxNerTagger``), so a note's
    spans never depend on the notes it is batched with; ``batch_size`` only sets how many docs are read at once.
    """
    return ClinNer(nlp, name, model_dir, threads, batch_size)
