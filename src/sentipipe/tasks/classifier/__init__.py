"""The classifier: labelled texts in, a registered model that labels raw text out."""
