"""The shipped pipeline: the single definition both front doors use (``add_pipe`` users and the Beam job)."""
from __future__ import annotations

import spacy
from spacy.language import Language

from . import linker_component  # noqa: F401  (registers the factory even without the entry point)


def build_pipeline(index_dir: str = "", **linker_config) -> Language:
    """English tokenizer + sentence splitter + ``clin_linker`` (detection, retrieval, NIL)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_linker", config={"index_dir": index_dir, **linker_config})
    return nlp


def linker_of(nlp: Language) -> linker_component.ClinLinker:
    """The pipeline's linker (for its store and model ids)."""
    for _, component in nlp.pipeline:
        if isinstance(component, linker_component.ClinLinker):
            return component
    raise ValueError("this spaCy pipeline has no clin_linker component; add it with nlp.add_pipe('clin_linker')")
