"""Vocabulary loaders, the normalized concept store and the retrieval index.

Nothing outside this package parses a vocabulary file: every loader turns its source into a
:class:`~clin_linker.ontologies.records.VocabularyPart`, and :mod:`.store` merges parts into one store.
"""
