"""Beam ``ModelHandler`` that runs the shipped spaCy pipeline: the Beam job's only link to linking.

``load_model`` builds the same pipeline ``nlp.add_pipe("clin_linker")`` gives (pipeline.build), once per
worker process (RunInference shares it across bundles); an index or model given as a URL is first fetched into the
worker's local cache (``.storage.fetch_directory``). ``run_inference`` sends a whole batch through
``nlp.pipe`` so the encoder sees many mentions per call (the models are batch-independent: a note's rows do not
depend on its batch mates); a note longer than one piece runs in pieces (``pipeline.long_notes``); a note that makes
the pipeline fail is retried alone and comes back as an error result instead of taking its batch down. With ``derive_events`` it also
returns each note's derived clinical event candidates (pipeline.omop.event_rows). With ``coding``
(``clin-linker run --code``) it loads the document coder next to the pipeline, once per worker too, and returns
each note's ranked code list as NOTE_CODE rows; the coded vocabulary's events then come from the coder's accepted
codes (pipeline.omop.code_event_rows), the other vocabularies' from the mentions.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import traceback
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from apache_beam.ml.inference.base import ModelHandler
from spacy.language import Language
from tqdm import tqdm

from ..ontologies.icd10cm_specificity import VOCABULARY_ID as ICD10CM
from ..ontologies.store import ConceptStore
from ..pipeline.build import build_pipeline, linker_of, model_ids
from ..pipeline.clinical_events import note_person_and_date
from ..pipeline.coder import DEFAULT_EXCLUDED_FLAGS, Coder, load_coder
from ..pipeline.long_notes import pipe_in_pieces
from ..pipeline.omop import code_event_rows, event_rows, nlp_system, note_nlp_rows
from .notes import Note
from .sinks.note_codes import note_code_rows
from .storage import fetch_directory


def _describe(error: Exception) -> str:
    """Exception type and where it was raised, but not its message: messages can quote note text."""
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{type(error).__name__} raised at {Path(frame.filename).name}:{frame.lineno}"


@dataclass(frozen=True)
class CodingOptions:
    """``clin-linker run --code``: which document coder codes each note (:func:`pipeline.coder.load_coder`'s
    arguments; picklable, so each worker loads its own coder from them)."""

    vocabulary: str = ICD10CM
    coder_dir: str | None = None  # None: the shipped model (with zero_shot: none)
    zero_shot: bool = False
    excluded_flags: tuple[str, ...] = DEFAULT_EXCLUDED_FLAGS

    def load(self, store: ConceptStore) -> Coder:
        coder_dir = str(fetch_directory(self.coder_dir)) if self.coder_dir else None
        return load_coder(store, self.vocabulary, coder_dir, self.zero_shot, self.excluded_flags)


@dataclass
class NotePipeline:
    """What a worker loads once: the spaCy pipeline, and the document coder when the run codes documents."""

    nlp: Language
    coder: Coder | None = None


@dataclass
class NoteResult:
    note_id: int
    source: str
    position: int
    # rows, events and codes quote the note (snippets, evidence): kept out of the repr, which tracebacks print
    rows: list[dict] = field(default_factory=list, repr=False)  # staged NOTE_NLP rows (schemas.tables.STAGED_NOTE_NLP)
    error: str | None = None
    nlp_system: str = ""
    events: list[dict] = field(default_factory=list, repr=False)  # derived event candidates (only with derive_events)
    event_skip: str | None = None  # why the note cannot have derived events (missing person_id/date)
    codes: list[dict] = field(default_factory=list, repr=False)  # ranked code list as NOTE_CODE rows (with coding)
    nil_threshold: float | None = None  # the score below which the linker wrote NIL (for the run log)
    text_sha256: str = ""  # of the note_text coded (clin_linker_note_state, for --incremental)


def text_sha256(text: str) -> str:
    """What ``--incremental`` compares: the SHA-256 of the note text's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class SpacyNoteModelHandler(ModelHandler[Note, NoteResult, NotePipeline]):
    def __init__(self, linker_config: dict, run_at: dt.datetime, min_batch_size: int = 8, max_batch_size: int = 64,
                 section_concepts: dict[str, int] | None = None, derive_events: bool = False,
                 coding: CodingOptions | None = None):
        """``section_concepts``: title -> section_concept_id, resolved once by the job (None: from the store per
        note); ``derive_events``: also compute CONDITION/DRUG/PROCEDURE event candidates; ``coding``: also code
        each note with that coder (the linker config must target its vocabulary first: the job sees to it)."""
        super().__init__()
        self.linker_config = dict(linker_config)
        self.run_at = run_at
        self.section_concepts = dict(section_concepts) if section_concepts is not None else None
        self.derive_events = derive_events
        self.coding = coding
        self._batching = {"min_batch_size": min_batch_size, "max_batch_size": max_batch_size}
        self._bar: tqdm | None = None

    def load_model(self) -> NotePipeline:
        config = dict(self.linker_config)
        for key in ("index_dir", "reranker_dir"):  # URLs: fetched once per worker into its local cache
            if config.get(key):
                config[key] = str(fetch_directory(config[key]))
        nlp = build_pipeline(**config)
        coder = self.coding.load(linker_of(nlp).resources.store) if self.coding else None
        return NotePipeline(nlp, coder)

    def nlp_system(self) -> str:
        """The NOTE_NLP.nlp_system this handler's pipeline writes (loads the pipeline: for the driver of an
        incremental run, which must know it before any note is read)."""
        return nlp_system(model_ids(self.load_model().nlp))

    def _process(self, notes: Sequence[Note], model: NotePipeline) -> list[NoteResult]:
        nlp, coder = model.nlp, model.coder
        system = nlp_system(model_ids(nlp))
        results = []
        linker = linker_of(nlp)
        store = linker.resources.store
        # one NIL rule applies (pipeline.linker_component): the reranker's calibrated threshold, else the cosine one
        threshold = linker.reranker.threshold if linker.reranker is not None else linker.threshold
        coded_vocabulary = self.coding.vocabulary if self.coding else None
        for doc, note in pipe_in_pieces(nlp, ((n.note_text, n) for n in notes)):
            rows = note_nlp_rows(doc, note.note_id, store, system, self.run_at, self.section_concepts)
            result = NoteResult(note.note_id, note.source, note.position, rows, nlp_system=system,
                                nil_threshold=threshold, text_sha256=text_sha256(note.note_text))
            codes = coder(doc) if coder else []
            if coder:
                result.codes = note_code_rows(note.note_id, codes, coder.model_id, store)
            if self.derive_events:
                context = note_person_and_date(note.note_id, note.fields)
                if isinstance(context, str):
                    result.event_skip = context
                else:
                    result.events = (event_rows(doc, note.note_id, *context, store, system, coded_vocabulary)
                                     + code_event_rows(codes, note.note_id, *context, store, system))
            results.append(result)
        return results

    def _progress(self, n: int) -> None:
        """A per-worker-process progress bar (created lazily: the handler itself is pickled to workers)."""
        if self._bar is None:
            self._bar = tqdm(desc="coding notes", unit="note", mininterval=2.0)
        self._bar.update(n)

    def run_inference(
        self, batch: Sequence[Note], model: NotePipeline, inference_args: dict[str, Any] | None = None
    ) -> Iterable[NoteResult]:
        self._progress(len(batch))
        try:
            return self._process(batch, model)
        except Exception:  # isolate the note(s) at fault; the others still get coded
            results = []
            for note in batch:
                try:
                    results.extend(self._process([note], model))
                except Exception as e:  # noqa: BLE001 - reported per note in the dead letter
                    results.append(NoteResult(note.note_id, note.source, note.position, error=_describe(e)))
            return results

    def batch_elements_kwargs(self) -> dict[str, int]:
        return dict(self._batching)

    def get_num_bytes(self, batch: Sequence[Note]) -> int:
        return sum(len(n.note_text) for n in batch)

    def get_metrics_namespace(self) -> str:
        return "clin_linker"
