"""Alphabetic Index paths -> the phrases a note would use ("Pain, abdominal" -> "abdominal pain").

The index files a condition under its main term and narrows it with indented subterms; flattened, a path
reads "Diabetes, diabetic, with, amyotrophy". A note says "diabetes with amyotrophy". The rules
(docs/vocabularies.md, "ICD-10-CM Alphabetic Index", has the examples):

- A part written as a word and its derived forms ("Diabetes, diabetic", "abdomen, abdominal") is one
  term: its first form (the noun) when it heads the phrase, its adjective form when it modifies.
- Subterms before any connective go in front of the head, the deeper one further out:
  "Pain, abdominal, lower" -> "lower abdominal pain"; "Fever, hemorrhagic, Bolivian" -> "Bolivian
  hemorrhagic fever". A main term that is an adjective ("Abnormal", "Aberrant") stays in front and the
  first subterm becomes the head: "Aberrant, artery, basilar" -> "aberrant basilar artery".
- A term with an adjective form followed by a noun subterm also reads as that adjective + the noun:
  "Hypertension, hypertensive, kidney" -> "kidney hypertension" and "hypertensive kidney". Which one a
  note uses depends on the words ("Infection, infected, infective, kidney" is "kidney infection"), so the
  main index gives both; a Neoplasm Table site only the adjective one ("abdomen, abdominal, wall" ->
  "abdominal wall", "anus, anal, sphincter" -> "anal sphincter").
- A connective subterm ("with", "due to", "in", "of", "without", ...) and every subterm after it keep
  reading order: "Diabetes, type 2, with, amyotrophy" -> "type 2 diabetes with amyotrophy".
- One-character and numeric subterms follow the head ("Fever, paratyphoid, A" -> "paratyphoid fever A").
- "NEC" and "NOS" (coding conventions, never written in a note) are removed; a path whose last part is
  a bare connective, a residual class ("specified NEC", "unspecified site", "other") or an instruction
  ("Note: ...") names nothing a note says and gives no phrase.

Adjectives are recognised by suffix (-al, -ic, -ous, -ive, -ary, ...) plus short lists of common
adjectives without one (acute, benign, ...) and of index nouns with one (accident, history, removal, ...).
"""
from __future__ import annotations

import re
from dataclasses import dataclass

#: Words that start a subterm read in order after the head (the subterm and all after it).
CONNECTIVES = (
    "due to", "associated with", "complicated by", "secondary to", "because of", "caused by", "resulting from",
    "with", "without", "in", "of", "from", "following", "after", "during", "complicating", "by", "involving",
    "affecting", "and", "or", "not", "on", "at", "to", "for", "as", "into", "within", "between", "under",
    "over", "via", "except", "than", "presenting", "meaning", "see",
)
_CONNECTIVE = re.compile(r"^(?:" + "|".join(re.escape(c) for c in CONNECTIVES) + r")(?:\s|$)", re.IGNORECASE)
_CODING_WORDS = re.compile(r"\s*\b(?:NEC|NOS)\b")
#: Coding instructions written as subterms ("Note: ...", "pancreatic duct - code to underlying condition").
_INSTRUCTION = re.compile(r"^note:|\bcode (?:to|by|as|also|first)\b", re.IGNORECASE)
_RESIDUAL = re.compile(
    r"^(?:(?:other|unspecified|specified|other specified)(?:\s+(?:site|sites|type|types|cause|causes|form|"
    r"forms|part|parts|organ|organs|condition|conditions|disease|diseases|disorder|disorders))?|site|type)$",
    re.IGNORECASE,
)
_ADJECTIVE_SUFFIX = re.compile(r"(?:al|ic|ous|ive|ary|ory|ular|ed|ile|ant|ent|less|-like|-borne)$", re.IGNORECASE)
_ADJECTIVES = frozenset(
    "acute chronic benign simple severe mild moderate high low late early old new complete incomplete multiple "
    "single double upper lower left right deep open closed minor major small large long short diffuse true "
    "false gross dry wet hard soft hot cold mature immature obese sudden silent stable unstable malign adult "
    "newborn senile juvenile infantile".split()
)
_NOUNS_LOOKING_ADJECTIVE = frozenset(
    "accident agent patient event infant implant transplant remnant variant tic colic panic clinic history "
    "memory ovary canal metal animal signal arrival withdrawal removal refusal denial trial rehearsal "
    "reversal interval material hospital individual crystal need bleed seed feed speed breed bed shed "
    "ankle ear tear scar bezoar sugar".split()
)
_TYPE_N = re.compile(r"^type\s+\w+$", re.IGNORECASE)


def is_adjective(word: str) -> bool:
    """Rule-of-thumb part of speech of one word (``"hysterical"`` yes, ``"accident"`` no)."""
    lower = word.lower()
    if lower in _NOUNS_LOOKING_ADJECTIVE or lower.endswith("ment"):
        return False
    return lower in _ADJECTIVES or bool(_ADJECTIVE_SUFFIX.search(lower))


def is_connective(text: str) -> bool:
    """True for a subterm read in order after the head: ``"with"``, ``"due to heat"``, ``"in pregnancy"``."""
    return bool(_CONNECTIVE.match(text))


def _is_bare_connective(text: str) -> bool:
    return text.lower() in CONNECTIVES


@dataclass(frozen=True)
class Term:
    """One part of an index path: its noun form, the form used when it modifies another term, and
    whether it goes in front of the head like an adjective ("abdominal", "essential", "type 2")."""

    noun: str
    modifier: str
    has_adjective_form: bool
    adjectival: bool

    def with_adjective(self, adjective: str) -> Term:
        """The term with a nonessential modifier in front ("Abasia" + "hysterical")."""
        return Term(f"{adjective} {self.noun}", f"{adjective} {self.modifier}", self.has_adjective_form,
                    self.adjectival)

    def lower_initial(self) -> Term:
        """Main terms are capitalised because they head an index entry; eponyms ("Addison's") keep theirs."""
        return Term(_lower_initial(self.noun), _lower_initial(self.modifier), self.has_adjective_form,
                    self.adjectival)


def parse_term(text: str) -> Term | None:
    """``"Diabetes, diabetic"`` -> noun "Diabetes", modifier "diabetic"; None when nothing is left."""
    text = " ".join(_CODING_WORDS.sub("", text).split()).strip(" ,")
    if not text:
        return None
    forms = [f.strip() for f in text.split(",") if f.strip()]
    if len(forms) > 1 and _derived_forms(forms):
        adjectives = [f for f in forms[1:] if is_adjective(f)]
        return Term(forms[0], adjectives[0] if adjectives else forms[-1], bool(adjectives), is_adjective(forms[0]))
    joined = " ".join(" ".join(forms).split())
    adjectival = (" " not in joined and is_adjective(joined)) or bool(_TYPE_N.match(joined))
    return Term(joined, joined, False, adjectival)


def _derived_forms(forms: list[str]) -> bool:
    """"abnormal, abnormality, abnormalities": single words sharing their first four letters."""
    if any(" " in f for f in forms):
        return False
    stem = forms[0][:4].lower()
    return len(stem) == 4 and all(f[:4].lower() == stem for f in forms)


def _lower_initial(text: str) -> str:
    first = text.split(" ", 1)[0]
    if "'" in first or not first[1:].islower():
        return text
    return text[0].lower() + text[1:]


def natural_phrases(path: list[str], *, site: bool = False, adjective: str | None = None) -> list[str]:
    """The phrases a note would use for an index path (main term first); empty when it names nothing.

    Usually one phrase; two when a term with an adjective form is followed by a noun in the main index
    ("Hypertension, hypertensive, kidney": "kidney hypertension" and "hypertensive kidney"), one reading
    (the adjective one) for a Neoplasm Table ``site``. ``adjective``: a nonessential modifier of the last
    term, put in front of it ("Pain, abdominal" + "severe" -> "severe abdominal pain").
    """
    last = _CODING_WORDS.sub("", path[-1]).strip()
    if any(_INSTRUCTION.search(part) for part in path) or _is_bare_connective(last) or _RESIDUAL.match(last):
        return []
    terms = [parse_term(part) for part in path]
    if any(t is None for t in terms):
        return []
    terms[0] = terms[0].lower_initial()
    if adjective:
        terms[-1] = terms[-1].with_adjective(adjective)
    readings = [_arrange(terms, adjective_form_heads=True)]
    if not site:
        readings.insert(0, _arrange(terms, adjective_form_heads=False))
    return list(dict.fromkeys(r for r in readings if r))


def _arrange(terms: list[Term], *, adjective_form_heads: bool) -> str:
    """Place the terms: lead adjective, pre-modifiers (deeper further out), head, then reading order."""
    main, *subterms = terms
    lead: list[str] = []
    pre: list[str] = []
    head: Term | None = None
    post: list[str] = []
    if main.adjectival:
        lead.append(main.noun)
    else:
        head = main
    for term in subterms:
        if post or is_connective(term.noun) or len(term.noun) == 1 or term.noun.isdigit():
            post.append(term.noun)
        elif head is None:
            head = term
        elif adjective_form_heads and not pre and head.has_adjective_form and not term.adjectival:
            pre, head = [head.modifier], term
        else:
            pre.insert(0, term.modifier)
    return " ".join(w for w in (*lead, *pre, head.noun if head else "", *post) if w)
