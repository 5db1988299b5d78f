"""SapBERT-style bi-encoder: training data, training (torch), and torch-free linking evaluation."""
