"""Text <-> sub-word tokens <-> BIO tags <-> character spans, with overlapping windows.

Torch-free: the ONNX run time uses it, and so does training, so both cut, align and decode the
same way. All offsets are Python character offsets (code points) into the ORIGINAL text: the
``tokenizers`` library tracks its normalizer's edits (lower-casing, accent stripping, CRLF and
control-character clean-up), so a token's offsets never point into the normalized string.

Boundary rules, chosen so that spans are exact and never carry whitespace:
- tokens never contain whitespace (the BERT pre-tokenizer splits on it), so a span that runs from
  the start of its first token to the end of its last token has no leading/trailing blanks;
- spans are decoded per *word* (a pre-tokenizer word: a run of letters/digits or one punctuation
  mark): the continuation pieces of a word (``##ing``) follow the tag of its first piece, so a
  span never ends inside a word;
- for training, a gold span that starts or ends inside a token is widened to the tokens it
  touches (0.1 % of the training mentions; they are then counted as misses at evaluation).
"""
from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tokenizers import Tokenizer

from .labels import Span, begin_id, inside_id, is_begin, resolve_nesting, tag_label

#: Label id that torch's cross-entropy (and our loss) ignores: [CLS], [SEP], padding.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class TokenizedText:
    """Sub-word tokens of one text, without special tokens."""

    ids: list[int]
    #: (start, end) character offsets of each token in the original text.
    offsets: list[tuple[int, int]]
    #: True where a token is the first piece of a pre-tokenizer word.
    word_starts: list[bool]

    def __len__(self) -> int:
        return len(self.ids)


@dataclass(frozen=True)
class SpecialIds:
    """The ids that frame and pad a window."""

    cls: int
    sep: int
    pad: int


def load_tokenizer(path: Path) -> Tokenizer:
    """Load a ``tokenizer.json`` with truncation and padding off: windowing is done here.

    The shipped MiniLM tokenizer truncates at 128 tokens and pads to 128; keeping either would
    silently drop the end of long notes.
    """
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    return tokenizer


def special_ids(tokenizer: Tokenizer) -> SpecialIds:
    """[CLS]/[SEP]/[PAD] ids of a BERT-style vocabulary."""
    ids = [tokenizer.token_to_id(t) for t in ("[CLS]", "[SEP]", "[PAD]")]
    if None in ids:
        raise ValueError("tokenizer has no [CLS]/[SEP]/[PAD] token: not a BERT WordPiece vocabulary")
    return SpecialIds(*ids)


def tokenize_texts(tokenizer: Tokenizer, texts: Sequence[str]) -> list[TokenizedText]:
    """Tokenize many texts at once (the Rust side runs them in parallel)."""
    out = []
    for enc in tokenizer.encode_batch(list(texts), add_special_tokens=False):
        word_ids = enc.word_ids
        starts = [i == 0 or w != word_ids[i - 1] for i, w in enumerate(word_ids)]
        out.append(TokenizedText(list(enc.ids), [tuple(o) for o in enc.offsets], starts))
    return out


def window_bounds(n_tokens: int, max_len: int, stride: int) -> list[tuple[int, int]]:
    """Token ranges ``[start, end)`` of the windows that cover a text of ``n_tokens`` tokens.

    ``max_len`` counts [CLS] and [SEP], so a window holds ``max_len - 2`` text tokens;
    ``stride`` is the number of tokens two neighbouring windows share (the HF meaning), which
    gives every token near a window border context from the neighbouring window. The last
    window may be shorter. An empty text has no window.
    """
    size = max_len - 2
    step = size - stride
    if step <= 0:
        raise ValueError(f"stride {stride} must be smaller than max_len - 2 = {size}")
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < n_tokens:
        end = min(start + size, n_tokens)
        bounds.append((start, end))
        if end == n_tokens:
            break
        start += step
    return bounds


def window_ids(tokens: TokenizedText, bounds: tuple[int, int], special: SpecialIds) -> list[int]:
    """Model input ids of one window: ``[CLS] tokens[start:end] [SEP]``."""
    start, end = bounds
    return [special.cls, *tokens.ids[start:end], special.sep]


def spans_to_tags(tokens: TokenizedText, spans: Sequence[Span]) -> list[int]:
    """BIO tag ids per token for gold character spans (training targets).

    Nested and same-span annotations are first flattened with ``resolve_nesting``. A span takes
    every token it overlaps (so a span ending inside a token is widened to that token); a token
    already taken by an earlier span stays with it, and a span left with no token is dropped.
    """
    tags = [0] * len(tokens)
    token_starts = [s for s, _ in tokens.offsets]
    for start, end, label in resolve_nesting(spans):
        # first token whose end is past ``start``: tokens are in text order, so bisect on starts
        i = max(bisect_right(token_starts, start) - 1, 0)
        while i < len(tokens) and tokens.offsets[i][1] <= start:
            i += 1
        first = True
        while i < len(tokens) and tokens.offsets[i][0] < end:
            if tags[i] == 0:
                tags[i] = begin_id(label) if first else inside_id(label)
                first = False
            i += 1
    return tags


def training_windows(
    tokens: TokenizedText, tags: Sequence[int], max_len: int, stride: int, special: SpecialIds
) -> list[tuple[list[int], list[int]]]:
    """(input ids, label ids) per window; special tokens get ``IGNORE_INDEX``.

    A window that starts inside an entity begins with an I- tag, as the decoder expects to see
    at run time; it is not rewritten to B-.
    """
    out = []
    for start, end in window_bounds(len(tokens), max_len, stride):
        labels = [IGNORE_INDEX, *tags[start:end], IGNORE_INDEX]
        out.append((window_ids(tokens, (start, end), special), labels))
    return out


def merge_windows(
    n_tokens: int, bounds: Sequence[tuple[int, int]], window_tags: Sequence[Sequence[int]]
) -> list[int]:
    """One tag per token from overlapping window predictions.

    Each token takes the prediction of the window in which it has the most context, measured as
    the smaller of its distances to the window's two edges; an edge that is also the edge of the
    text costs no context, so it counts as unlimited.
    """
    tags = [0] * n_tokens
    best = [-1] * n_tokens
    for (start, end), pred in zip(bounds, window_tags):
        for i in range(start, end):
            left = n_tokens if start == 0 else i - start
            right = n_tokens if end == n_tokens else end - 1 - i
            context = min(left, right)
            if context > best[i]:
                best[i] = context
                tags[i] = int(pred[i - start])
    return tags


def decode_spans(tokens: TokenizedText, tags: Sequence[int]) -> list[Span]:
    """Character spans from per-token BIO tag ids.

    Decoded per word: a word's first piece decides, its continuation pieces extend the span.
    Ill-formed sequences are repaired the usual way: an I-X after O or after another label opens
    a new X span (the model often starts a span with I- right after a window border).
    """
    spans: list[Span] = []
    current: list | None = None  # [start, end, label] of the open span
    for i, tag in enumerate(tags):
        start, end = tokens.offsets[i]
        if not tokens.word_starts[i]:
            if current is not None:
                current[1] = end
            continue
        label = tag_label(tag)
        if label is None:
            if current is not None:
                spans.append(tuple(current))
            current = None
        elif current is None or is_begin(tag) or current[2] != label:
            if current is not None:
                spans.append(tuple(current))
            current = [start, end, label]
        else:
            current[1] = end
    if current is not None:
        spans.append(tuple(current))
    return spans
