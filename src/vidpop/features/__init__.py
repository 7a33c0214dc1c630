"""Feature extraction with offline pretrained encoders, and the on-disk feature store."""
