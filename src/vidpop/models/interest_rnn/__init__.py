"""The dynamic interest RNN recommender (``interest_rnn``) and its Static-DNN baseline (``static_dnn``).

Modules: :mod:`.semantic` (text/visual video embedding, contrastive loss), :mod:`.topics` (LDA user
interests with time decay), :mod:`.relevance` (Jaccard neighbours, triplet loss), :mod:`.network`
(GRU + softmax), :mod:`.model` (the estimator: losses, training, top-k or greedy generation), :mod:`.static`.
Importing this package registers both models.
"""

from __future__ import annotations

from typing import Any

from vidpop.models.interest_rnn.model import InterestRNN, InterestRNNConfig, paper_train_config, practical_train_config
from vidpop.models.interest_rnn.static import StaticDNN, StaticDNNConfig


def ablation_variants() -> dict[str, tuple[str, dict[str, Any]]]:
    """The paper's ablation rows: display name -> (registered model name, config overrides)."""
    return {
        "RNN": ("interest_rnn", {"use_semantic": False, "use_interest": False, "use_relevance": False}),
        "RNN-Sem": ("interest_rnn", {"use_semantic": True, "use_interest": False, "use_relevance": False}),
        "RNN-noRel": ("interest_rnn", {"use_semantic": True, "use_interest": True, "use_relevance": False}),
        # every switch spelled out: a tuned run's choice (e.g. relevance off) never changes what "full" is
        "full": ("interest_rnn", {"use_semantic": True, "use_interest": True, "use_relevance": True}),
        "Static-DNN": ("static_dnn", {}),
    }


#: what ``vidpop rec tables`` reads (see the notes in :mod:`vidpop.training.rec_protocol`)
ABLATIONS: dict[str, tuple[str, dict[str, Any]]] = ablation_variants()
#: cold start: the full model, queried with text only (topics -> interest token -> recommendations)
COLD_START: tuple[str, dict[str, Any]] = ("interest_rnn", {})
#: the single-network row: the full model's defaults, which the configuration chosen on validation may change
SINGLE: tuple[str, dict[str, Any]] = ("interest_rnn", {})

__all__ = [
    "ABLATIONS",
    "COLD_START",
    "SINGLE",
    "InterestRNN",
    "InterestRNNConfig",
    "StaticDNN",
    "StaticDNNConfig",
    "ablation_variants",
    "paper_train_config",
    "practical_train_config",
]
