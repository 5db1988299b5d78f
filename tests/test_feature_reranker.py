"""The feature reranker: its features, a tiny model trained in seconds by the real command, the ONNX trees against
the sklearn model they were exported from, and the shipped artifact the linker reranks with by default."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from clin_linker.models.artifacts import ARTIFACTS_DIR
from clin_linker.models.encoder_runtime import OnnxSentenceEncoder
from clin_linker.models.reranker.features import (
    FEATURE_NAMES, CandidateView, TextVectors, group_features,
)
from clin_linker.models.reranker.inputs import MentionContext, mention_context

COL = {name: i for i, name in enumerate(FEATURE_NAMES)}


@pytest.fixture(scope="module")
def vectors() -> TextVectors:
    return TextVectors(OnnxSentenceEncoder(ARTIFACTS_DIR / "encoder_minilm_int8", threads=2))


def test_features_read_domain_short_forms_spelling_and_context(vectors):
    text = "MRI showed demyelinating plaques; the sclerosis was relapsing. MS was treated with interferon."
    start = text.index("MS")
    ctx = mention_context(text, start, start + 2)
    cands = [CandidateView("Mitral Valve Stenosis", 0.71, False, "Condition"),
             CandidateView("Multiple Sclerosis", 0.69, False, "Condition"),
             CandidateView("Morphine Sulfate", 0.66, False, "Drug")]
    f = group_features(ctx, "CONDITION", cands, vectors)
    assert f.shape == (3, len(FEATURE_NAMES)) and f.dtype == np.float32
    assert f[:, COL["rank"]].tolist() == [0, 1, 2]
    assert f[:, COL["gap_to_best"]] == pytest.approx([0.0, 0.02, 0.05], abs=1e-6)
    assert f[:, COL["short_form"]].tolist() == [1, 1, 1]
    # initials: M(ultiple) S(clerosis) and M(orphine) S(ulfate) spell "MS"; M(itral) V(alve) S(tenosis) does not
    assert f[:, COL["initials_match"]].tolist() == [0, 1, 1]
    # the context repeats "sclerosis" (not the mention itself): only the name that says it gets the count
    assert f[:, COL["context_words_in_name"]].tolist() == [0, 1, 0]
    # a CONDITION mention agrees with condition concepts, not with a drug
    assert f[:, COL["domain_agrees"]].tolist() == [1, 1, 0] and f[:, COL["domain_known"]].tolist() == [1, 1, 1]
    assert f[:, COL["agreeing_candidates"]].tolist() == [2, 2, 2]
    # the general encoder reads the window: the name the context talks about is the nearest to it
    assert int(np.argmin(f[:, COL["context_rank"]])) == 1

    drug = group_features(ctx, "DRUG", cands, vectors)
    assert drug[:, COL["domain_agrees"]].tolist() == [0, 0, 1]
    unknown = group_features(ctx, "", cands, vectors)
    assert unknown[:, COL["domain_known"]].tolist() == [0, 0, 0]


def test_features_of_spelling_and_an_empty_list(vectors):
    ctx = MentionContext.bare("type 2 diabetes")
    f = group_features(ctx, "CONDITION", [CandidateView("Type 2 diabetes mellitus", 0.9, False, ""),
                                          CandidateView("Diabetes", 0.8, True, "")], vectors)
    assert f[0, COL["mention_in_name"]] == 1 and f[0, COL["name_in_mention"]] == 0
    assert f[1, COL["name_in_mention"]] == 1 and f[1, COL["exact"]] == 1
    assert f[0, COL["word_jaccard"]] == pytest.approx(3 / 4) and f[0, COL["short_form"]] == 0
    assert 0 < f[1, COL["char3_jaccard"]] < f[0, COL["char3_jaccard"]] <= 1
    assert group_features(ctx, "CONDITION", [], vectors).shape == (0, len(FEATURE_NAMES))


def test_text_vectors_are_batch_free_and_memoised(vectors):
    alone = vectors("acute myocardial infarction")
    encoder = vectors.encoder
    batched = encoder.encode(["acute myocardial infarction", "a much longer text that pads the batch " * 3])[0]
    assert np.linalg.norm(alone) == pytest.approx(1.0, abs=1e-5)
    assert vectors("acute myocardial infarction") is alone  # memoised: the same vector object
    assert np.dot(alone, batched / np.linalg.norm(batched)) > 0.98  # the same text, embedded alone or not


def test_onnx_trees_match_the_sklearn_model(tmp_path):
    pytest.importorskip("sklearn", reason="fitting trees needs the [train] extra")
    from clin_linker.models.trees import export_trees, fit_trees
    from clin_linker.models.reranker.feature_runtime import KIND, OnnxFeatureReranker

    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, len(FEATURE_NAMES))).astype(np.float32)
    y = (x[:, 0] + 0.5 * x[:, 5] - x[:, 2] + rng.normal(scale=0.3, size=600) > 0).astype(int)
    model = fit_trees(x, y, {"max_iter": 40, "max_leaf_nodes": 15, "random_state": 0, "early_stopping": False})
    meta = export_trees(model, tmp_path, FEATURE_NAMES, {
        "model_id": "random-trees", "kind": KIND,
        "context_encoder": {"artifact": "encoder_minilm_int8", "sha256": ""}})
    assert (tmp_path / "model.onnx").exists() and meta["feature_names"] == list(FEATURE_NAMES)
    scorer = OnnxFeatureReranker(tmp_path, threads=1)
    p = np.clip(model.predict_proba(x)[:, 1], 1e-12, 1 - 1e-12)
    assert scorer.logits(x) == pytest.approx(np.log(p / (1 - p)), abs=1e-3)
    # each row is scored on its own: a row alone gets the score it gets among 600
    assert scorer.logits(x[7:8])[0] == pytest.approx(scorer.logits(x)[7], abs=1e-6)


def test_an_artifact_of_other_features_is_refused(tmp_path):
    from clin_linker.models.reranker.feature_runtime import KIND, OnnxFeatureReranker

    (tmp_path / "model.onnx").write_bytes(b"")
    (tmp_path / "artifact.json").write_text(json.dumps({
        "model_id": "old", "kind": KIND, "onnx_file": "model.onnx", "sha256": "0" * 64,
        "feature_names": ["cosine", "rank"], "context_encoder": {"artifact": "encoder_minilm_int8"}}))
    with pytest.raises(ValueError, match="retrain it with `clin-linker train feature-reranker`"):
        OnnxFeatureReranker(tmp_path)


# --- a tiny model, trained in seconds by the real command ------------------------------------------------------

NAMES = {
    "D1": ["Multiple Sclerosis", "Disseminated Sclerosis"],
    "D2": ["Mitral Valve Stenosis", "Mitral Stenosis"],
    "D3": ["Myocardial Infarction", "Heart Attack"],
    "D4": ["Hypertension", "High Blood Pressure"],
    "D5": ["Morphine", "Morphine Sulfate"],
    "D6": ["Diabetes Mellitus, Type 2", "Type 2 Diabetes"],
    "D7": ["Chronic Renal Failure", "Chronic Kidney Failure"],
    "D8": ["Dopamine"],
}
DOCS = [
    ("Demyelinating plaques on MRI; MS relapsed.", "MS", "D1"),
    ("A loud diastolic murmur from MS of the mitral valve.", "MS", "D2"),
    ("He had an MI with ST elevation in the anterior leads.", "MI", "D3"),
    ("Blood pressure stays raised: HTN on two drugs.", "HTN", "D4"),
    ("Given MS 10 mg for pain after surgery.", "MS", "D5"),
    ("Sugar control poor in his diabetes type two.", "diabetes type two", "D6"),
    ("Dialysis for CRF since 2019, kidneys small.", "CRF", "D7"),
    ("DA infusion for hypotension in the ICU.", "DA", "D8"),
    ("Heart muscle infarct with chest pain.", "Heart muscle infarct", "D3"),
    ("Raised pressure in arteries, hypertensive.", "Raised pressure in arteries", "D4"),
]


def _tiny_corpus(root: Path) -> tuple[Path, Path]:
    names = root / "names.tsv"
    names.write_text("concept_id\tname\n" + "".join(f"{cid}\t{n}\n" for cid, ns in NAMES.items() for n in ns))
    docs = root / "docs.jsonl"
    with docs.open("w") as fh:
        for i, (text, mention, cid) in enumerate(DOCS):
            start = text.index(mention)
            label = "DRUG" if cid in ("D5", "D8") else "CONDITION"
            fh.write(json.dumps({"doc_id": str(i), "text": text, "entities": [
                {"start": start, "end": start + len(mention), "label": label, "text": mention,
                 "concept_ids": [cid]}]}) + "\n")
    return docs, names


def test_train_feature_reranker_command_writes_a_working_artifact(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="training needs the [train] extra")
    from clin_linker.beam_jobs.cli import main
    from clin_linker.models.reranker.runtime import load_reranker_model

    docs, names = _tiny_corpus(tmp_path)
    out = tmp_path / "rr"
    assert main(["train", "feature-reranker", "--corpus", str(docs), str(names), "--out", str(out),
                 "--k", "4", "--threads", "2", "--model-id", "tiny-trees"]) == 0
    meta = json.loads((out / "artifact.json").read_text())
    assert meta["kind"] == "context-feature-reranker" and meta["feature_names"] == list(FEATURE_NAMES)
    summary = meta["training"]["corpora"][0]
    assert summary["mentions"] == len(DOCS) and summary["used"] + summary["decisive"] <= len(DOCS)
    assert meta["training"]["positives"] >= 1 and meta["training"]["rows"] > meta["training"]["positives"]
    scorer = load_reranker_model(out, threads=1)
    assert scorer.model_id.startswith("tiny-trees@")
    ctx = mention_context(DOCS[0][0], DOCS[0][0].index("MS"), DOCS[0][0].index("MS") + 2)
    cands = [CandidateView("Mitral Stenosis", 0.7, False, ""), CandidateView("Multiple Sclerosis", 0.6, False, "")]
    (scores,) = scorer.score_mentions([ctx], ["CONDITION"], [cands])
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_training_refuses_pairs_without_context(tmp_path, capsys):
    pytest.importorskip("sklearn", reason="training needs the [train] extra")
    from clin_linker.beam_jobs.cli import main

    _, names = _tiny_corpus(tmp_path)
    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"mention": "MS", "concept_ids": ["D1"], "doc_id": "1", "label": "CONDITION"}) + "\n")
    assert main(["train", "feature-reranker", "--corpus", str(pairs), str(names), "--out", str(tmp_path / "rr")]) == 2
    assert "learns from annotated documents" in capsys.readouterr().err
    assert not (tmp_path / "rr").exists()


# --- the shipped artifact ----------------------------------------------------------------------------------------


def test_the_shipped_reranker_loads_and_scores_each_mention_on_its_own():
    from clin_linker.models.reranker.calibration import NilCalibrator
    from clin_linker.pipeline.reranking import DEFAULT_RERANKER_DIR, resolve_reranker_dir
    from clin_linker.models.reranker.runtime import load_reranker_model

    assert resolve_reranker_dir("") == DEFAULT_RERANKER_DIR
    scorer = load_reranker_model(DEFAULT_RERANKER_DIR, threads=1)
    calibration = NilCalibrator.load(DEFAULT_RERANKER_DIR)
    assert calibration.meta["fitted"] and 0 < calibration.threshold < 1
    assert calibration.features == ("logit", "margin", "best_cosine")
    text = "Dopamine (DA) was started. DA levels in the striatum fell."
    contexts = [mention_context(text, 14, 16), mention_context(text, 27, 29)]
    cands = [[CandidateView("Dopamine", 0.55, False, "Drug"), CandidateView("Ductus Arteriosus", 0.6, False,
                                                                            "Condition")]] * 2
    together = scorer.score_mentions(contexts, ["DRUG", "DRUG"], cands)
    alone = scorer.score_mentions(contexts[1:], ["DRUG"], cands[1:])
    assert together[1].tolist() == alone[0].tolist()
    # a drug mention whose context spells the drug out: the drug concept outscores the disease it collides with
    assert together[0][0] > together[0][1]


def test_the_shipped_reranker_is_opt_in_and_reranks_exact_names_too():
    import spacy

    from clin_linker.pipeline import linker_component  # noqa: F401  (registers the factory)

    nlp = spacy.blank("en")
    nlp.add_pipe("clin_linker", config={"detector": "none"})
    config = nlp.get_pipe_config("clin_linker")
    # off until it earns its place on every acceptance line (docs/reranking.md); "" = the shipped artifact
    assert config["rerank"] is False and config["reranker_dir"] == "" and config["rerank_skip_exact"] is False


def test_short_forms_and_their_plurals():
    from clin_linker.models.reranker.features import is_short_form, short_form_key

    assert [is_short_form(m) for m in ("MS", "CRF", "5-HT", "NSAIDs", "Ms", "diabetes", "ABCDEFGH")] == \
        [True, True, True, True, False, False, False]
    assert short_form_key("NSAIDs") == "nsaid" and short_form_key("MS") == "ms" and short_form_key("ALS") == "als"


def test_coding_commands_rerank_as_their_coder_was_trained(tmp_path):
    from clin_linker.pipeline.coder import coding_reranker_dir
    from clin_linker.pipeline.reranking import DEFAULT_RERANKER_DIR

    # the shipped coder was trained on retrieval alone: no flag, no reranking
    assert coding_reranker_dir(None, False) is None
    trained = tmp_path / "coder"
    trained.mkdir()
    (trained / "artifact.json").write_text(json.dumps({"reranker": "clin-reranker-context-trees@2dd82839"}))
    assert coding_reranker_dir(None, False, trained) == str(DEFAULT_RERANKER_DIR)
    assert coding_reranker_dir(None, False, trained, zero_shot=True) is None
    assert coding_reranker_dir(None, False, trained, follow_coder=False) is None
    assert coding_reranker_dir(None, True, trained) is None  # --no-rerank wins
    assert coding_reranker_dir("", False) == str(DEFAULT_RERANKER_DIR)  # --rerank: the shipped one
