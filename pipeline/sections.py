"""The ``clin_sections`` spaCy component: which note section (HPI, PMH, family history, ...) each mention is in.

Why: a mention's section changes what it asserts (a disease under "Family history:" is a relative's; one under
"PMH:" is past) and fills NOTE_NLP.section_concept_id. We use medspaCy's Sectionizer (its default header rules,
plus ``data/section_rules.json`` for headers clinical notes use that it lacks) and only add what clin-linker
needs on top: ``span._.section`` = a normalized title string (DESIGN §2), and a configurable title -> concept id map.

The section-driven assertion rules (family history -> is_family, PMH -> is_historical) are applied by
``clin_context`` after ConText, because they yield to what ConText finds in the sentence itself.
"""
# no `from __future__ import annotations`: spaCy validates factory signatures at run time

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Optional

import medspacy  # noqa: F401  (registers medspaCy's Token/Doc section extensions)
from medspacy.section_detection import Sectionizer, SectionRule
import spacy
from spacy.language import Language
from spacy.tokens import Doc, Span, Token

from . import extensions  # noqa: F401  (registers the Span extensions first)

DATA_DIR = Path(__file__).parent / "data"
SECTION_RULES = DATA_DIR / "section_rules.json"

#: medspaCy category -> our normalized title (identity for every category not listed).
_RENAME = {"allergy": "allergies", "observation_and_plan": "assessment_plan", "neurological": "physical_exam"}

#: The normalized titles the shipped rules produce (keys of the section -> concept map).
SECTION_TITLES = (
    "chief_complaint", "history_of_present_illness", "past_medical_history", "past_surgical_history",
    "family_history", "social_history", "medications", "allergies", "review_of_systems", "physical_exam",
    "labs_and_studies", "imaging", "assessment_plan", "diagnoses", "problem_list", "hospital_course",
    "patient_instructions", "patient_education", "reason_for_examination", "subjective", "objective", "follow_up",
    "addendum", "comments", "signature", "other",
)

#: Default section -> concept id map: 0 ("No matching concept") for all, because a real id depends on the
#: user's Athena vocabulary. Resolve SECTION_LOINC codes against a store with LOINC loaded to fill it.
DEFAULT_SECTION_CONCEPTS: dict[str, int] = {title: 0 for title in SECTION_TITLES}

#: LOINC document-section codes (the "LOINC:<code>" concept keys to look up when LOINC is loaded).
SECTION_LOINC = {
    "chief_complaint": "10154-3",  # Chief complaint Narrative - Reported
    "history_of_present_illness": "10164-2",  # History of Present illness Narrative
    "past_medical_history": "11348-0",  # History of Past illness Narrative
    "past_surgical_history": "47519-4",  # History of Procedures Document
    "family_history": "10157-6",  # History of family member diseases Narrative
    "social_history": "29762-2",  # Social history Narrative
    "medications": "10160-0",  # History of Medication use Narrative
    "allergies": "48765-2",  # Allergies and adverse reactions Document
    "review_of_systems": "10187-3",  # Review of systems Narrative - Reported
    "physical_exam": "29545-1",  # Physical findings Narrative
    "labs_and_studies": "30954-2",  # Relevant diagnostic tests/laboratory data Narrative
    "assessment_plan": "51847-2",  # Evaluation + Plan note
    "problem_list": "11450-4",  # Problem list - Reported
    "hospital_course": "8648-8",  # Hospital course Narrative
    "subjective": "61150-9",  # Subjective Narrative
    "objective": "61149-1",  # Objective Narrative
    "reason_for_examination": "42349-1",  # Reason for referral (narrative)
}


def section_concept_id(title: Optional[str], mapping: Optional[Mapping[str, int]] = None) -> int:
    """NOTE_NLP.section_concept_id for a normalized section title: ``mapping[title]``, else 0."""
    if not title:
        return 0
    return int((mapping if mapping is not None else DEFAULT_SECTION_CONCEPTS).get(title, 0) or 0)


def normalize_title(category: Optional[str]) -> Optional[str]:
    return _RENAME.get(category, category) if category else None


def ensure_span_section() -> None:
    """Make ``span._.section`` our writable title attribute.

    medspaCy registers a read-only ``Span._.section`` getter (returning its Section object) when imported before
    clin-linker's extensions; DESIGN §2 wants a title string there, so ours replaces it. medspaCy's own readers use
    ``Token._.section`` / ``Span._.section_category``, which stay.
    """
    default, method, getter, setter = Span.get_extension("section") or (None, None, None, None)
    if getter is not None or not Span.has_extension("section"):
        Span.set_extension("section", default=None, force=True)


def section_rules(extra_rules: str = "") -> list[SectionRule]:
    """medspaCy's default header rules minus ``drop_default_rules``, plus ours (and ``extra_rules``, same format)."""
    default = Sectionizer(spacy.blank("en"), rules="default", span_attrs=None).rules
    ours = json.loads(SECTION_RULES.read_text())
    drop = set(ours.get("drop_default_rules", []))
    rules = [r for r in default if r.literal not in drop]
    rules += [SectionRule.from_dict(d) for d in ours["section_rules"]]
    if extra_rules:
        rules += SectionRule.from_json(extra_rules)
    return rules


ensure_span_section()


class ClinSections:
    """medspaCy's Sectionizer + ``span._.section`` (normalized title) on every ``doc.ents`` span."""

    def __init__(self, nlp: Language, name: str, extra_rules: str, require_start_line: bool):
        ensure_span_section()
        self.name = name
        # span_attrs=None: the assertion flags a section implies are set by clin_context (see module docstring)
        self.sectionizer = Sectionizer(nlp, name=name, rules=None, require_start_line=require_start_line,
                                       span_attrs=None)
        self.sectionizer.add(section_rules(extra_rules))

    def __call__(self, doc: Doc) -> Doc:
        self.sectionizer(doc)
        for span in doc.ents:
            span._.section = section_of(span)
        return doc


def section_of(span: Span) -> Optional[str]:
    """The normalized title of the section ``span`` starts in (None before the first header / no sectionizer)."""
    section = span.doc[span.start]._.section if Token.has_extension("section") else None
    return normalize_title(section.category) if section is not None else None


def header_tokens(doc: Doc) -> set[int]:
    """Indices of the tokens of every section header (ConText must not read 'Family history:' as a modifier)."""
    if not Doc.has_extension("sections"):
        return set()
    found = set()
    for section in doc._.sections or []:
        if section.category is not None:
            found.update(range(section.title_start, section.title_end))
    return found


@Language.factory(
    "clin_sections",
    default_config={"extra_rules": "", "require_start_line": True},
    requires=["doc.ents"],
    assigns=["span._.section"],
)
def make_clin_sections(nlp: Language, name: str, extra_rules: str, require_start_line: bool) -> ClinSections:
    """``extra_rules``: a medspaCy section-rules JSON added to ours; ``require_start_line``: headers must start a
    line (keeps 'consult', 'plan:' etc. inside prose from opening a section)."""
    return ClinSections(nlp, name, extra_rules, require_start_line)
