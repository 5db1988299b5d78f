"""The trained coder's view of a candidate code: one fixed-length feature vector per (note, code).

Candidates are the retrieval candidates of the note's mentions (:class:`CandidateCollector`) plus the codes the
site's lexicon associates with its mentions' texts or retrieved codes (:mod:`.lexicon`, share >= 0.1) or with its
words (share >= 0.2), and, where the linker read each mention with its words around it, those candidates
(``win_*`` features, asserted mentions only; ICD-10-PCS). Each mention feature is computed twice where assertion
matters: over the asserted evidence and, prefixed ``neg_``, over the excluded one (negated, family, hypothetical
mentions), so the model learns what a negated mention is worth here instead of a fixed rule. A word's evidence
takes the flags of the mention it overlaps ("denies cough": the pair overlaps the negated "cough"; none outside
mentions). The flags only decide whether the evidence may make a code (``trained.py``); the word features do not
read them.
"""
from __future__ import annotations

import math
from collections import defaultdict

from spacy.lang.en.stop_words import STOP_WORDS
from spacy.tokens import Doc

from ..abbreviations import linking_query
from ..normalize import normalize, words
from .candidates import CandidateCode, CandidateCollector, mention_candidates, span_flags
from .evidence import Evidence
from .lexicon import CodedNote, CodingLexicon
from .zero_shot import DEFAULT_EXCLUDED_FLAGS

#: NER labels with a feature of their own (the best retrieval score of a mention with that label).
LABELS = ("CONDITION", "OBSERVATION", "MEASUREMENT", "PROCEDURE", "DRUG", "DEVICE")
#: Lexicon shares below this do not make a candidate (they still count as features of one).
MIN_PROPOSING_SHARE = 0.1
#: The same for the note's words: they are many, and weaker evidence than a mention.
MIN_PROPOSING_NGRAM_SHARE = 0.2
_PER_EVIDENCE = ("smax", "rr", "n", "n_top1", "exact", "lex_mention", "lex_mention_n", "lex_retrieved")
FEATURE_NAMES: tuple[str, ...] = (
    *_PER_EVIDENCE, *(f"neg_{f}" for f in _PER_EVIDENCE), *(f"label_{label}" for label in LABELS),
    "ngram_max", "ngram_sum", "ngram_count",
    "is_uncertain", "is_historical", "first_position", "prior", "billable", "chapter_R", "chapter_VZ",
    "win_smax", "win_rr", "win_n",
)


def mention_key(span) -> str:
    """The lexicon's ``mention`` key of a span: its normalised linking text (abbreviations expanded)."""
    return normalize(linking_query(span))


def is_proposing(evidence: Evidence) -> bool:
    """Whether ``evidence`` is strong enough to make a code on its own: a retrieval (or window) candidate, or a
    lexicon share at the proposing floor (a word's co-occurrence with a code at 0.05 is context for the model, not a
    reason)."""
    if evidence.source in ("retrieval", "window"):
        return True
    floor = MIN_PROPOSING_NGRAM_SHARE if evidence.source == "words" else MIN_PROPOSING_SHARE
    return evidence.score >= floor


def note_ngrams(text: str) -> dict[str, tuple[int, int]]:
    """The note's ``ngram`` keys with the character offsets of their first occurrence: every word of 3+ letters
    that is not a stop word or a number, and every pair of adjacent words that are not both stop words."""
    found: dict[str, tuple[int, int]] = {}
    tokens = [(m.group(0).lower(), m.start(), m.end()) for m in words(text)]
    for i, (word, start, end) in enumerate(tokens):
        if len(word) > 2 and word not in STOP_WORDS and not word.isdigit():
            found.setdefault(word, (start, end))
        if i + 1 < len(tokens):
            following, _, following_end = tokens[i + 1]
            if not (word in STOP_WORDS and following in STOP_WORDS):
                found.setdefault(f"{word} {following}", (start, following_end))
    return found


def note_keys(doc: Doc, collector: CandidateCollector) -> dict[str, frozenset[str]]:
    """The lexicon keys of a note: its mentions' texts, their best retrieved codes (as a coder writes them) and its
    words."""
    mentions, retrieved = set(), set()
    for span in doc.ents:
        mentions.add(mention_key(span))
        best = mention_candidates(span, collector.vocabulary)[:1]
        written = collector.completed(best[0][0], span.text) if best else None
        if written is not None:
            retrieved.add(written[0])
    return {"mention": frozenset(mentions), "retrieved": frozenset(retrieved),
            "ngram": frozenset(note_ngrams(doc.text))}


def coded_note(doc: Doc, collector: CandidateCollector, gold: frozenset[str]) -> CodedNote:
    """A training note for :meth:`CodingLexicon.fit` (``gold``: concept keys)."""
    return CodedNote(note_keys(doc, collector), gold)


def candidate_features(doc: Doc, collector: CandidateCollector, lexicon: CodingLexicon,
                       excluded_flags: tuple[str, ...] = DEFAULT_EXCLUDED_FLAGS
                       ) -> list[tuple[CandidateCode, list[float]]]:
    """Every candidate code of ``doc`` with its feature vector (in :data:`FEATURE_NAMES` order), by concept key."""
    candidates = collector(doc)
    values: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    text = doc.text  # spaCy rebuilds Doc.text from its tokens on every access
    length = max(len(text), 1)

    def tag(flags: tuple[str, ...]) -> str:
        return "neg_" if set(flags) & set(excluded_flags) else ""

    for key, candidate in candidates.items():
        f = values[key]
        for e in candidate.evidence:
            t = tag(e.flags)
            if e.source == "window":  # the mention read with its words around it: features of its own
                if not t:
                    f["win_smax"] = max(f["win_smax"], e.score)
                    f["win_rr"] = max(f["win_rr"], 1.0 / (1 + e.rank))
                    f["win_n"] += 1
                continue
            f[t + "smax"] = max(f[t + "smax"], e.score)
            f[t + "rr"] = max(f[t + "rr"], 1.0 / (1 + e.rank))
            f[t + "n"] += 1
            f[t + "n_top1"] += e.rank == 0
            f[t + "exact"] = max(f[t + "exact"], float(e.score >= 1.0))
            if not t:
                f[f"label_{e.label}"] = max(f[f"label_{e.label}"], e.score)
                for flag in ("is_uncertain", "is_historical"):
                    f[flag] = max(f[flag], float(flag in e.flags))
                f["first_position"] = min(f.get("first_position", 1.0), e.start / length)

    for span in doc.ents:
        flags = span_flags(span)
        t = tag(flags)
        best = mention_candidates(span, collector.vocabulary)[:1]
        written = collector.completed(best[0][0], span.text) if best else None
        lookups = [("mention", mention_key(span))] + ([("retrieved", written[0])] if written else [])
        for kind, key in lookups:
            for gold_key, share, count in lexicon.association(kind, key):
                written_code = collector.completed(gold_key, span.text)
                if written_code is None:
                    continue
                code, modifiers = written_code
                if code not in candidates:
                    if share < MIN_PROPOSING_SHARE:
                        continue
                    candidates[code] = CandidateCode(code, modifiers)
                candidate = candidates[code]
                candidate.evidence.append(Evidence(span.start_char, span.end_char, span.text, span.label_, -1,
                                                   share, flags, "lexicon"))
                f = values[code]
                f[f"{t}lex_{kind}"] = max(f[f"{t}lex_{kind}"], share)
                if kind == "mention":
                    f[f"{t}lex_mention_n"] = max(f[f"{t}lex_mention_n"], math.log1p(count))
                if not t and "first_position" not in f:
                    f["first_position"] = span.start_char / length

    spans = list(doc.ents)
    for ngram, (start, end) in note_ngrams(text).items():
        associated = list(lexicon.association("ngram", ngram))
        if not associated:
            continue
        overlapping = next((s for s in spans if s.start_char < end and start < s.end_char), None)
        flags = span_flags(overlapping) if overlapping is not None else ()
        for gold_key, share, _ in associated:
            written_code = collector.completed(gold_key)
            if written_code is None:
                continue
            code, modifiers = written_code
            if code not in candidates:
                if share < MIN_PROPOSING_NGRAM_SHARE:
                    continue
                candidates[code] = CandidateCode(code, modifiers)
            candidates[code].evidence.append(Evidence(start, end, text[start:end], "", -1, share, flags,
                                                      "words"))
            f = values[code]
            f["ngram_max"] = max(f["ngram_max"], share)
            f["ngram_sum"] += share
            f["ngram_count"] += 1

    rows = []
    for key in sorted(candidates):
        f = values[key]
        code = key.split(":", 1)[1]
        f["prior"] = math.log(lexicon.prior_share(key))
        specificity = collector.specificity
        f["billable"] = float(specificity.is_billable(code)) if specificity is not None else 1.0
        f["chapter_R"] = float(code[:1] == "R")
        f["chapter_VZ"] = float(code[:1] in "VWXYZ")
        f.setdefault("first_position", 1.0)
        rows.append((candidates[key], [float(f.get(name, 0.0)) for name in FEATURE_NAMES]))
    return rows
