"""The generator: texts in, a registered model that continues prompts out."""
