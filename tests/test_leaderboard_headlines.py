"""The headline leaderboard (views ÷ subscribers, median split) on a SYNTHETIC task with a known rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from vidpop.experiments import leaderboard_headlines as lh


def _task(n: int = 400, seed: int = 0) -> lh.HeadlineTask:
    rng = np.random.default_rng(seed)
    good = rng.random(n) < 0.5  # titles with the word "neko" get 3x the views per subscriber
    titles = [("neko " if g else "inu ") + " ".join(rng.choice(["a", "b", "c", "d"], 3)) for g in good]
    followers = 10 ** rng.uniform(2, 6, n)
    ratio = np.exp(np.log(3.0) * good - 0.5 * np.log10(followers) + 0.3 * rng.normal(size=n))
    frame = pd.DataFrame(
        {
            "video_id": [f"v{i}" for i in range(n)],
            "title": titles,
            "published_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 200, n), "D"),
            "duration": rng.uniform(10, 600, n),
            "views": ratio * followers,
            "author_followers": followers,
        }
    )
    emb = np.column_stack([good + 0.1 * rng.normal(size=n), rng.normal(size=(n, 7))]).astype(np.float32)
    return lh.HeadlineTask("synthetic", frame, ratio, emb, "synthetic")


def _run(monkeypatch: pytest.MonkeyPatch, task: lh.HeadlineTask) -> dict:
    monkeypatch.setattr(lh, "load_headline_task", lambda data, progress=True: task)
    models = ("logistic (title)", "lightgbm regression", "lightgbm regression (no subscribers)")
    return lh.run_headline_leaderboard("synthetic", seeds=(0,), trials=2, models=models, progress=False)


def test_the_classifiers_learn_the_rule_and_the_winner_is_chosen_on_validation(monkeypatch) -> None:
    res = _run(monkeypatch, _task())
    rows = {r["model"]: r for r in res["rows"]}
    # the title knows the 3x factor only, the subscribers the rest: both halves of the rule are learnt
    assert 0.6 < rows["logistic (title)"]["accuracy"] < rows["lightgbm regression"]["accuracy"]
    assert rows["lightgbm regression"]["accuracy"] > 0.8
    assert rows["lightgbm regression (no subscribers)"]["accuracy"] < rows["lightgbm regression"]["accuracy"]
    assert res["chosen_on_validation"] == max(res["rows"], key=lambda r: r["val_accuracy"])["model"]
    assert res["chosen_title_only"] == "logistic (title)" and len(res["targets"]) == 2
    assert "synthetic" in lh.format_headline_table(res)


def test_test_labels_never_enter_a_choice(monkeypatch) -> None:
    task = _task()
    a = _run(monkeypatch, task)
    from vidpop.data.splits import random_split

    test = random_split(len(task.frame), 0.2, 0.1, seed=0).test
    scrambled = lh.HeadlineTask(task.name, task.frame.copy(), task.score.copy(), task.emb, task.encoder)
    scrambled.score[test] = np.random.default_rng(1).permutation(scrambled.score[test])
    scrambled.frame.loc[test, "views"] = scrambled.score[test] * scrambled.frame.loc[test, "author_followers"]
    b = _run(monkeypatch, scrambled)
    for ra, rb in zip(a["rows"], b["rows"], strict=True):
        assert ra["per_seed"][0]["params"] == rb["per_seed"][0]["params"]
        assert ra["val_accuracy"] == rb["val_accuracy"]
    assert a["chosen_on_validation"] == b["chosen_on_validation"]
    assert a["rows"][1]["accuracy"] != b["rows"][1]["accuracy"]  # the test part itself did change
