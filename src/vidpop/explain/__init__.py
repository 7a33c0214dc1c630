"""Explanations: Grad-CAM on frames, attention weights, word importance."""

#: default real datasets of the attention model's table and explainer (kept here, import-light, so that the
#: CLI can use them as option defaults without importing torch)
HEADLINE_DATA = "youtube_views_subscribers_2025"
COVER_DATA = "spotify_fresh_finds_covers_2022"
