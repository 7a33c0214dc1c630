"""Item side information for recommenders: feature-store embeddings aligned to a :class:`RecData`'s item
indices. It sits in ``features/`` (above ``data/``) because it reads the feature store."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from vidpop.data.recdata import RecData
from vidpop.data.schema import VideoDataset
from vidpop.errors import VidpopError
from vidpop.features.extract import dataset_features


def attach_item_features(data: RecData, ds: VideoDataset, kinds: Sequence[str], progress: bool = True) -> RecData:
    """Fill ``data.item_features[kind]`` / ``item_feature_present[kind]`` aligned to item indices.

    Features come from :func:`vidpop.features.extract.dataset_features` (cached in the feature store).
    They describe the *videos* (titles, covers), never users, so computing them for the whole corpus
    leaks nothing about any user's ground truth.
    """
    kinds = [k for k in kinds if k not in data.item_features]
    if not kinds:
        return data
    rows = pd.Index(ds.videos["video_id"].astype(str)).get_indexer(data.item_ids)
    if (rows < 0).any():
        raise VidpopError("some items of the vocabulary are not in the dataset's videos table")
    for kind in kinds:
        values, present = dataset_features(ds, kind, progress=progress)
        data.item_features[kind] = np.asarray(values, np.float32)[rows]
        data.item_feature_present[kind] = np.asarray(present, bool)[rows]
    return data
