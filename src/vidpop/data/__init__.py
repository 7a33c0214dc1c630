"""Data model, dataset adapters, splits and labels."""

from vidpop.data.schema import VideoDataset

__all__ = ["VideoDataset"]
