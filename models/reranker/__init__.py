"""Cross-encoder reranker: mined training data (bi-encoder hard negatives) and training (torch)."""
