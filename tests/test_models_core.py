"""Registry, estimator save/load and the shared training loop (synthetic data, labelled as such)."""

import numpy as np
import pytest
import torch

from vidpop.errors import VidpopError
from vidpop.models import build_model, load_model, model_names
from vidpop.training.loop import TrainConfig, fit_module


def _synthetic_regression(n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic: y = 2*x0 - x1 + noise."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 5))
    y = 2 * X[:, 0] - X[:, 1] + 0.1 * rng.normal(size=n)
    return X, y


def test_registry_lists_and_rejects_unknown() -> None:
    assert "mlp" in model_names()
    with pytest.raises(VidpopError, match="unknown model"):
        build_model("no_such_model")
    with pytest.raises(VidpopError, match="unknown option 'not_an_option'"):
        build_model("mlp", not_an_option=3)


def test_mlp_learns_and_reloads_identically(tmp_path) -> None:
    X, y = _synthetic_regression()
    m = build_model("mlp", hidden=(32,), train={"epochs": 40, "progress": False, "lr": 1e-2})
    m.fit(X[:300], y[:300], X[300:350], y[300:350])
    assert m.score(X[350:], y[350:]) > 0.9
    m.save(tmp_path / "model")
    m2 = load_model(tmp_path / "model")
    assert m2.config == m.config
    np.testing.assert_allclose(m2.predict(X[350:]), m.predict(X[350:]), rtol=0, atol=1e-6)
    # a folder saved by a vidpop with one more nested option still loads (the option is dropped, with a warning)
    import json

    cfg_path = tmp_path / "model" / "config.json"
    meta = json.loads(cfg_path.read_text())
    meta["config"]["train"]["option_from_the_future"] = 1
    cfg_path.write_text(json.dumps(meta))
    with pytest.warns(UserWarning, match="option_from_the_future"):
        m3 = load_model(tmp_path / "model")
    np.testing.assert_allclose(m3.predict(X[350:]), m.predict(X[350:]), rtol=0, atol=1e-6)


def test_unfitted_model_refuses_to_predict_or_save(tmp_path) -> None:
    m = build_model("mlp")
    with pytest.raises(VidpopError, match="not fitted"):
        m.predict(np.zeros((2, 3)))
    with pytest.raises(VidpopError, match="not fitted"):
        m.save(tmp_path / "x")


def test_loop_is_seeded_and_stops_early() -> None:
    X, y = _synthetic_regression(200)
    data = {"x": X.astype(np.float32), "y": y.astype(np.float32)[:, None]}

    def run(seed: int) -> tuple[torch.nn.Module, object]:
        torch.manual_seed(123)
        net = torch.nn.Linear(5, 1)
        loss = lambda m, b: (torch.nn.functional.mse_loss(m(b["x"]), b["y"]), {})  # noqa: E731
        # the validation set is pure noise, so validation loss stops improving quickly
        rng = np.random.default_rng(1)
        val = {"x": rng.normal(size=(50, 5)).astype(np.float32), "y": rng.normal(size=(50, 1)).astype(np.float32) * 10}
        hist = fit_module(net, loss, data, val, TrainConfig(epochs=200, lr=0.05, patience=3, seed=seed, progress=False))
        return net, hist

    a, ha = run(0)
    b, _ = run(0)
    torch.testing.assert_close(a.weight, b.weight)
    assert ha.stopped_early and len(ha.epochs) < 200
    assert ha.best_epoch == int(np.argmin([e["val_loss"] for e in ha.epochs]))
