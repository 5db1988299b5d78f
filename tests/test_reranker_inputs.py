"""What the context cross-encoder reads (``models/reranker/inputs.py``): the character window around a mention on
awkward offsets, and the token layout ``[CLS] left [unused0] mention [unused1] right [SEP] candidate [SEP]`` under
the per-part token budget, built with the real uncased tokenizer the reranker ships with.

No model is needed: these are the ids torch trains on and onnxruntime scores, so every check here holds for both.
"""
from __future__ import annotations

import pytest

from clin_linker.models.artifacts import ARTIFACTS_DIR
from clin_linker.models.reranker.inputs import (
    CLS_ID, END_ID, SEP_ID, START_ID, MentionContext, PairEncoder, TokenBudget, candidate_text, mention_context,
)

#: the base all-MiniLM-L6-v2 tokenizer (the same uncased vocabulary the cross-encoder is cut from)
TOKENIZER = ARTIFACTS_DIR / "encoder_minilm_int8" / "tokenizer.json"


@pytest.fixture(scope="module")
def pairs() -> PairEncoder:
    return PairEncoder.from_file(str(TOKENIZER))


def _ctx(text: str, mention: str, chars: int = 100, occurrence: int = 0) -> MentionContext:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(mention, start + 1)
    return mention_context(text, start, start + len(mention), chars=chars)


def _pieces(pairs: PairEncoder, text: str) -> list[int]:
    return pairs.tokenizer.encode(text, add_special_tokens=False).ids


def _parts(row: list[int]) -> tuple[list[int], list[int], list[int], list[int]]:
    """left, mention, right and candidate ids of one unpadded row, split at the markers and separators."""
    assert row[0] == CLS_ID
    s, e = row.index(START_ID), row.index(END_ID)
    sep = row.index(SEP_ID)
    assert s < e < sep and row[-1] == SEP_ID
    return row[1:s], row[s + 1 : e], row[e + 1 : sep], row[sep + 1 : -1]


def _rows(batch: dict) -> list[list[int]]:
    return [[int(i) for i, m in zip(ids, mask) if m] for ids, mask in zip(batch["input_ids"], batch["attention_mask"])]


# --- the character window ----------------------------------------------------------------------------------------


def test_mention_at_the_very_start_and_the_very_end_of_the_text():
    text = "Fever since Monday, now with chills"
    first = mention_context(text, 0, 5)
    assert first == MentionContext("", "Fever", "since Monday, now with chills")
    last = mention_context(text, len(text) - len("chills"), len(text))
    assert last == MentionContext("Fever since Monday, now with", "chills", "")
    whole = mention_context(text, 0, len(text))
    assert whole == MentionContext("", text, "")


def test_crlf_tabs_and_newlines_inside_the_window_read_as_single_spaces():
    text = "Pt has\r\nsevere\t\tchest\r\n pain\r\n\r\nsince\tMonday\n"
    ctx = _ctx(text, "chest\r\n pain")
    assert ctx == MentionContext("Pt has severe", "chest pain", "since Monday")
    assert MentionContext.bare("  heart\r\n\tattack ") == MentionContext("", "heart attack", "")


def test_offsets_are_code_points_so_multibyte_characters_before_the_mention_cost_nothing(pairs):
    text = "Café patient, 漢字 note 😀 ok; asthma since childhood"
    start = text.index("asthma")
    assert len(text[:start].encode("utf-8")) > start  # the prefix really is multi-byte in UTF-8
    ctx = mention_context(text, start, start + len("asthma"))
    assert ctx == MentionContext("Café patient, 漢字 note 😀 ok;", "asthma", "since childhood")
    left, mention, right, _ = _parts(_rows(pairs.encode([ctx], ["Asthma"]))[0])
    assert mention == _pieces(pairs, "asthma") and right == _pieces(pairs, "since childhood")
    assert left == _pieces(pairs, ctx.left)[-pairs.budget.left:]


def test_a_window_edge_inside_a_word_moves_to_a_word_boundary_towards_the_mention():
    text = "pneumonia and severe cough with fever today"
    # 10 characters each side end inside "and" and inside "fever": those half words are dropped
    assert _ctx(text, "cough", chars=10) == MentionContext("severe", "cough", "with")
    # an edge that falls exactly on whitespace keeps the whole word next to it
    assert _ctx(text, "cough", chars=len("severe ")) == MentionContext("severe", "cough", "with")
    # the left edge falls inside "severe" (dropped), the right one on the space after "with" (kept)
    assert _ctx(text, "cough", chars=len(" with")) == MentionContext("", "cough", "with")
    # a window inside one long word reads no context on that side at all
    assert _ctx("supercalifragilistic cough medicinal", "cough", chars=5) == MentionContext("", "cough", "")


def test_the_window_is_cut_at_chars_and_never_inside_the_mention():
    words = [f"w{i}" for i in range(60)]
    text = " ".join(words[:30]) + " renal failure " + " ".join(words[30:])
    ctx = _ctx(text, "renal failure", chars=20)
    assert ctx.mention == "renal failure"
    assert 0 < len(ctx.left) <= 20 and 0 < len(ctx.right) <= 20
    assert ctx.left.split()[-1] == "w29" and ctx.right.split()[0] == "w30"
    assert all(w in words for w in ctx.left.split() + ctx.right.split())  # whole words only


@pytest.mark.parametrize("start,end", [(-1, 3), (5, 4), (0, 99), (99, 100)])
def test_bad_offsets_raise_value_error(start, end):
    with pytest.raises(ValueError, match="offsets"):
        mention_context("short text", start, end)


def test_candidate_text_is_the_name_then_the_lower_cased_domain():
    assert candidate_text("Myocardial  infarction\t", "Condition") == "Myocardial infarction ; condition"
    assert candidate_text("Haloperidol") == "Haloperidol"


# --- the token layout --------------------------------------------------------------------------------------------


def test_token_types_are_0_for_the_query_and_1_for_the_candidate_and_padding_is_masked(pairs):
    contexts = [MentionContext("History of", "HTN", "on lisinopril"), MentionContext.bare("sugar diabetes")]
    cands = ["Hypertension ; condition", "Diabetes Mellitus, Type 2 ; condition"]
    batch = pairs.encode(contexts, cands)
    assert set(batch) == {"input_ids", "attention_mask", "token_type_ids"}
    assert all(v.dtype.name == "int64" and v.shape == batch["input_ids"].shape for v in batch.values())
    for row, ctx, cand in zip(range(2), contexts, cands):
        ids, mask, types = (batch[k][row].tolist() for k in ("input_ids", "attention_mask", "token_type_ids"))
        n = sum(mask)
        assert mask == [1] * n + [0] * (len(mask) - n) and ids[n:] == [0] * (len(ids) - n)
        query_len = ids.index(SEP_ID) + 1
        assert types[:query_len] == [0] * query_len
        assert types[query_len:n] == [1] * (n - query_len) and types[n:] == [0] * (len(types) - n)
        left, mention, right, candidate = _parts(ids[:n])
        assert left == _pieces(pairs, ctx.left) and mention == _pieces(pairs, ctx.mention)
        assert right == _pieces(pairs, ctx.right) and candidate == _pieces(pairs, cand)
    # the shorter pair is padded to the longer one's width
    assert min(batch["attention_mask"].sum(1)) < batch["input_ids"].shape[1] == max(batch["attention_mask"].sum(1))


def test_markers_are_ids_1_and_2_exactly_once_even_when_the_note_spells_them(pairs):
    ctx = _ctx("Note says [unused0] and [unused1] here: chest pain [unused1] again", "chest pain")
    assert "[unused0]" in ctx.left and "[unused1]" in ctx.right
    (row,) = _rows(pairs.encode([ctx], ["Chest Pain [unused0]"]))
    assert row.count(START_ID) == 1 and row.count(END_ID) == 1
    assert row.count(CLS_ID) == 1 and row.count(SEP_ID) == 2
    assert pairs.tokenizer.id_to_token(START_ID) == "[unused0]" and pairs.tokenizer.id_to_token(END_ID) == "[unused1]"
    assert _parts(row)[1] == _pieces(pairs, "chest pain")


def test_a_note_cannot_spell_the_special_tokens_either(pairs):
    ctx = _ctx("Template [CLS] field [SEP] then [PAD] [MASK]: chest pain [SEP] again", "chest pain")
    (row,) = _rows(pairs.encode([ctx], ["Chest Pain [SEP] [PAD]"]))
    assert row.count(CLS_ID) == 1 and row.count(SEP_ID) == 2
    assert 0 not in row and 103 not in row  # [PAD], [MASK]


def test_a_mention_longer_than_its_budget_keeps_its_first_tokens_and_both_markers(pairs):
    mention = " ".join(["hypertension"] * 8 + ["diabetes"] * 8)
    ids = _pieces(pairs, mention)
    assert len(ids) > pairs.budget.mention
    (row,) = _rows(pairs.encode([MentionContext("pt with", mention, "today")], ["Hypertension"]))
    left, kept, right, _ = _parts(row)
    assert kept == ids[: pairs.budget.mention]
    assert left == _pieces(pairs, "pt with") and right == _pieces(pairs, "today")


def test_long_left_context_keeps_its_last_tokens_and_long_right_context_its_first(pairs):
    left = " ".join(f"alpha{i} beta" for i in range(20))
    right = " ".join(f"gamma{i} delta" for i in range(20))
    long_name = " ".join(["chronic obstructive pulmonary disease"] * 6)
    left_ids, right_ids, name_ids = _pieces(pairs, left), _pieces(pairs, right), _pieces(pairs, long_name)
    b = pairs.budget
    assert len(left_ids) > b.left and len(right_ids) > b.right and len(name_ids) > b.candidate
    (row,) = _rows(pairs.encode([MentionContext(left, "COPD", right)], [long_name]))
    got_left, mention, got_right, cand = _parts(row)
    assert got_left == left_ids[-b.left:] and got_left != left_ids[: b.left]
    assert got_right == right_ids[: b.right] and got_right != right_ids[-b.right:]
    assert cand == name_ids[: b.candidate]
    assert mention == _pieces(pairs, "COPD")
    assert len(row) == 1 + b.left + 1 + len(mention) + 1 + b.right + 1 + b.candidate + 1


def test_a_zero_budget_part_is_dropped_not_kept_whole():
    pairs = PairEncoder.from_file(str(TOKENIZER), TokenBudget(left=0, mention=4, right=0, candidate=3))
    (row,) = _rows(pairs.encode([MentionContext("a long left context", "heart attack", "and a right one")],
                                ["Myocardial Infarction"]))
    left, mention, right, cand = _parts(row)
    assert left == [] and right == [] and mention == _pieces(pairs, "heart attack")[:4]
    assert cand == _pieces(pairs, "Myocardial Infarction")[:3]


def test_query_and_candidate_ids_assemble_into_the_same_inputs_as_encode(pairs):
    contexts = [MentionContext("a", "b c", "d"), MentionContext.bare("e")]
    names = ["Name One ; drug", "Two"]
    direct = pairs.encode(contexts, names)
    assembled = PairEncoder.assemble(pairs.query_ids(contexts), pairs.candidate_ids(names))
    for key in direct:
        assert (direct[key] == assembled[key]).all(), key
    with pytest.raises(ValueError, match="contexts"):
        pairs.encode(contexts, names[:1])
