"""Context cross-encoder reranking + NIL (issue 5) on a tiny real model trained in seconds (tests/reranker_fixture.py).

The model is all-MiniLM-L6-v2 cut to one layer and trained on ten (mention in context, right name, wrong names)
groups through the run-time pair encoder; it is exported with the shipped exporter, calibrated with the shipped
unseen-concept simulation, and run through the real ONNX runtime, the eval CLI and the ``clin_linker`` component
over a real store + index.
"""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from clin_linker.models.reranker.calibration import (
    NilCalibrator, candidate_features, choose_threshold, fit_calibrator, monotone_check, nil_precision_recall,
)
from clin_linker.ontologies.default_index import DEFAULT_ENCODER_DIR

from reranker_fixture import BUDGET, GROUPS, NOTE, groups, site_vocabulary_csv, train_tiny_cross_encoder

RERANK_K = 4

# --- calibration: no model needed ------------------------------------------------------------------------------


def _synthetic(seed: int = 0, n: int = 400):
    rng = np.random.default_rng(seed)
    right = rng.random(n) < 0.4
    logit = np.where(right, rng.normal(3, 1.5, n), rng.normal(-1, 1.5, n))
    cos = np.where(right, rng.normal(0.85, 0.05, n), rng.normal(0.75, 0.05, n))
    margin = np.where(right, rng.normal(2, 1, n), rng.normal(-2, 1, n))
    return np.stack([logit, margin, cos], 1), right


def test_fitted_probability_is_monotone_in_every_feature_and_in_0_1():
    x, y = _synthetic()
    cal = fit_calibrator(x, y)
    assert all(w >= 0 for w in cal.weights) and cal.weights[0] > 0
    assert monotone_check(cal)
    grid = np.random.default_rng(1).normal(0, 30, (2000, 3))  # far outside the data, too
    p = cal.probability(grid)
    assert p.min() >= 0.0 and p.max() <= 1.0
    # raising any one feature never lowers the probability
    for j in range(3):
        bumped = grid.copy()
        bumped[:, j] += 0.5
        assert np.all(cal.probability(bumped) >= p - 1e-12)


def test_a_feature_that_hurts_gets_weight_zero_not_a_negative_weight():
    x, y = _synthetic(2)
    x[:, 2] = np.where(y, 0.6, 0.9)  # cosine anti-correlated with being right: monotone fit must not follow it
    cal = fit_calibrator(x, y)
    assert cal.weights[2] == 0.0
    assert monotone_check(cal)


def test_calibration_round_trips_and_refuses_a_non_monotone_file(tmp_path):
    x, y = _synthetic(3)
    cal = fit_calibrator(x, y)
    cal.threshold = 0.3
    cal.save(tmp_path)
    again = NilCalibrator.load(tmp_path)
    assert again.threshold == 0.3 and np.allclose(again.probability(x), cal.probability(x))
    blob = json.loads((tmp_path / "calibration.json").read_text())
    blob["weights"][1] = -0.5
    (tmp_path / "calibration.json").write_text(json.dumps(blob))
    with pytest.raises(ValueError, match="monotone"):
        NilCalibrator.load(tmp_path)


def test_threshold_reaches_the_target_nil_precision_on_its_data():
    rng = np.random.default_rng(4)
    is_nil = rng.random(500) < 0.2
    best = np.clip(np.where(is_nil, rng.normal(0.3, 0.15, 500), rng.normal(0.8, 0.15, 500)), 0, 1)
    chosen = choose_threshold(best, is_nil, 0.85)
    assert chosen["reached"]
    precision, recall, _ = nil_precision_recall(best, is_nil, chosen["threshold"])
    assert precision >= 0.85 and recall == pytest.approx(chosen["recall"])
    # a higher threshold (more abstention) would fall below the target or abstain on nothing more
    stricter = nil_precision_recall(best, is_nil, chosen["threshold"] + 0.05)
    assert stricter[0] < 0.85 or stricter[1] == recall


def test_margin_feature_compares_each_candidate_with_the_best_other():
    f = candidate_features(np.array([1.0, 3.0, 2.0]), np.array([0.9, 0.8, 0.7]))
    assert f[:, 1].tolist() == [-2.0, 1.0, -1.0]
    # the cosine column is the mention's best, so the probability orders candidates as the logit does
    assert f[:, 2].tolist() == [0.9, 0.9, 0.9]
    calibrator = NilCalibrator([0.7, 0.2, 9.0], -8.0, 0.4)
    order = np.argsort(-calibrator.probability(f))
    assert order.tolist() == np.argsort(-f[:, 0]).tolist()
    # a file fitted on the candidate's own cosine (the first rerankers) still reads as fitted
    old = NilCalibrator([1.0, 0.0, 2.0], 0.0, 0.5, ("logit", "margin", "cosine"))
    assert candidate_features(f[:, 0], np.array([0.9, 0.8, 0.7]), old.features)[:, 2].tolist() == [0.9, 0.8, 0.7]
    with pytest.raises(ValueError, match="unknown features"):
        NilCalibrator([1.0], 0.0, 0.5, ("cosine_of_the_moon",))


# --- the tiny trained model ---------------------------------------------------------------------------------------


def _group_dictionary(root: Path) -> tuple[Path, Path, dict[str, str]]:
    """A names TSV of every name in GROUPS (one concept each) and the GROUPS mentions as gold pairs."""
    names = sorted({n for _, pos, negs in GROUPS for n in [pos, *negs]})
    cid = {n: f"T{i:03d}" for i, n in enumerate(names)}
    (root / "names.tsv").write_text("concept_id\tname\n" + "".join(f"{cid[n]}\t{n}\n" for n in names))
    (root / "pairs.jsonl").write_text("".join(
        json.dumps({"mention": q, "concept_ids": [cid[pos]], "doc_id": str(i), "label": "CONDITION"}) + "\n"
        for i, (q, pos, _) in enumerate(GROUPS)))
    return root / "names.tsv", root / "pairs.jsonl", cid


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    pytest.importorskip("torch", reason="training the tiny reranker needs the [train] extra")
    from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
    from clin_linker.models.reranker.export import export_cross_encoder
    from clin_linker.models.reranker.runtime import OnnxCrossEncoder
    from clin_linker.beam_jobs.cli import main

    root = tmp_path_factory.mktemp("reranker")
    hf = train_tiny_cross_encoder(root / "hf")
    meta = export_cross_encoder(hf, root / "int8", "tiny-reranker", keep_fp32=root / "fp32.onnx")
    names, pairs, cid = _group_dictionary(root)
    # the calibration command, as a user runs it (writes calibration.json into the reranker directory)
    assert main(["model", "calibrate-reranker", "--reranker", str(root / "int8"), "--encoder", str(DEFAULT_ENCODER_DIR),
                 "--corpus", str(pairs), str(names), "--rerank-k", str(RERANK_K), "--target-precision", "0.8",
                 "--holdout", "0.5", "--doc-fold", "all", "--no-expand-abbreviations", "--threads", "2"]) == 0
    calibrator = NilCalibrator.load(root / "int8")
    encoder = OnnxSentenceEncoder(DEFAULT_ENCODER_DIR, threads=2)
    reranker = OnnxCrossEncoder(root / "int8", threads=2)
    return SimpleNamespace(root=root, hf=hf, int8=root / "int8", fp32=root / "fp32.onnx", meta=meta, names=names,
                           pairs=pairs, cid=cid, encoder=encoder, reranker=reranker, calibrator=calibrator)


def _torch_scores(tiny, groups):
    from transformers import AutoModelForSequenceClassification

    from clin_linker.models.reranker.export import torch_scores
    from clin_linker.models.reranker.inputs import PairEncoder

    model = AutoModelForSequenceClassification.from_pretrained(str(tiny.hf)).eval()
    return torch_scores(model, PairEncoder.from_file(str(tiny.hf / "tokenizer.json"), BUDGET), groups)


def test_onnx_scores_match_the_trained_torch_model(tiny):
    import onnxruntime as ort

    trained = groups()
    assert any(ctx.left or ctx.right for ctx, _ in trained)  # contexts, not only bare mentions, are compared
    bounds = np.cumsum([0] + [len(names) for _, names in trained])
    ref = _torch_scores(tiny, trained)
    # the model learned its groups: torch ranks every right name first (else the checks below prove little)
    assert all(ref[a:b].argmax() == 0 for a, b in zip(bounds, bounds[1:]))
    assert np.isfinite(ref).all()

    fp32 = tiny.reranker.__class__(tiny.int8, threads=2)
    fp32.session = ort.InferenceSession(str(tiny.fp32), providers=["CPUExecutionProvider"])
    one_call = np.concatenate(fp32.score_groups(trained, groups_per_call=len(trained)))
    assert np.abs(one_call - ref).max() < 1e-4  # the graph is the model, fed the ids torch was fed
    per_call = np.concatenate(fp32.score_groups(trained))  # other padding widths: the same scores
    assert np.abs(per_call - ref).max() < 1e-4

    int8 = np.concatenate(tiny.reranker.score_groups(trained))
    assert np.abs(int8 - ref).max() < 0.08 * (ref.max() - ref.min())  # int8: within 8% of the logit range
    assert np.corrcoef(int8, ref)[0, 1] > 0.99
    assert all(int8[a:b].argmax() == 0 for a, b in zip(bounds, bounds[1:]))  # int8 keeps every right name first
    recorded = tiny.meta["int8_vs_torch"]
    assert recorded["pearson"] > 0.98 and recorded["n_groups"] > 0
    assert tiny.meta["fp32_onnx_vs_torch_max_abs_diff"] < 1e-4
    artifact = json.loads((tiny.int8 / "artifact.json").read_text())
    assert artifact["kind"] == "context-cross-encoder"


def test_the_export_and_the_runtime_use_the_token_budget_training_used(tiny):
    from clin_linker.models.reranker.inputs import START_ID, MentionContext, TokenBudget

    assert BUDGET != TokenBudget()  # else this could not tell a recorded budget from the default
    assert json.loads((tiny.int8 / "artifact.json").read_text())["budget"] == BUDGET.to_json()
    assert tiny.meta["budget"] == BUDGET.to_json() and tiny.reranker.pairs.budget == BUDGET
    # a context longer than the budget scores as its truncation: the runtime cut it as training did
    long_left = MentionContext(" ".join(["patient seen today"] * 20), "lumbago", "")
    cut = tiny.reranker.pairs.query_ids([long_left])[0]
    assert cut.index(START_ID) == 1 + BUDGET.left  # [CLS] + the last BUDGET.left tokens, then [unused0]


def test_a_group_scored_alone_scores_the_same_among_other_groups(tiny):
    trained = groups()
    alone = tiny.reranker.score_groups([trained[3]])[0]
    among = tiny.reranker.score_groups(trained, groups_per_call=1)[3]
    assert np.array_equal(alone, among)
    assert [len(s) for s in tiny.reranker.score_groups(trained[:2] + [(trained[0][0], [])])] == \
        [len(trained[0][1]), len(trained[1][1]), 0]  # a mention without candidates gets no scores


def test_the_score_depends_on_the_context_not_only_on_the_mention(tiny):
    from clin_linker.models.reranker.inputs import MentionContext, mention_context

    start = NOTE.index("Broken thigh bone")
    in_note = mention_context(NOTE, start, start + len("Broken thigh bone"))
    assert in_note.left and in_note.right
    names = ["Fracture of femur", "Frequent falls", "Chronic pain, lower back"]
    bare, read = tiny.reranker.score_groups([(MentionContext.bare(in_note.mention), names), (in_note, names)])
    assert not np.allclose(bare, read, atol=1e-3)


def test_runtime_refuses_a_sentence_encoder_directory():
    from clin_linker.models.reranker.runtime import OnnxCrossEncoder

    with pytest.raises(ValueError, match="cross-encoder"):
        OnnxCrossEncoder(DEFAULT_ENCODER_DIR)


def test_fitted_calibration_of_the_tiny_model_is_monotone_and_recorded(tiny):
    cal = NilCalibrator.load(tiny.int8)
    assert cal.meta["fitted"] and cal.meta["rerank_k"] == RERANK_K
    assert 0.0 <= cal.threshold <= 1.0 and monotone_check(cal)


def test_eval_linking_rerank_json_keeps_the_biencoder_keys_and_adds_retrieval_only_and_nil(tiny, capsys):
    from clin_linker.beam_jobs.cli import main
    from clin_linker.pipeline.evaluation.linking import dictionary_linker, evaluate_linking, load_dictionary

    rc = main(["eval", "linking", "--pairs", str(tiny.pairs), "--dictionary", str(tiny.names), "--encoder",
               str(DEFAULT_ENCODER_DIR), "--rerank", str(tiny.int8), "--rerank-k", str(RERANK_K), "--nil-holdout",
               "0.5", "--json"])
    assert rc == 0
    r = json.loads(capsys.readouterr().out)
    assert {"acc@1", "acc@5", "acc@25", "mrr", "n", "ceiling", "labels"} <= set(r)
    assert set(r["nil"]) >= {"precision", "recall", "threshold"}
    assert r["nil"]["threshold"] == pytest.approx(tiny.calibrator.threshold)
    assert r["nil"]["nil_mentions"] > 0
    # retrieval_only is exactly the bi-encoder protocol's result on the same pairs and dictionary
    plain = evaluate_linking(tiny.pairs, dictionary_linker(load_dictionary(tiny.names), tiny.encoder), k=25)
    for key in ("acc@1", "acc@5", "acc@25", "mrr", "n", "ceiling"):
        assert r["retrieval_only"][key] == pytest.approx(plain[key]), key
    assert r["artifacts"]["reranker"].startswith("tiny-reranker@")
    # reranking only reorders the top RERANK_K: acc@25 cannot move, and n is the same
    assert r["acc@25"] == pytest.approx(plain["acc@25"]) and r["n"] == plain["n"]
    # on the groups it was trained on, the cross-encoder beats retrieval alone
    assert r["acc@1"] > r["retrieval_only"]["acc@1"]
    assert "unseen" not in r and "unseen" not in r["retrieval_only"]  # no train pairs given


def test_reranked_eval_of_the_unseen_subset_is_the_same_eval_on_those_pairs_alone(tiny, tmp_path):
    from clin_linker.pipeline.evaluation.linking import (
        dictionary_linker, load_dictionary, read_linking_file, train_ids, unseen_subset,
    )
    from clin_linker.pipeline.evaluation.reranked import evaluate_reranking

    pairs = read_linking_file(tiny.pairs)
    train = tmp_path / "train.jsonl"  # every other pair's concept counts as seen in training
    train.write_text("".join(json.dumps({"mention": "seen", "concept_ids": p["concept_ids"]}) + "\n"
                             for p in pairs[::2]))
    unseen = unseen_subset(pairs, train_ids(train))
    assert 0 < len(unseen) < len(pairs)
    linker = dictionary_linker(load_dictionary(tiny.names), tiny.encoder)
    r = evaluate_reranking(tiny.pairs, linker, tiny.int8, rerank_k=RERANK_K, nil=False, train_pairs=train)
    alone = evaluate_reranking(unseen, linker, tiny.int8, rerank_k=RERANK_K, nil=False)
    assert r["unseen"]["n"] == r["retrieval_only"]["unseen"]["n"] == len(unseen) < r["n"]
    for key in ("acc@1", "acc@5", "acc@25", "mrr", "n", "ceiling"):
        assert r["unseen"][key] == pytest.approx(alone[key]), key
        assert r["retrieval_only"]["unseen"][key] == pytest.approx(alone["retrieval_only"][key]), key
    assert "unseen" not in alone


# --- the clin_linker component with reranking on ------------------------------------------------------------------

VOCAB = site_vocabulary_csv()  # LP001..LP007: no myocardial infarction concept
TEXT = NOTE  # the note whose contexts the tiny model was trained on


@pytest.fixture(scope="module")
def vocab_index(tmp_path_factory) -> Path:
    """A store + index without any myocardial-infarction concept: 'heart attack' has no right answer in it."""
    from small_indexes import build_small_index

    root = tmp_path_factory.mktemp("rerank_vocab")
    (root / "site.csv").write_text(VOCAB)
    return build_small_index(root, [f"custom:SITE={root / 'site.csv'}"])


def _nlp(index: Path, **linker):
    import spacy

    from clin_linker.pipeline import linker_component  # noqa: F401  (registers the factory)

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "CONDITION", "pattern": [{"LOWER": w} for w in phrase.split()]}
                        for phrase in ("recurrent falls", "low back pain", "heart attack", "broken thigh bone")])
    nlp.add_pipe("clin_linker", config={"index_dir": str(index), "detector": "none", "threads": 2, **linker})
    return nlp


def test_pipeline_reranks_and_a_mention_whose_concept_is_absent_abstains(tiny, vocab_index):
    nlp = _nlp(vocab_index, rerank=True, reranker_dir=str(tiny.int8), rerank_k=RERANK_K, rerank_skip_exact=True)
    linker = nlp.get_pipe("clin_linker")
    assert linker.reranker is not None and "rr=tiny-reranker@" in linker.model_id
    doc = nlp(TEXT)
    spans = {e.text.lower(): e for e in doc.ents}
    threshold = linker.reranker.threshold

    heart = spans["heart attack"]  # gold (myocardial infarction) is not in this vocabulary
    assert heart._.concept is None, heart._.candidates
    assert heart._.candidates and heart._.score < threshold  # NIL keeps its reranked candidates

    assert spans["low back pain"]._.concept == "SITE:LP002"
    # "broken thigh bone" shares no word with "Fracture of femur": the reranker must put it first, and it must be
    # more probable than anything offered for the mention whose concept is absent; whether it clears the NIL
    # threshold depends on a calibration fitted on ten groups, so only the rule is checked there
    thigh = spans["broken thigh bone"]
    assert thigh._.candidates[0][0] == "SITE:LP004" and thigh._.score > heart._.score
    assert thigh._.concept == ("SITE:LP004" if thigh._.score >= threshold else None)
    assert spans["recurrent falls"]._.concept == "SITE:LP001"  # verbatim synonym: decisive, not reranked
    assert spans["recurrent falls"]._.score == 1.0
    for span in doc.ents:
        scores = [s for _, s in span._.candidates]
        assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
        assert span._.score == scores[0]
        # reranked mentions keep their rerank_k candidates; the decisive one its retrieval top k
        assert len(scores) <= (linker.k if span.text.lower() == "recurrent falls" else RERANK_K)

    # the two "low back pain" are read in their own contexts: two queries, one cache entry each
    from clin_linker.models.reranker.inputs import mention_context

    lows = [e for e in doc.ents if e.text.lower() == "low back pain"]
    assert len(lows) == 2
    contexts = [mention_context(TEXT, e.start_char, e.end_char) for e in lows]
    cached = {key[:4] for key in linker.reranker._cache if key[1].lower() == "low back pain"}
    assert cached == {(c.left.lower(), c.mention, c.right.lower(), "CONDITION") for c in contexts}
    assert len(cached) == 2
    # one context written in another case is the same query to an uncased model: scored once, same outcome
    before = len(linker.reranker._cache)
    first, again = nlp("Seen today. Low back pain since May."), nlp("SEEN TODAY. Low back pain SINCE MAY.")
    assert len(linker.reranker._cache) == before + 1
    assert first.ents[0]._.candidates == again.ents[0]._.candidates and first.ents[0]._.candidates


def test_rerank_off_and_missing_reranker_dir(tiny, vocab_index):
    off = _nlp(vocab_index)  # rerank is off unless the config turns it on
    assert off.get_pipe("clin_linker").reranker is None
    assert " rr=" not in off.get_pipe("clin_linker").model_id
    doc = off("Low back pain.")
    assert doc.ents[0]._.candidates  # retrieval-only linking still works
    with pytest.raises(FileNotFoundError, match="reranker_dir"):
        _nlp(vocab_index, rerank=True, reranker_dir=str(tiny.root / "nowhere")).initialize()


def test_saved_reranking_pipeline_carries_its_reranker_and_links_the_same(tiny, vocab_index, tmp_path):
    import spacy

    nlp = _nlp(vocab_index, rerank=True, reranker_dir=str(tiny.int8), rerank_k=RERANK_K)
    expected = [(e.text, e._.concept, e._.score, e._.candidates) for e in nlp(TEXT).ents]
    nlp.to_disk(tmp_path / "p")
    saved = tmp_path / "p" / "clin_linker" / "reranker"
    assert (saved / "calibration.json").exists()
    again = spacy.load(tmp_path / "p")
    assert again.get_pipe_config("clin_linker")["reranker_dir"] == str(saved.resolve())
    assert again.get_pipe("clin_linker").reranker.encoder.info.directory.resolve() == saved.resolve()
    assert [(e.text, e._.concept, e._.score, e._.candidates) for e in again(TEXT).ents] == expected


def test_nil_threshold_override_makes_every_reranked_mention_nil(tiny, vocab_index):
    strict = _nlp(vocab_index, rerank=True, reranker_dir=str(tiny.int8), rerank_k=RERANK_K, nil_threshold=1.0,
                  rerank_skip_exact=True)
    doc = strict(TEXT)
    for span in doc.ents:
        if span.text.lower() == "recurrent falls":
            assert span._.concept == "SITE:LP001"  # decisive: linked without a probability
        else:
            assert span._.concept is None and span._.candidates
    # without the shortcut (the default) the decisive mention is reranked too, and abstains like the others
    every = _nlp(vocab_index, rerank=True, reranker_dir=str(tiny.int8), rerank_k=RERANK_K, nil_threshold=1.0)
    assert all(span._.concept is None and span._.candidates for span in every(TEXT).ents)


def test_threshold_must_hold_on_every_corpus_not_only_pooled():
    # corpus 0 (large): abstaining below 0.5 is right 95% of the time; corpus 1 (small): only half the time
    rng = np.random.default_rng(3)
    best0, nil0 = rng.uniform(0, 0.5, 200), rng.uniform(size=200) < 0.95
    best1, nil1 = np.r_[np.linspace(0.05, 0.2, 10), np.linspace(0.3, 0.5, 10)], np.r_[[True] * 10, [False] * 10]
    best, nil = np.r_[best0, best1], np.r_[nil0, nil1]
    pooled = choose_threshold(best, nil, 0.9)
    per_corpus = choose_threshold(best, nil, 0.9, groups=np.r_[np.zeros(200), np.ones(20)])
    assert per_corpus["reached"] and per_corpus["lowest_group_precision"] >= 0.9
    assert per_corpus["threshold"] < pooled["threshold"]  # stricter: stops before corpus 1's right mentions
    small = nil_precision_recall(best1, nil1, per_corpus["threshold"])
    assert small[0] >= 0.9
