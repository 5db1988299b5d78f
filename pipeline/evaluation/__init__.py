"""The one evaluation home: every ``clin-linker eval`` command and the NIL calibration fit.

- ``metrics``: the scores themselves (linking acc@k/MRR/ceiling, strict span P/R/F1, assertion flag scores);
- ``linking``: linking evaluation through the shipped linker (``NameIndex`` + ``CandidateGenerator`` +
  ``MentionReranker``), so the scores are those of what ships;
- ``nil``: the unseen-concept simulation and the NIL calibration fitted on it;
- ``coding``: document coding through the shipped pipeline and ``pipeline.coder``;
- ``cli``: the argparse of ``eval ner|context|linking|coding`` and ``model calibrate-reranker``.

Evaluation may import the runtime and training building blocks; nothing under ``models`` imports it (training code
that wants a dev score gets an evaluation callable from the CLI wiring).
"""
