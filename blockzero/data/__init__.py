"""Tokenizer, domain corpora, the train / held-out split, and seeded batches."""
