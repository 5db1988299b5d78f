"""MODEL_CARD.md of the NER artifact, rendered from the training summary and the dev scores.

Generated, not hand-edited, so the numbers in the card are the ones measured at export.
"""
from __future__ import annotations

from .labels import DROPPED_LABELS, LABELS
from .metrics import format_table


def _best_text(best: dict) -> str:
    """"epoch 18" or "mean of epochs 21-24" (weight averaging, ``train_ner(average_last=...)``)."""
    if best.get("averaged_epochs"):
        return f"mean of epochs {best['averaged_epochs'][0]}-{best['averaged_epochs'][-1]}"
    return f"epoch {best['epoch']}"


def _history_table(summary: dict) -> str:
    corpora = summary["settings"]["dev"]
    lines = ["| epoch | train loss | select score | " + " | ".join(f"{c} F1" for c in corpora) + " |",
             "|---:|---:|---:|" + "---:|" * len(corpora)]
    averaged_best = bool(summary["best"].get("averaged_epochs"))
    for h in summary["history"]:
        best = " **best**" if h["epoch"] == summary["best"]["epoch"] and not averaged_best else ""
        cells = " | ".join(f"{h['dev'][c]['micro']['f1']:.4f}" for c in corpora)
        lines.append(f"| {h['epoch']}{best} | {h['loss']:.4f} | {h['score']:.4f} | {cells} |")
    if summary.get("averaged"):
        a = summary["averaged"]
        best = " **best**" if averaged_best else ""
        cells = " | ".join(f"{a['dev'][c]['micro']['f1']:.4f}" for c in corpora)
        lines.append(f"| mean of weights {a['epochs'][0]}-{a['epochs'][-1]}{best} | – | {a['score']:.4f} | {cells} |")
    return "\n".join(lines)


def _oversample_text(s: dict) -> str:
    o = s.get("oversample") or {}
    return ", ".join(f"{c} ×{f}" for c, f in o.items()) or "none"


def _delta_table(reports: dict[str, dict[str, dict]]) -> str:
    lines = ["| dev file | fp32 micro F1 | int8 micro F1 | int8 − fp32 (points) |", "|---|---:|---:|---:|"]
    for corpus, r8 in reports["int8"].items():
        f8, f32 = r8["micro"]["f1"], reports["fp32"][corpus]["micro"]["f1"]
        lines.append(f"| {corpus} | {f32:.4f} | {f8:.4f} | {100 * (f8 - f32):+.2f} |")
    return "\n".join(lines)


def _sweep_table(sweep: list[dict], chosen: dict) -> str:
    lines = ["| lr | batch | epochs | oversampled | weight mean of last | epochs run | best checkpoint | select score | |",
             "|---:|---:|---:|---|---:|---:|---|---:|---|"]
    for run in sweep:
        s, best = run["settings"], run["best"]
        mark = "**shipped**" if (s, best) == (chosen["settings"], chosen["best"]) else ""
        avg = s.get("average_last") or "–"
        lines.append(f"| {s['lr']} | {s['batch_size']} | {s['epochs']} | {_oversample_text(s)} | {avg} | "
                     f"{len(run['history'])} | {_best_text(best)} | {best['score']:.4f} | {mark} |")
    return "\n".join(lines)


def render_model_card(
    meta: dict,
    summary: dict,
    reports: dict[str, dict[str, dict]],
    onnx_bytes: int,
    sweep: list[dict] | None = None,
    notes: str = "",
) -> str:
    """The card text. ``reports`` is ``{"int8"|"fp32": {corpus: evaluate_file report}}``;
    ``sweep`` the summaries of all runs compared on dev (the shipped one included); ``notes``
    free markdown on how this particular artifact was produced."""
    s = summary["settings"]
    runs = (
        f"\nRuns compared on dev (same data and seed; the best select score is shipped):\n\n"
        f"{_sweep_table(sweep, summary)}\n"
        if sweep
        else ""
    )
    provenance = f"\n## How this artifact was produced\n\n{notes.strip()}\n" if notes.strip() else ""
    train_rows = "\n".join(
        f"| {c} | {t['docs']} | {t['windows']} | ×{t.get('oversample', 1)} | {', '.join(t['annotated'])} |"
        for c, t in summary["train"].items()
    )
    flags = "".join(
        [f" --oversample {' '.join(f'{c}={f}' for c, f in s['oversample'].items())}" if s.get("oversample") else "",
         f" --average-last {s['average_last']}" if s.get("average_last") else ""]
    )
    extras = ""
    if s.get("oversample"):
        extras += (f"\n- Oversampling: every epoch repeats the training windows of {_oversample_text(s)} "
                   f"({summary.get('steps_per_epoch', '?')} steps per epoch).")
    if s.get("average_last"):
        extras += (f"\n- Weight averaging: after training, the element-wise mean of the weights of the last "
                   f"{s['average_last']} epochs is scored on dev as one more checkpoint candidate.")
    if summary.get("stopped_after_epoch"):
        extras += (f"\n- Stopped by the time cap after epoch {summary['stopped_after_epoch']} of {s['epochs']} "
                   f"(the learning rate had not decayed to 0).")
    scored = "\n".join(f"- {c}: {', '.join(r['scored_labels'])}" for c, r in reports["int8"].items())
    return f"""# {meta['model_id']} — clinical NER, OMOP-domain labels (ONNX int8)

Token-classification model that finds mentions of **{', '.join(LABELS)}** in clinical and
biomedical text. It runs on CPU with onnxruntime + tokenizers (`clin_linker.models.ner.runtime.OnnxNerTagger`).

| | |
|---|---|
| file | `{meta['onnx_file']}` ({onnx_bytes / 1e6:.1f} MB), sha256 `{meta['sha256']}` |
| base | {meta['base_model']}: 6-layer uncased BERT, hidden 384, Apache-2.0 |
| head | linear layer over the last hidden state, 13 BIO tags |
| quantization | {meta['quantization']} (`models/onnx_export.quantize_int8`) |
| input | `input_ids`, `attention_mask`, `token_type_ids` (int64, dynamic batch × sequence); output `logits` |
| windows | {meta['max_len']} tokens including [CLS]/[SEP], neighbours overlap by {meta['stride']} tokens |

## Labels

OMOP domains, mapped from the corpora's own types as in `data/README.md` §3:
CONDITION (NCBI all types, BC5CDR Disease, Chia Condition, MACCROBAT Disease_disorder + Sign_symptom),
DRUG (BC5CDR Chemical, Chia Drug, MACCROBAT Medication), PROCEDURE (Chia Procedure, MACCROBAT
Therapeutic_procedure and Diagnostic_procedure without a lab value), MEASUREMENT (Chia Measurement,
MACCROBAT Diagnostic_procedure modified by a Lab_value — a heuristic with some noise), OBSERVATION
(Chia Observation, MACCROBAT History/Family_history/Occupation), DEVICE (Chia Device only).
The corpus labels {', '.join(DROPPED_LABELS)} are not learned (too rare, or attributes rather than concepts).

**Tagging scheme: BIO**, one softmax per sub-word token. BIO has 13 classes against BILOU's 25, so the
rare labels (DEVICE: ~300 training mentions) get twice the examples per class; BILOU's extra boundary
classes pay off mainly with a CRF, which we do not use. Ill-formed sequences are repaired at decoding
(an I-X after O opens an X span). Spans are decoded per word (continuation pieces follow the first
piece), so a span never starts or ends inside a word and never includes whitespace; offsets are
character offsets into the original text (CRLF, accents and other characters the uncased
normalizer rewrites included).

**Nesting rule** (training targets): the corpora keep nested and same-span annotations (Chia,
MACCROBAT). They are flattened by keeping the longest span; of two labels on exactly the same span,
the one first in {', '.join(LABELS)} wins (CONDITION before OBSERVATION: a disease also tagged
History stays a condition, history is a ConText modifier downstream). A gold span that starts or ends
inside a sub-word token (0.1 % of mentions) is widened to whole tokens for training.

## Training data

All four corpora of `../shared/data/ner` (train splits), together:

| corpus | docs | windows | sampled per epoch | labels it annotates |
|---|---:|---:|---:|---|
{train_rows}

Provenance and licences: NCBI-disease (public domain, Doğan et al. 2014), BC5CDR (public domain,
Li et al. 2016), Chia (CC BY 4.0, Kury et al. 2020), MACCROBAT 2020 (CC BY 4.0, Caufield et al. 2019);
details in `data/README.md`. Test splits are held out and were never seen.

**Partially annotated corpora.** NCBI marks only diseases, BC5CDR only diseases and chemicals,
MACCROBAT has no devices. The loss is therefore `-log P(tag ∈ allowed)`: for a token tagged O in a
corpus, the allowed set is O plus B-/I- of every label that corpus never annotates (table above), so
an unannotated drug in an NCBI abstract is not taught as O. For entity tokens and for the fully
annotated Chia it is plain cross-entropy.

## Training procedure

- Optimizer AdamW (weight decay {s['weight_decay']}, none on bias/LayerNorm), lr {s['lr']}, linear warm-up
  over {s['warmup']:.0%} of the steps then linear decay to 0, gradient clipping 1.0, batch {s['batch_size']}
  windows (length-bucketed shuffle), {s['epochs']} epochs, seed {s['seed']} (python, numpy, torch).{extras}
- Hardware: {s['device_name']} ({s['device']}), torch {s['torch']}, bf16 autocast on CUDA;
  {summary['seconds']:.0f} s in total including the per-epoch dev evaluation.
- Checkpoint selection: the candidate (each epoch{', and the weight mean' if s.get('average_last') else ''}) with the best mean micro F1 on the
  NCBI-disease and BC5CDR dev sets ({_best_text(summary['best'])}, score {summary['best']['score']:.4f}).
- Reproduce: `python -m clin_linker.models.ner.train --data DATA/ner/{{ncbi_disease,bc5cdr,chia,maccrobat}}
  --dev DATA/ner/{{...}} --out OUT --epochs {s['epochs']} --lr {s['lr']} --batch-size {s['batch_size']}
  --max-len {s['max_len']} --stride {s['stride']} --seed {s['seed']}{flags}`, then
  `python -m clin_linker.models.ner.export --checkpoint OUT/best --dev DATA/ner/{{...}} --summary OUT/summary.json`.

{runs}
Per epoch of the shipped run (torch model, dev micro F1 as scored below):

{_history_table(summary)}

## Dev results (strict span match)

Scored with `clin_linker.models.ner.metrics.evaluate_file`: a prediction counts only if start, end
and label all match. Each file is scored on the labels it annotates (a corpus that never marks a type
cannot judge predictions of it):
{scored}

Gold spans are all annotations with our labels, nested ones included; a flat tagger finds at most one
of two nested spans, which caps recall on Chia and MACCROBAT. F1 per label with gold support in brackets.

**int8 ONNX (shipped)**

{format_table(reports['int8'])}

**fp32 ONNX (same weights, not shipped)**

{format_table(reports['fp32'])}

**int8 vs fp32**

{_delta_table(reports)}
{provenance}
## Limitations

- The base model is a general-domain sentence encoder; no biomedical pre-training was available offline.
- Three of the four corpora are PubMed abstracts or case reports and one is trial eligibility criteria:
  real clinical notes (abbreviations, templates, misspellings) are out of domain.
- Label boundaries follow the corpora, which disagree (e.g. NCBI includes modifiers such as
  "hereditary" in disease mentions, BC5CDR chemicals include non-drug compounds).
- MACCROBAT MEASUREMENT vs PROCEDURE comes from a heuristic (README §3) and is noisy; DEVICE has only
  Chia's ~300 training mentions.
- No negation, temporality or experiencer: the pipeline's ConText component adds those.
"""
