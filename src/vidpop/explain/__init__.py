"""Explanations: Grad-CAM on frames, attention weights, word importance."""
