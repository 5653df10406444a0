"""One folder per task: its stages, network, predictor, evaluation and served model."""
