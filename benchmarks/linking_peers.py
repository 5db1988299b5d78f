"""Peer comparison for candidate retrieval (issue 4): same dev pairs, same dictionary, one run.

Systems: base all-MiniLM-L6-v2 int8 ONNX (models/encoder_minilm_int8), our SapBERT-style bi-encoder
int8 ONNX (--ours: an exported artifact directory) and fp32 (sentence-transformers in torch, the trained checkpoint),
and scispaCy's TF-IDF char-3-gram candidate generator (scispacy.candidate_generation.create_tfidf_ann_index +
CandidateGenerator over a custom scispacy.linking_utils.KnowledgeBase built from the same dictionary).

Corpora: NCBI-disease dev against CTD MEDIC names; BC5CDR dev against MEDIC + MeSH descriptor labels.
Scoring: pipeline/evaluation (composite gold ids: a hit on any counts; MEDIC alt_ids count). The ONNX systems
(base, ours int8) run through the shipped candidate generator (``evaluation.linking``, exact search); the peers that
cannot (TF-IDF; the fp32 torch model, which is not an ONNX artifact) give ranked concept lists scored by the same
``evaluation.metrics.score_orders``: TF-IDF by each concept's best alias similarity (as scispaCy's linker does),
fp32 by exact cosine over every name (``models.biencoder.dictionary.DictionaryIndex``).

    .venv/bin/python benchmarks/linking_peers.py --fp32 .devdata/biencoder/run1/model_final [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

from clin_linker.models.encoder_runtime import OnnxSentenceEncoder  # noqa: E402
from clin_linker.models.biencoder.dictionary import (  # noqa: E402
    Dictionary, DictionaryIndex, encode_normalised, load_names_tsv, read_pairs,
)
from clin_linker.pipeline.evaluation.linking import (  # noqa: E402
    add_train_mentions, dictionary_linker, evaluate_linking, prepare_pairs,
)
from clin_linker.pipeline.evaluation.metrics import score_orders  # noqa: E402

CORPORA = {
    "ncbi_disease": ["ctd_medic_names.tsv"],
    "bc5cdr": ["ctd_medic_names.tsv", "mesh_descriptor_labels.tsv"],
}


class TfidfPeer:
    """scispaCy's own TF-IDF char-3-gram + nmslib HNSW candidate generator on a custom KB."""

    def __init__(self, d: Dictionary, cache_dir: Path):
        from scispacy.candidate_generation import CandidateGenerator, create_tfidf_ann_index
        from scispacy.linking_utils import Entity, KnowledgeBase

        by_concept: dict[int, list[str]] = {}
        for name, c in zip(d.names, d.name_concept):
            by_concept.setdefault(c, []).append(name)
        entities = [Entity(concept_id=d.concepts[c], canonical_name=names[0], aliases=names)
                    for c, names in sorted(by_concept.items())]
        kb = KnowledgeBase(entities)
        cache_dir.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        aliases, vectorizer, ann = create_tfidf_ann_index(str(cache_dir), kb)
        self.build_s = time.perf_counter() - t0
        # a freshly built index keeps nmslib's default efSearch; scispaCy's loader sets 200: do the same so a
        # first (building) run and a cached run score identically
        ann.setQueryTimeParams({"efSearch": 200})
        self.gen = CandidateGenerator(ann_index=ann, tfidf_vectorizer=vectorizer,
                                      ann_concept_aliases_list=aliases, kb=kb)
        self.d = d
        self.index_of = {cid: i for i, cid in enumerate(d.concepts)}

    def search(self, mentions: list[str], k: int, neighbours: int = 100) -> list[list[int]]:
        out = []
        for cands in self.gen(mentions, neighbours):
            ranked = sorted(cands, key=lambda c: (-max(c.similarities), c.concept_id))
            out.append([self.index_of[c.concept_id] for c in ranked[:k]])
        return out


def score_ranked(d: Dictionary, pairs: list[dict], search, k: int = 25, expand_abbreviations: bool = False) -> dict:
    """The evaluation's metric of a peer's ranked concept lists: ``search(mentions, k)`` -> concept positions.

    ``expand_abbreviations``: query short forms by their same-document long form first, as ``eval linking`` does
    for the shipped systems, so both sides of a protocol row see the same queries.
    """
    pairs = prepare_pairs(pairs, expand_abbreviations)
    mentions = sorted({p["mention"] for p in pairs})
    t0 = time.perf_counter()
    ranked = dict(zip(mentions, search(mentions, k)))
    elapsed = time.perf_counter() - t0
    r = score_orders(pairs, d, lambda p: ranked[p["mention"]], k)
    r["ms_per_mention"] = 1000.0 * elapsed / len(mentions)
    return r


def exact_search(index: DictionaryIndex, encoder):
    """Ranked concept lists of a torch encoder by exact cosine over every name (the fp32 peer)."""
    def search(mentions: list[str], k: int) -> list[list[int]]:
        top, _ = index.search(encode_normalised(encoder, mentions), k)
        return [list(row) for row in top]

    return search


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--split", default="dev")
    ap.add_argument("--base", type=Path, default=ROOT / "models" / "encoder_minilm_int8")
    ap.add_argument("--ours", type=Path, required=True, help="our exported bi-encoder artifact directory")
    ap.add_argument("--fp32", type=Path, default=None, help="trained sentence-transformers dir (fp32 row)")
    ap.add_argument("--systems", default="base,ours-int8,ours-fp32,tfidf",
                    help="comma list of base, ours-int8, ours-fp32, tfidf, tfidf-train (TF-IDF on the dictionary "
                         "+ train mentions: a new scispaCy index, 6-40 min on 2 cores)")
    ap.add_argument("--corpora", default="ncbi_disease,bc5cdr")
    ap.add_argument("--with-train-mentions", action="store_true",
                    help="extra rows for ours int8: + train mentions in the dictionary, and + abbreviations too")
    ap.add_argument("--tfidf-cache", type=Path, default=ROOT / ".devdata" / "biencoder" / "tfidf")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    a = ap.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))

    systems = a.systems.split(",")
    corpora = a.corpora.split(",")
    encoders: dict[str, OnnxSentenceEncoder] = {}
    if "base" in systems:
        encoders["base MiniLM int8"] = OnnxSentenceEncoder(a.base, threads=a.threads)
    if "ours-int8" in systems:
        encoders["ours int8"] = OnnxSentenceEncoder(a.ours, threads=a.threads)
    fp32 = None
    if "ours-fp32" in systems and a.fp32:
        import torch
        from sentence_transformers import SentenceTransformer

        from clin_linker.models.biencoder.train import STEncoder

        torch.set_num_threads(a.threads)
        st = SentenceTransformer(str(a.fp32), device="cpu")
        st.max_seq_length = 64
        fp32 = STEncoder(st)

    dictionaries = {c: load_names_tsv([a.data / "synonyms" / f for f in CORPORA[c]]) for c in corpora}
    results: dict = {}
    for name, enc in encoders.items():
        for c in corpora:
            pairs = read_pairs(a.data / "linking" / c / f"{a.split}.jsonl")
            r = evaluate_linking(pairs, dictionary_linker(dictionaries[c], enc, exact=True), k=25, return_details=True)
            results.setdefault(c, {})[name] = r
            print(f"[{c}] {name}: acc@1 {r['acc@1']:.4f} ({r['ms_per_mention']:.2f} ms/mention)", flush=True)
            if a.with_train_mentions and name == "ours int8":
                linker = dictionary_linker(add_train_mentions(dictionaries[c], a.data / "linking" / c / "train.jsonl"),
                                           enc, exact=True)
                for label, expand in (("+ train mentions in dict", False), ("+ train mentions + abbreviations", True)):
                    results[c][f"ours int8 {label}"] = evaluate_linking(
                        pairs, linker, k=25, return_details=True, expand_abbreviations=expand)
    if fp32 is not None:
        for c in corpora:
            pairs = read_pairs(a.data / "linking" / c / f"{a.split}.jsonl")
            search = exact_search(DictionaryIndex(dictionaries[c], fp32), fp32)
            results.setdefault(c, {})["ours fp32 (torch)"] = score_ranked(dictionaries[c], pairs, search)
    if "tfidf" in systems:
        for c in corpora:
            pairs = read_pairs(a.data / "linking" / c / f"{a.split}.jsonl")
            peer = TfidfPeer(dictionaries[c], a.tfidf_cache / c)
            r = score_ranked(peer.d, pairs, peer.search)
            r["build_s"] = peer.build_s
            results.setdefault(c, {})["scispaCy TF-IDF char3"] = r
            print(f"[{c}] tfidf: acc@1 {r['acc@1']:.4f}", flush=True)
    if "tfidf-train" in systems:
        for c in corpora:
            pairs = read_pairs(a.data / "linking" / c / f"{a.split}.jsonl")
            d2 = add_train_mentions(dictionaries[c], a.data / "linking" / c / "train.jsonl")
            peer = TfidfPeer(d2, a.tfidf_cache / f"{c}+train")
            for label, expand in (("+ train mentions in dict", False), ("+ train mentions + abbreviations", True)):
                r = score_ranked(peer.d, pairs, peer.search, expand_abbreviations=expand)
                r["build_s"] = peer.build_s
                results.setdefault(c, {})[f"scispaCy TF-IDF char3 {label}"] = r
                print(f"[{c}] tfidf {label}: acc@1 {r['acc@1']:.4f}", flush=True)

    print("\nComposite gold ids: a hit on any id counts; MEDIC alt_ids count as the concept; MRR over top 25.")
    for c in corpora:
        d = dictionaries[c]
        print(f"\n== {c} {a.split}  dictionary: {' + '.join(CORPORA[c])} ({len(d)} concepts, {len(d.names)} names)")
        print(f"{'system':<56}{'label':<10} acc@1  acc@5  acc@25 MRR    n      ceiling ms/mention")
        for name, r in results.get(c, {}).items():
            rows = [("all", r)] + (list(r["labels"].items()) if len(r["labels"]) > 1 else [])
            for label, s in rows:
                ms = f"{r['ms_per_mention']:.2f}" if label == "all" else ""
                print(f"{name:<56}{label:<10} {s['acc@1']:.3f}  {s['acc@5']:.3f}  {s['acc@25']:.3f}  "
                      f"{s['mrr']:.3f}  {s['n']:<6} {s['ceiling']:.3f}   {ms}")
    if a.json:
        a.json.write_text(json.dumps(results, indent=1))
    return 0


def markdown(results: dict) -> str:
    """Markdown tables of a --json result file (for model cards / notes)."""
    lines = []
    for c, systems in results.items():
        lines += [f"**{c}**", "", "| system | label | acc@1 | acc@5 | acc@25 | MRR | n | ceiling | ms/mention |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for name, r in systems.items():
            rows = [("all", r)] + (list(r["labels"].items()) if len(r["labels"]) > 1 else [])
            for label, s in rows:
                ms = f"{r['ms_per_mention']:.2f}" if label == "all" else ""
                lines.append(f"| {name} | {label} | {s['acc@1']:.3f} | {s['acc@5']:.3f} | {s['acc@25']:.3f} | "
                             f"{s['mrr']:.3f} | {s['n']} | {s['ceiling']:.3f} | {ms} |")
        lines.append("")
    return "\n".join(lines)


def _main_markdown(argv) -> int:
    merged: dict = {}
    for path in argv:
        for c, systems in json.loads(Path(path).read_text()).items():
            merged.setdefault(c, {}).update(systems)
    print(markdown(merged))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["markdown"]:  # linking_peers.py markdown RESULT.json [MORE.json ...]
        sys.exit(_main_markdown(sys.argv[2:]))
    sys.exit(main())
