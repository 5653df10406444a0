"""Corpus sources, validation and splitting."""
