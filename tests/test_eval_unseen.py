"""``clin-linker eval linking`` on annotated documents and its *unseen* subset (the pairs none of whose gold ids the
train pairs use), on a tiny hand-made corpus with the real shipped encoder and exact search.

Retrieval outcomes are fixed by construction, not by the model: a mention spelled like a dictionary name is that
concept's exact hit (ranked first), a mention spelled like *another* concept's name is that other concept's exact
hit (a known miss at rank 1), and a gold id outside the dictionary cannot be found at all.
"""
from __future__ import annotations

import json

import pytest

from clin_linker.models.reranker.inputs import MentionContext
from clin_linker.pipeline.evaluation.linking import pair_context, read_linking_file, train_ids, unseen_subset

NAMES = """concept_id\tname\tname_type
T1\tHypertension\tpreferred
T2\tDiabetes mellitus\tpreferred
T3\tAsthma\tpreferred
T4\tPodagra\tpreferred
T5\tGout\tpreferred
T6\tMigraine\tpreferred
"""
#: seen ids: T1, T2, T5 (T5 only through a document, the train file may be either format)
TRAIN_PAIRS = [{"mention": "high blood pressure", "concept_ids": ["T1"]},
               {"mention": "sugar diabetes", "concept_ids": ["T2"], "label": "CONDITION"}]
TRAIN_DOC = {"doc_id": "t1", "text": "Gouty arthritis of the toe.",
             "entities": [{"start": 0, "end": 15, "label": "CONDITION", "concept_ids": ["T5"]}]}

#: (text, [(mention, gold ids or [] for an entity without ids, right at rank 1?, unseen?)])
DEV = [
    ("History of hypertension and asthma.\r\nNow gout flare.",
     [("hypertension", ["T1"], True, False),
      ("asthma", ["T3"], True, True),
      ("gout", ["T4"], False, True)]),          # spelled like T5's name: T5 is the exact hit, gold T4 is not
    ("Migraine with diabetes mellitus; also xyzzy syndrome and a rash.",
     [("Migraine", ["T6", "T1"], True, False),  # composite with a seen id: seen
      ("diabetes mellitus", ["T2"], True, False),
      ("xyzzy syndrome", ["T98", "T99"], False, True),  # composite, every id unseen and not in the dictionary
      ("rash", [], None, None)]),               # no concept ids: not a linking pair
    ("Severe  migraine again.", [("migraine", ["T6", "T7"], True, True)]),  # composite, no id seen
]


def _write(tmp_path):
    (tmp_path / "names.tsv").write_text(NAMES)
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(p) + "\n" for p in TRAIN_PAIRS))
    (tmp_path / "train_docs.jsonl").write_text(json.dumps(TRAIN_DOC) + "\n")
    lines = []
    for n, (text, entities) in enumerate(DEV):
        ents, at = [], 0
        for mention, ids, _, _ in entities:
            start = text.index(mention, at)
            at = start + len(mention)
            ents.append({"start": start, "end": at, "label": "CONDITION", "concept_ids": ids})
        lines.append(json.dumps({"doc_id": f"d{n}", "text": text, "entities": ents}, ensure_ascii=False))
    (tmp_path / "dev.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return tmp_path / "names.tsv", [tmp_path / "train.jsonl", tmp_path / "train_docs.jsonl"], tmp_path / "dev.jsonl"


def _expected(only_unseen: bool) -> tuple[int, float]:
    rows = [(right, unseen) for _, entities in DEV for _, ids, right, unseen in entities if ids]
    rows = [r for r in rows if r[1] or not only_unseen]
    return len(rows), sum(r[0] for r in rows) / len(rows)


def test_documents_file_gives_pairs_with_their_contexts(tmp_path):
    _, _, dev = _write(tmp_path)
    pairs = read_linking_file(dev)
    assert [p["mention"] for p in pairs] == ["hypertension", "asthma", "gout", "Migraine", "diabetes mellitus",
                                             "xyzzy syndrome", "migraine"]
    assert [p["doc_id"] for p in pairs] == ["d0"] * 3 + ["d1"] * 3 + ["d2"]
    assert all(p["label"] == "CONDITION" for p in pairs)
    gout = pairs[2]
    assert gout["context"] == MentionContext("History of hypertension and asthma. Now", "gout", "flare.")
    assert pair_context(gout) == gout["context"]
    assert pairs[-1]["context"] == MentionContext("Severe", "migraine", "again.")
    # a pairs file has no context: the reranker reads the mention as written, bare
    pairs_only = read_linking_file(tmp_path / "train.jsonl")
    assert "context" not in pairs_only[0]
    assert pair_context(pairs_only[0]) == MentionContext.bare("high blood pressure")
    assert pair_context({"mention": "ventricular septal defect", "mention_as_written": "VSD"}) == \
        MentionContext.bare("VSD")


def test_a_document_entity_with_offsets_outside_its_text_is_an_error_naming_the_line(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"doc_id": "x", "text": "short",
                               "entities": [{"start": 2, "end": 40, "label": "C", "concept_ids": ["T1"]}]}) + "\n")
    with pytest.raises(ValueError, match="line 1.*doc x"):
        read_linking_file(bad)


def test_unseen_subset_keeps_exactly_the_pairs_whose_every_id_is_absent_from_train(tmp_path):
    _, train, dev = _write(tmp_path)
    seen = train_ids(train)
    assert seen == {"T1", "T2", "T5"}  # from the pairs file and from the documents file
    pairs = read_linking_file(dev)
    unseen = unseen_subset(pairs, seen)
    assert [p["mention"] for p in unseen] == ["asthma", "gout", "xyzzy syndrome", "migraine"]
    assert unseen_subset(pairs, set()) == pairs and unseen_subset(pairs, {"T1", "T2", "T3", "T4", "T6",
                                                                          "T7", "T98", "T99"}) == []
    assert unseen_subset(pairs, {"T7"})[-1]["mention"] == "xyzzy syndrome"  # T7 seen: the last migraine is seen


def _eval(capsys, *args) -> dict:
    from clin_linker.beam_jobs.cli import main

    assert main(["eval", "linking", *args]) == 0
    return json.loads(capsys.readouterr().out)


def test_eval_linking_reports_the_unseen_subset_of_the_train_pairs(tmp_path, capsys):
    names, train, dev = _write(tmp_path)
    r = _eval(capsys, "--pairs", str(dev), "--dictionary", str(names), "--train-pairs", *map(str, train),
              "--no-rerank", "--json", "--search", "exact")
    n, acc = _expected(only_unseen=False)
    assert r["n"] == n == 7 and r["acc@1"] == pytest.approx(acc)
    n_unseen, acc_unseen = _expected(only_unseen=True)
    u = r["unseen"]
    assert u["n"] == n_unseen == 4 and u["acc@1"] == pytest.approx(acc_unseen) == 0.5
    assert set(u) >= {"acc@1", "acc@5", "acc@25", "mrr", "ceiling", "labels"}
    # every concept is retrieved at k=25 over six concepts: acc@25 is the share with a gold id in the dictionary
    assert u["ceiling"] == pytest.approx(3 / 4) and u["acc@25"] == pytest.approx(u["ceiling"])
    assert u["labels"]["CONDITION"]["n"] == 4
    assert "reranker" not in r["artifacts"]
    # without train pairs there is no unseen block; the main scores do not depend on it
    plain = _eval(capsys, "--pairs", str(dev), "--dictionary", str(names), "--no-rerank", "--json",
                  "--search", "exact")
    assert "unseen" not in plain
    for key in ("acc@1", "acc@5", "acc@25", "mrr", "n", "ceiling"):
        assert plain[key] == pytest.approx(r[key]), key


def test_eval_linking_text_output_has_an_unseen_row_and_rerank_flags_conflict(tmp_path, capsys):
    from clin_linker.beam_jobs.cli import main

    names, train, dev = _write(tmp_path)
    assert main(["eval", "linking", "--pairs", str(dev), "--dictionary", str(names), "--train-pairs",
                 *map(str, train), "--no-rerank", "--search", "exact"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "unseen concepts" in line]
    assert len(rows) == 1 and rows[0].split()[-2] == "4"  # n of the unseen row
    assert main(["eval", "linking", "--pairs", str(dev), "--dictionary", str(names), "--rerank",
                 str(tmp_path), "--no-rerank"]) == 2
    assert "contradict" in capsys.readouterr().err
