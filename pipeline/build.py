"""The shipped pipeline: the single definition both front doors use (``add_pipe`` users and the Beam job)."""
from __future__ import annotations

import spacy
from spacy.language import Language

from . import (  # noqa: F401  (register the factories without entry points)
    abbreviations,
    context_component,
    functioning as functioning_component,
    linker_component,
    ner_component,
    sections,
)

#: Mentions of the shipped pipeline come from the NER model alone: on all four shared dev sets it scores a
#: higher or equal strict micro F1 than NER united with the dictionary detector (NCBI .834 vs .827, BC5CDR
#: .834 vs .824, Chia .637 vs .629, MACCROBAT .595 vs .595; `clin-linker eval ner --detector ...`, docs/spacy-component.md).
DEFAULT_LINKER_DETECTOR = "none"


def build_pipeline(index_dir: str = "", ner: bool = True, ner_config: dict | None = None, context: bool = True,
                   context_config: dict | None = None, functioning: bool = False, **linker_config) -> Language:
    """Tokenizer, sentences, abbreviations, ``clin_ner``, [``clin_functioning``], ``clin_linker``, sections, ConText;
    initialized.

    Abbreviations run before the linker (it embeds a mention's long form); sections and ConText run after it,
    because the linker's dictionary detector can add mentions that they must judge too. ``functioning``: also find
    ICF d4 activity statements (therapy and nursing notes) and code them into the store's ICF
    (:data:`.functioning.TARGET`, the user's ClaML), whatever the other mentions' targets. ``nlp.initialize()``
    loads every model and the index here (building the default index if missing), so the Beam job and the tests
    pay for loading up front and a missing artifact fails before the first note.
    """
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    if context:
        nlp.add_pipe("clin_abbreviations")
    if ner:
        nlp.add_pipe("clin_ner", config=ner_config or {})
    if functioning:
        nlp.add_pipe("clin_functioning")
        linker_config["detector_targets"] = {**linker_config.get("detector_targets", {}),
                                             functioning_component.DETECTOR: functioning_component.TARGET}
    nlp.add_pipe("clin_linker", config={"index_dir": index_dir, "detector": DEFAULT_LINKER_DETECTOR,
                                        **linker_config})
    if context:
        nlp.add_pipe("clin_sections")
        nlp.add_pipe("clin_context", config=context_config or {})
    nlp.initialize()
    return nlp


def model_ids(nlp: Language) -> str:
    """The ids of every model in the pipeline, for NOTE_NLP.nlp_system."""
    return " ".join(c.model_id for _, c in nlp.pipeline if hasattr(c, "model_id"))


def linker_of(nlp: Language) -> linker_component.ClinLinker:
    """The pipeline's linker (for its store and model ids)."""
    for _, component in nlp.pipeline:
        if isinstance(component, linker_component.ClinLinker):
            return component
    raise ValueError("this spaCy pipeline has no clin_linker component; add it with nlp.add_pipe('clin_linker')")
