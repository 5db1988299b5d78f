"""The ``clin_context`` spaCy component: is each mention true of this patient, now? (DESIGN §2 assertion flags)

Why: NOTE_NLP's term_exists / term_temporal / term_modifiers need negation, uncertainty, history, hypothetical
and family-subject flags on every mention, whatever detector found it. We run medspaCy's ConText (its default
rules, which carry years of VA practice) over ``doc.ents`` and add only what clinical notes showed it lacks, in
``data/context_rules.json`` (pseudo-negations like "no increase", family members after the finding, "s/p",
"in 2019", "concern for", ...). Three things are ours rather than medspaCy's:

* flags are recomputed from ConText's edges on every call (not only ever set to True), and modifiers inside a
  section header are ignored, so "Family history:" or "History of present illness:" do not modify the section body;
* a newline ends every modifier's scope (``newline_terminates``): list items and header lines in notes often
  lack a period, and the sentencizer alone would let "No known allergies" negate the next line;
* section rules (``section_flags``) run after ConText: family history -> is_family, past medical/surgical
  history -> is_historical (unless ConText found the mention is a relative's or hypothetical).
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time

import json
from typing import Dict, Optional

from medspacy.context import ConText, ConTextRule
from medspacy.context.context import DEFAULT_ATTRIBUTES
from spacy.language import Language
from spacy.tokens import Doc, Span

from .extensions import CONTEXT_FLAGS
from .sections import DATA_DIR, header_tokens, section_of

CONTEXT_RULES = DATA_DIR / "context_rules.json"

#: ConText modifier category -> our Span flag. DESIGN §2 adopted medspaCy's attribute names, so this is
#: medspaCy's own DEFAULT_ATTRIBUTES (NEGATED_EXISTENCE -> is_negated, POSSIBLE_EXISTENCE -> is_uncertain, ...).
CATEGORY_FLAGS: Dict[str, str] = {cat: attr for cat, attrs in DEFAULT_ATTRIBUTES.items() for attr in attrs}

#: Section title (pipeline/sections.py) -> flags every mention in it gets. Allergies / instructions follow
#: medspaCy's Sectionizer defaults: an allergen or a "return if ..." finding is not a present patient event.
DEFAULT_SECTION_FLAGS: Dict[str, Dict[str, bool]] = {
    "family_history": {"is_family": True},
    "past_medical_history": {"is_historical": True},
    "past_surgical_history": {"is_historical": True},
    "allergies": {"is_hypothetical": True},
    "patient_instructions": {"is_hypothetical": True},
}
#: A section-implied flag is not set when ConText already set one of these on the mention.
_YIELDS_TO = {"is_historical": ("is_family", "is_hypothetical")}

#: Evaluation flag names (``clin-linker eval context`` JSONL keys) -> Span attribute.
EVAL_FLAGS = {"negated": "is_negated", "uncertain": "is_uncertain", "historical": "is_historical",
              "hypothetical": "is_hypothetical", "family": "is_family"}
#: Components that produce mentions; evaluation skips them, the annotated span is the only target.
_MENTION_FACTORIES = {"clin_ner", "clin_linker", "ner", "entity_ruler", "span_ruler", "spancat",
                      "clin_abbreviations", "abbreviation_detector"}


def context_rules(default_rules_path: Optional[str], extra_rules: str = "", newline_terminates: bool = True):
    """medspaCy's default rules (minus our ``drop_default_rules``) + ``data/context_rules.json`` + ``extra_rules``."""
    ours = json.loads(CONTEXT_RULES.read_text())
    drop = set(ours.get("drop_default_rules", []))
    rules = []
    if default_rules_path:
        rules = [r for r in ConTextRule.from_json(default_rules_path) if r.literal not in drop]
    rules += [ConTextRule.from_dict(d) for d in ours["context_rules"]]
    if extra_rules:
        rules += ConTextRule.from_json(extra_rules)
    if newline_terminates:
        rules.append(ConTextRule("<newline>", "TERMINATE", direction="TERMINATE", pattern=[{"TEXT": {"REGEX": "\n"}}]))
    return rules


class ClinContext:
    def __init__(self, nlp: Language, name: str, default_rules: bool, extra_rules: str, newline_terminates: bool,
                 max_scope: int, section_flags: Optional[Dict[str, Dict[str, bool]]]):
        for flags in (section_flags or {}).values():
            unknown = set(flags) - set(CONTEXT_FLAGS)
            if unknown:
                raise ValueError(f"clin_context: section_flags names unknown flags {sorted(unknown)}")
        self.name = name
        # span_attrs=None: we set the flags ourselves from the graph's edges (see the module docstring)
        self.context = ConText(nlp, name=name, rules=None, span_attrs=None, max_scope=max_scope or None)
        default_path = self.context.DEFAULT_RULES_FILEPATH if default_rules else None
        self.context.add(context_rules(default_path, extra_rules, newline_terminates))
        self.section_flags = DEFAULT_SECTION_FLAGS if section_flags is None else section_flags

    def __call__(self, doc: Doc) -> Doc:
        spans = list(doc.ents)
        for span in spans:
            for flag in CONTEXT_FLAGS:
                setattr(span._, flag, False)
        if not spans:
            return doc
        self.context(doc)
        headers = header_tokens(doc)
        for target, modifier in doc._.context_graph.edges:
            start, end = modifier.modifier_span
            if all(i in headers for i in range(start, end)):
                continue
            flag = CATEGORY_FLAGS.get(modifier.category)
            if flag:
                setattr(target._, flag, True)
        for span in spans:
            self._apply_section(span)
        return doc

    def _apply_section(self, span: Span) -> None:
        title = span._.section or section_of(span)
        for flag, value in self.section_flags.get(title, {}).items():
            if not any(getattr(span._, other) for other in _YIELDS_TO.get(flag, ())):
                setattr(span._, flag, value)


@Language.factory(
    "clin_context",
    default_config={"default_rules": True, "extra_rules": "", "newline_terminates": True, "max_scope": 0,
                    "section_flags": None},
    requires=["doc.ents"],
    assigns=[f"span._.{flag}" for flag in CONTEXT_FLAGS],
)
def make_clin_context(nlp: Language, name: str, default_rules: bool, extra_rules: str, newline_terminates: bool,
                      max_scope: int, section_flags: Optional[Dict[str, Dict[str, bool]]]) -> ClinContext:
    """``default_rules``: load medspaCy's rules; ``extra_rules``: a ConText rules JSON added to ours;
    ``max_scope``: tokens a modifier reaches (0 = its sentence); ``section_flags``: None = DEFAULT_SECTION_FLAGS."""
    return ClinContext(nlp, name, default_rules, extra_rules, newline_terminates, max_scope, section_flags)


def context_pipeline() -> Language:
    """The smallest pipeline ``evaluation.metrics.score_context`` needs: tokenizer, sentencizer, sections, context."""
    import spacy

    from . import sections  # noqa: F401  (registers clin_sections)

    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("clin_sections")
    nlp.add_pipe("clin_context")
    return nlp


def assert_span(nlp: Language, text: str, start: int, end: int, label: str = "TARGET") -> Span:
    """Run ``nlp``'s non-mention components on ``text`` with [start, end) as the only target; return it."""
    doc = nlp.make_doc(text)
    span = doc.char_span(start, end, label=label, alignment_mode="expand")
    if span is None:
        raise ValueError(f"no tokens in [{start}, {end}) of {text!r}")
    doc.ents = [span]
    for name, component in nlp.pipeline:
        if nlp.get_pipe_meta(name).factory not in _MENTION_FACTORIES:
            doc = component(doc)
    return doc.ents[0]
