"""Offsets, windows and BIO round trips of the NER tagger (torch-free, uses the shipped tokenizer)."""
from __future__ import annotations

from pathlib import Path

import pytest

import clin_linker.models as models_pkg
from clin_linker.models.ner.labels import TAG_TO_ID, resolve_nesting
from clin_linker.models.ner.windows import (
    IGNORE_INDEX,
    decode_spans,
    load_tokenizer,
    merge_windows,
    spans_to_tags,
    special_ids,
    tokenize_texts,
    training_windows,
    window_bounds,
)

TOKENIZER = Path(models_pkg.__file__).parent / "ner_minilm_int8" / "tokenizer.json"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(TOKENIZER)


def spans_for(text: str, *mentions: tuple[str, str]) -> list[tuple[int, int, str]]:
    """Character spans of the first occurrence of each mention (searched left to right)."""
    out, pos = [], 0
    for mention, label in mentions:
        start = text.index(mention, pos)
        out.append((start, start + len(mention), label))
        pos = start + len(mention)
    return out


def round_trip(tokenizer, text, spans, max_len, stride):
    """gold spans -> BIO tags -> per-window slices -> merged -> decoded spans."""
    tokens = tokenize_texts(tokenizer, [text])[0]
    tags = spans_to_tags(tokens, spans)
    bounds = window_bounds(len(tokens), max_len, stride)
    windows = training_windows(tokens, tags, max_len, stride, special_ids(tokenizer))
    window_tags = [labels[1:-1] for _, labels in windows]
    return decode_spans(tokens, merge_windows(len(tokens), bounds, window_tags)), tokens, bounds


TRICKY = (
    "Pt w/ Crohn's disease\r\nStarted  5-ASA 2 µg/kg\tdaily\r\n"
    "Temp 38.5 °C.\r\nDx: café-au-lait macules, naïve to Métformine \r\nHx of MI"
)
TRICKY_SPANS = spans_for(
    TRICKY,
    ("Crohn's disease", "CONDITION"),
    ("5-ASA", "DRUG"),
    ("Temp", "MEASUREMENT"),
    ("café-au-lait macules", "CONDITION"),
    ("Métformine", "DRUG"),
    ("MI", "CONDITION"),  # last characters of the document
)


def test_offsets_point_into_the_original_text(tokenizer):
    tokens = tokenize_texts(tokenizer, [TRICKY])[0]
    pieces = [TRICKY[s:e] for s, e in tokens.offsets]
    assert all(p and p == p.strip() for p in pieces)  # never whitespace, never empty
    assert "café" in pieces and "°C" in pieces and "µ" in pieces  # accents/° kept in ORIGINAL text
    assert tokens.offsets[-1][1] == len(TRICKY)
    # continuation pieces are marked so a word is never split
    first = [s for s, _ in tokens.offsets].index(TRICKY.index("Métformine"))
    assert tokens.word_starts[first] and not tokens.word_starts[first + 1]


@pytest.mark.parametrize("max_len, stride", [(256, 64), (12, 4), (8, 3)])
def test_round_trip_on_crlf_unicode_text(tokenizer, max_len, stride):
    decoded, _, bounds = round_trip(tokenizer, TRICKY, TRICKY_SPANS, max_len, stride)
    assert decoded == TRICKY_SPANS
    assert [TRICKY[s:e] for s, e, _ in decoded][-1] == "MI"
    if max_len < 20:
        assert len(bounds) > 3


def test_long_document_entity_crossing_window_borders(tokenizer):
    filler = "The patient was reviewed in clinic today and reports no new complaints. "
    entity = "chronic obstructive pulmonary disease with acute exacerbation"
    text = "".join(filler * 3 + f"History of {entity} treated with tiotropium.\r\n" for _ in range(6))
    spans, pos = [], 0
    while (start := text.find(entity, pos)) >= 0:
        spans.append((start, start + len(entity), "CONDITION"))
        drug = text.index("tiotropium", start)
        spans.append((drug, drug + len("tiotropium"), "DRUG"))
        pos = drug
    decoded, tokens, bounds = round_trip(tokenizer, text, spans, max_len=64, stride=16)
    assert len(bounds) > 3
    assert decoded == spans
    starts = {s: i for i, (s, _) in enumerate(tokens.offsets)}
    ends = {e: i for i, (_, e) in enumerate(tokens.offsets)}
    crossing = [
        sp for sp in spans if any(starts[sp[0]] < b_end <= ends[sp[1]] for _, b_end in bounds[:-1])
    ]
    assert crossing, "the synthetic document must put an entity across a window border"


def test_merge_takes_the_window_with_most_context():
    # windows [0,6) and [4,10) of a 10-token text overlap on tokens 4 and 5
    merged = merge_windows(10, [(0, 6), (4, 10)], [[1] * 6, [2] * 6])
    assert merged == [1, 1, 1, 1, 1, 2, 2, 2, 2, 2]


def test_window_bounds_cover_everything_with_the_given_overlap():
    bounds = window_bounds(1000, 256, 64)
    assert bounds[0] == (0, 254) and bounds[-1][1] == 1000
    assert all(a_end - b_start == 64 for (_, a_end), (b_start, _) in zip(bounds, bounds[1:]))
    assert window_bounds(0, 256, 64) == []
    assert window_bounds(10, 256, 64) == [(0, 10)]
    with pytest.raises(ValueError):
        window_bounds(10, 10, 8)


def test_training_windows_frame_with_special_tokens(tokenizer):
    tokens = tokenize_texts(tokenizer, ["metformin for diabetes"])[0]
    special = special_ids(tokenizer)
    ((ids, labels),) = training_windows(tokens, [0] * len(tokens), 256, 64, special)
    assert ids[0] == special.cls and ids[-1] == special.sep
    assert labels[0] == labels[-1] == IGNORE_INDEX


def test_misaligned_gold_span_is_widened_to_whole_tokens(tokenizer):
    text = "started metformin  today"
    tokens = tokenize_texts(tokenizer, [text])[0]
    # gold ends inside a word and starts on the blank before it
    tags = spans_to_tags(tokens, [(7, 14, "DRUG")])
    assert decode_spans(tokens, tags) == [(8, 17, "DRUG")]
    assert text[8:17] == "metformin"


def test_decoding_repairs_ill_formed_bio_and_follows_first_piece(tokenizer):
    text = "aspirin warfarin heparin"
    tokens = tokenize_texts(tokenizer, [text])[0]
    words = [i for i, w in enumerate(tokens.word_starts) if w]
    tags = [0] * len(tokens)
    tags[words[0]] = TAG_TO_ID["I-DRUG"]  # I- without B- opens a span
    tags[words[1]] = TAG_TO_ID["B-DRUG"]  # B- after a span starts a new one
    tags[words[2]] = TAG_TO_ID["I-CONDITION"]  # label change opens a new span
    for i in range(len(tokens)):
        if not tokens.word_starts[i]:
            tags[i] = 0  # continuation pieces are ignored: the word's first piece decides
    assert decode_spans(tokens, tags) == [(0, 7, "DRUG"), (8, 16, "DRUG"), (17, 24, "CONDITION")]


def test_nesting_keeps_longest_and_prefers_condition_on_ties():
    spans = [
        (0, 30, "CONDITION"),
        (10, 16, "CONDITION"),  # nested: dropped
        (40, 50, "OBSERVATION"),
        (40, 50, "CONDITION"),  # same span: CONDITION wins
        (60, 70, "VALUE"),  # not one of our labels
        (80, 85, "DRUG"),
    ]
    assert resolve_nesting(spans) == [(0, 30, "CONDITION"), (40, 50, "CONDITION"), (80, 85, "DRUG")]
