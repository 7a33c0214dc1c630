"""Recipes: how a model is fed and trained on a dataset (``vidpop train MODEL --data D``), and how its test
split is rebuilt for ``vidpop evaluate``. One module per method family, each imported here explicitly,
one definition per model name (a second registration raises).

Options that belong to the recipe rather than the model travel as ``recipe.<key>`` config overrides:
``recipe.limit`` (a seeded sample of that many videos), ``recipe.seed``, ``recipe.split``
(``random | time | user`` where the data allows it), ``recipe.covers`` / ``recipe.covers_limit``
(attention), ``recipe.min_user_interactions`` / ``recipe.max_test_users`` / ``recipe.epochs``
(recommenders), ``recipe.target`` (the target column of a dataset model's fallback recipe),
``recipe.horizon`` / ``cutoff`` / ``n_related`` / ``same_category`` / ``title`` (relation).
What a recipe was given is saved as ``recipe.json`` in the model folder.
"""

from vidpop.recipes import attention, dataset, fusion, gbdt, matrix, poe, rec, relation  # noqa: F401  (each registers its recipes)
from vidpop.recipes.common import load_data, split_options
from vidpop.recipes.evaluate import evaluate_model_dir
from vidpop.recipes.registry import register_evaluator, register_recipe
from vidpop.recipes.run import launch, launch_command, train
from vidpop.training.ddp_entry import TrainJob, parse_overrides

__all__ = [
    "TrainJob",
    "evaluate_model_dir",
    "launch",
    "launch_command",
    "load_data",
    "parse_overrides",
    "register_evaluator",
    "register_recipe",
    "split_options",
    "train",
]
