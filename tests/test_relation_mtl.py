"""Relation network + multi-task regressor, its wide features, competitor selection (leakage), the
LightGBM baseline and the two adapters. End-to-end tests use tiny slices of the real Bilibili bangumi
data; unit tests of the loss and architecture use small synthetic tensors (labelled as such)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import torch

from vidpop.config import dataset_dir
from vidpop.data.adapters import get_adapter
from vidpop.experiments import relation as exp
from vidpop.models.base import load_model
from vidpop.models.lightgbm_baseline import LightGBMClassifier, LightGBMConfig, LightGBMRegressor
from vidpop.models.relation_features import WideFeatureBuilder, WideFeatureConfig, select_related
from vidpop.models.relation_mtl import RelationMTLConfig, RelationMTLNet, RelationMTLRegressor, relation_loss
from vidpop.training.loop import TrainConfig

BANGUMI = "bilibili_bangumi_series"
NETFLIX = "netflix_engagement_reports"
needs_bangumi = pytest.mark.skipif(not dataset_dir(BANGUMI).exists(), reason="bangumi data not staged")
needs_netflix = pytest.mark.skipif(not dataset_dir(NETFLIX).exists(), reason="netflix data not staged")

TINY = RelationMTLConfig(
    hidden=8, encoder_layers=3, dropout=0.0, train=TrainConfig(epochs=3, batch_size=32, progress=False, patience=0)
)


@pytest.fixture(scope="module")
def bangumi():
    return get_adapter(BANGUMI).load()


@pytest.fixture(scope="module")
def slice_prep(bangumi):
    """Every 8th dated season (real data, ~415 titles over the whole time span), horizon 180 d."""
    dated = bangumi.videos[bangumi.videos["published_at"].notna()]
    ds = bangumi.subset(dated["video_id"].iloc[::8].tolist())
    setup = exp.setup_for(BANGUMI, model=TINY)
    setup = dataclasses.replace(setup, features=dataclasses.replace(setup.features, title_dim=8))
    return ds, setup, exp.prepare(ds, setup, 180)


# ------------------------------------------------------------------------------------------ adapters
@needs_bangumi
def test_bangumi_adapter_rows_and_columns(bangumi):
    adapter = get_adapter(BANGUMI)
    assert len(bangumi.videos) == adapter.expected_rows["videos"] == 3345  # SOURCE.md: 3,345 seasons
    v = bangumi.videos
    assert v["video_id"].is_unique and v["views"].notna().all() and v["follows"].notna().all()
    assert v["published_at"].notna().mean() > 0.99
    assert (v["studio"] != "").sum() > 1500 and (v["cast"] != "").sum() > 3000
    gintama = v[v["title"] == "银魂"].iloc[0]
    assert gintama["published_at"] == pd.Timestamp("2006-04-06", tz="UTC")
    assert "SUNRISE" in gintama["studio"] and "杉田智和" in gintama["cast"].split("|")
    assert set(gintama["tags"].split("|")) == {"漫画改", "热血", "搞笑", "战斗"}
    old = get_adapter(BANGUMI, crawl="2021").load()
    assert len(old.videos) == adapter.expected_rows_2021


@needs_netflix
def test_netflix_adapter_rows_and_dedupe():
    adapter = get_adapter(NETFLIX)
    ds = adapter.load()
    assert ds.meta["source_rows"] == adapter.source_rows  # per-report rows as SOURCE.md lists them
    v = ds.videos
    assert len(v) == adapter.expected_rows["videos"] and v["title"].is_unique
    sq2 = v[v["title"] == "Squid Game: Season 2 // 오징어 게임: 시즌 2"].iloc[0]
    # listed in 2024H2 (86.5M views) and 2025H1 (117.3M): the earliest report with views is kept
    assert sq2["report"] == "2024H2" and sq2["views"] == 86_500_000 and sq2["n_reports"] == 2
    assert sq2["in_release_window"] == 1 and sq2["category"] == "tv"


def test_release_date_parsing():
    from vidpop.data.adapters.bilibili_bangumi import parse_release_date, staff_and_studio

    assert parse_release_date("2022年10月5日") == pd.Timestamp("2022-10-05", tz="UTC")
    assert parse_release_date("2019年1月") == pd.Timestamp("2019-01-01", tz="UTC")
    assert parse_release_date("2021/2/20") == pd.Timestamp("2021-02-20", tz="UTC")
    assert pd.isna(parse_release_date("敬请期待"))
    people, studio = staff_and_studio("原作：ONE,总导演：立川让,音响效果：仓桥静男、绪方康恭,动画制作：BONES")
    assert studio == "BONES" and people.split("|") == ["ONE", "立川让"]


# ------------------------------------------------------------------------------------------ leakage
def test_select_related_synthetic_order_and_category():
    """Synthetic: 6 titles on consecutive days, two categories."""
    t = pd.Series(pd.date_range("2020-01-01", periods=6, freq="D", tz="UTC"))
    pool = np.arange(4)  # titles 4, 5 are not known at prediction time
    rel = select_related(t, np.arange(6), pool, n=2)
    assert rel[0].tolist() == [-1, -1]  # nothing before the first title
    assert rel[3].tolist() == [2, 1]  # closest first, never itself
    assert rel[5].tolist() == [3, 2]  # never 4 (outside the pool)
    cat = select_related(t, np.arange(6), pool, n=2, categories=["a", "b", "a", "b", "a", "b"])
    assert cat[4].tolist() == [2, 0] and cat[5].tolist() == [3, 1]


@needs_bangumi
def test_no_competitor_after_target_or_from_test_period(slice_prep):
    ds, _setup, prep = slice_prep
    t = ds.videos["published_at"].to_numpy()
    train_end = pd.Timestamp(prep.split.info["train_end"])
    rel = prep.related
    for rows in (prep.split.train, prep.split.val, prep.split.test):
        for r in rows:
            comp = rel[r][rel[r] >= 0]
            assert all(t[c] < t[r] for c in comp), "a competitor released at/after its target"
            assert all(t[c] < train_end for c in comp), "a competitor from after the training period"
    test_set = set(prep.split.test.tolist())
    assert not test_set & set(rel[prep.split.test].ravel().tolist())
    assert (rel[prep.split.test] >= 0).all()  # test titles do get their n competitors from the pool


# ------------------------------------------------------------------------------------------ features
def test_author_stats_leave_one_out():
    """Synthetic frame: a training row's studio mean must not contain its own label."""
    frame = pd.DataFrame(
        {
            "title": ["a", "b", "c", "d"],
            "studio": ["S", "S", "T", ""],
            "published_at": pd.date_range("2020-01-01", periods=4, tz="UTC"),
        }
    )
    cfg = WideFeatureConfig(multi_hot={}, author_column="studio", title="none", calendar=False, author_prior=0.0)
    b = WideFeatureBuilder(cfg)
    b.fit_transform(frame, np.array([1.0, 3.0, 5.0, 7.0]))
    raw_train = b._blocks(frame, None, fit=False, loo=np.array([1.0, 3.0, 5.0, 7.0]))
    assert raw_train[0, 1] == 3.0 and raw_train[1, 1] == 1.0  # the other S title's label
    raw_new = b._blocks(frame, None, fit=False, loo=None)
    assert raw_new[0, 1] == 2.0  # a new title of S sees both


@needs_bangumi
def test_wide_features_fit_on_train_only(slice_prep):
    ds, _setup, prep = slice_prep
    tr = prep.split.train
    assert prep.features.shape == (len(ds.videos), len(prep.feature_names))
    assert np.allclose(prep.features[tr].mean(axis=0), 0, atol=1e-4)  # standardised on train rows
    train_tags = {t for s in ds.videos["tags"].iloc[tr] for t in s.split("|") if t}
    assert {n.split("=", 1)[1] for n in prep.feature_names if n.startswith("tags=")} <= train_tags


# ------------------------------------------------------------------------------------------ model
def _batch(b: int = 5, n: int = 3, d: int = 7) -> dict[str, torch.Tensor]:
    """Synthetic tensors."""
    g = torch.Generator().manual_seed(0)
    mask = torch.ones(b, n)
    mask[0, 1:] = 0  # a title with one competitor
    return {
        "x": torch.randn(b, d, generator=g),
        "rel": torch.randn(b, n, d, generator=g) * mask.unsqueeze(-1),
        "rel_mask": mask,
        "y": torch.randn(b, generator=g),
        "y_aux": torch.randn(b, generator=g),
        "aux_mask": torch.tensor([1.0, 1.0, 0.0, 1.0, 1.0]),
    }


def test_shapes_and_switches_change_architecture():
    b = _batch()
    full = RelationMTLNet(7, RelationMTLConfig(hidden=16))
    main, aux = full.eval()(b["x"], b["rel"], b["rel_mask"])
    assert main.shape == (5,) and aux is not None and aux.shape == (5,)
    assert sum(isinstance(m, torch.nn.Linear) for m in full.encoder) == 15  # default depth of e()
    assert sum(isinstance(m, torch.nn.BatchNorm1d) for m in full.encoder) == 14
    dnn = RelationMTLNet(7, RelationMTLConfig(hidden=16, use_relation=False, aux_weight=0.0))
    main, aux = dnn.eval()(b["x"])
    assert aux is None and dnn.g is None and dnn.f is None and dnn.aux_head is None
    mtl = RelationMTLNet(7, RelationMTLConfig(hidden=16, use_relation=False, aux_weight=0.5))
    assert mtl.aux_head is not None and mtl.g is None
    n_params = [sum(p.numel() for p in m.parameters()) for m in (dnn, mtl, full)]
    assert n_params[0] < n_params[1] < n_params[2]
    # padding is masked: changing a padded competitor's features does not change the output
    b2 = {**b, "rel": b["rel"].clone()}
    b2["rel"][0, 2] = 100.0
    assert torch.allclose(full(b["x"], b["rel"], b["rel_mask"])[0], full(b2["x"], b2["rel"], b2["rel_mask"])[0])


def test_loss_terms_by_hand():
    b = _batch()
    lam, gam = 0.3, 1e-3
    net = RelationMTLNet(7, RelationMTLConfig(hidden=8, encoder_layers=4, aux_weight=lam)).eval()
    loss, logs = relation_loss(net, b, lam, gam)
    with torch.no_grad():
        main, aux = net(b["x"], b["rel"], b["rel_mask"])
        mse = ((main - b["y"]) ** 2).mean()
        keep = b["aux_mask"] > 0
        aux_mse = ((aux[keep] - b["y_aux"][keep]) ** 2).mean()
        l2 = sum((p**2).sum() for name, p in net.named_parameters() if name.endswith("weight") and p.ndim == 2)
    assert torch.isclose(loss, mse + lam * aux_mse + gam * l2, rtol=1e-5)
    assert logs["mse"] == pytest.approx(float(mse)) and logs["aux_mse"] == pytest.approx(float(aux_mse))
    no_aux, logs0 = relation_loss(RelationMTLNet(7, RelationMTLConfig(hidden=8, aux_weight=0.0)).eval(), b, 0.0, 0.0)
    assert "aux_mse" not in logs0 and "l2" not in logs0 and float(no_aux.detach()) == pytest.approx(logs0["mse"])


@needs_bangumi
def test_train_save_load_identical_predictions(slice_prep, tmp_path):
    _ds, _setup, prep = slice_prep
    s = prep.split
    model = RelationMTLRegressor(TINY).fit(prep.inputs(s.train), prep.y[s.train], prep.inputs(s.val), prep.y[s.val])
    x_test = prep.inputs(s.test)
    pred = model.predict(x_test)
    assert pred.shape == (len(s.test),) and np.isfinite(pred).all()
    assert model.predict_aux(x_test).shape == pred.shape
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    assert isinstance(again, RelationMTLRegressor)
    np.testing.assert_array_equal(again.predict(x_test), pred)


@needs_bangumi
def test_lightgbm_regressor_and_classifier_roundtrip(slice_prep, tmp_path):
    _, _, prep = slice_prep
    s, X = prep.split, prep.features
    reg = LightGBMRegressor(LightGBMConfig(n_estimators=200)).fit(
        X[s.train], prep.y[s.train, 0], X[s.val], prep.y[s.val, 0]
    )
    assert reg.best_iteration_ <= 200 and reg.score(X[s.train], prep.y[s.train, 0]) > 0.3
    reg.save(tmp_path / "reg")
    np.testing.assert_array_equal(load_model(tmp_path / "reg").predict(X[s.test]), reg.predict(X[s.test]))
    labels = (prep.y[:, 0] > np.median(prep.y[s.train, 0])).astype(int)
    clf = LightGBMClassifier(LightGBMConfig(n_estimators=100)).fit(X[s.train], labels[s.train])
    proba = clf.predict_proba(X[s.test])
    assert proba.shape == (len(s.test), 2) and np.allclose(proba.sum(axis=1), 1)
    clf.save(tmp_path / "clf")
    np.testing.assert_array_equal(load_model(tmp_path / "clf").predict(X[s.test]), clf.predict(X[s.test]))


@needs_bangumi
def test_ablation_runs_end_to_end_on_a_slice(slice_prep):
    ds, setup, _ = slice_prep
    setup = dataclasses.replace(setup, horizons=(7, 360))
    result = exp.ablation(setup, ("DNN", "DNN+RN+MTL", "LightGBM"), seeds=1, progress=False, ds=ds)
    assert set(result["horizons"]) == {"7", "360"}
    h7, h360 = result["horizons"]["7"], result["horizons"]["360"]
    assert h7["train"] > h360["train"] and h7["test"] == h360["test"]  # longer horizon: less training data
    for info in result["horizons"].values():
        assert set(info["rows"]) == {"DNN", "DNN+RN+MTL", "LightGBM"}
        assert all(np.isfinite(r["r2"]) and -1 <= r["spearman"] <= 1 for r in info["rows"].values())
    assert "| 7 |" in exp.markdown_table(result)
