"""Dictionary detection: normalisation, name variants, longest match and exact character offsets."""
from __future__ import annotations

from clin_linker.pipeline.dictionary_matcher import DictionaryMatcher, name_lookup
from clin_linker.pipeline.normalize import name_variants, normalize

NAMES = [
    ("ICD10CM:I10", "Essential (primary) hypertension"),
    ("HPO:HP:0000822", "Hypertension"),
    ("ICD10CM:E11", "Type 2 diabetes mellitus"),
    ("ICD10CM:E11.9", "Type 2 diabetes mellitus without complications"),
    ("ICD10CM:R69", "Illness, unspecified"),
    ("HPO:HP:0031915", "Stable"),
]
LABELS = {k: "CONDITION" for k, _ in NAMES if k != "HPO:HP:0031915"}  # Stable: a qualifier, not detected


def matcher() -> DictionaryMatcher:
    return DictionaryMatcher(name_lookup(NAMES), LABELS)


def test_normalize_and_variants():
    assert normalize("Type-2  Diabetes,\r\nMellitus") == "type 2 diabetes mellitus"
    assert name_variants("Essential (primary) hypertension") == {
        "essential primary hypertension", "essential hypertension"}
    assert "illness" in name_variants("Illness, unspecified")


def test_longest_match_wins_and_offsets_are_exact():
    text = "Pt has Type 2 diabetes mellitus, essential hypertension;\r\nstable."
    found = matcher().find(text)
    assert [text[m.start_char:m.end_char] for m in found] == ["Type 2 diabetes mellitus", "essential hypertension"]
    assert found[1].concept_keys == ("ICD10CM:I10",)


def test_words_inside_longer_words_and_unicode_text():
    text = "Prehypertension noted. Température 38.5°C, hypertension."
    found = matcher().find(text)
    assert [text[m.start_char:m.end_char] for m in found] == ["hypertension"]
    assert found[0].start_char == text.rindex("hypertension")


def test_undetectable_concepts_stay_in_the_lookup_only():
    lookup = name_lookup(NAMES)
    assert lookup["stable"] == ("HPO:HP:0031915",)
    assert "stable" not in matcher().phrases
