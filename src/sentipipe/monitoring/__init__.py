"""The served model watched: the prediction log, drift against the training data, labels fed back."""
