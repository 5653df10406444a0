"""spaCy tokenizer, vocabulary and compact id encoding."""
