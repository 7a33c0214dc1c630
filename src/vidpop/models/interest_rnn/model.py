"""``interest_rnn``: the dynamic interest RNN recommender (semantic embedding + LDA interests +
user relevance + GRU over the watched sequence; the paper's greedy generation or top-k).

Total loss per batch of users: ``L_rec + l_cold L_cold + l1 L_sem + l2 L_int + l3 L_rel + l4 ||theta||^2``
(see :mod:`.objective`), ``L_rec`` the mean negative log-likelihood of every next video (sampled
softmax against shared uniform negatives by default, the full softmax with ``n_negatives=0``), each
step's input built only from the interactions before the predicted one.
Switches ``use_semantic``, ``use_interest`` and ``use_relevance`` give the ablations RNN, RNN-Sem,
RNN-noRel and the full model (see :func:`ablation_variants`).

Defaults: the paper's loss weights (l1-l3, l_cold) and margins, D_e = 300. Chosen on MicroLens
leave-one-out *validation* items (5,000 of them; never the test item), departing from the paper:

* GRU input ``T_x s_v + e_v``: the learnt item vector is on the input side too (tied with the output
  side), not the content embedding alone (``id_input``);
* ``L_rec`` under the exact full softmax (``n_negatives=0``, ~94 CPU s per epoch of all 50,000 users on
  one thread of the 2-core AMD host, 112-127 s on a 2.8 GHz Xeon; it trains on all of torch's threads:
  114 s on 2 threads of a slower Zen 1 host, of which the three products of the softmax are ~45 s and
  the (19,738 x 384 -> 300) semantic table, formed for every batch, ~25 s; 49.5 s on 2 threads of a Zen 5
  EPYC, ``benchmarks/results/training_speed*.json``): the sampled one (1,024 uniform
  negatives shared by the batch, only the batch's items embedded, ~25 CPU s per epoch) stayed behind
  on validation (HR@10 after epochs 1-3 .016/.026/.038 against .027/.049/.070 full; best .084 against
  .088), so the issue's condition for it is not met;
* ``lambda_l2 = 0``: the paper's ``l4 ||theta||^2`` over every parameter, under Adam, pulls the vector
  of every item not in the batch towards zero at each step (validation HR@10 after 3 epochs .032 with
  1e-4, .038 without);
* top-k of one softmax instead of the paper's greedy generation (``greedy=True`` keeps it): validation
  HR@10 .080 against .057 for the same weights;
* Adam at lr 3e-3, batches of 256 users (~195 steps per epoch), <= 15 epochs with early stopping on the
  validation item's NDCG@10 (:func:`practical_train_config`). The paper's SGD at lr 0.001 is
  :func:`paper_train_config`.

Leave-one-out test on all 50,000 MicroLens users with these defaults (read once): HR@10 .0697,
NDCG@10 .0383 after 15 epochs, chosen over two other draws at a budget of 3 trials on the validation
item (``benchmarks/results/loo_tuned.md``; SASRec tuned the same way .0711 / .0398). At the old cap
of 8 epochs: .0678 / .0364 (``loo_interest_rnn.json``).
With the sampled loss (17 epochs): .0585 / .0309 (``loo_interest_rnn_sampled.json``).
Other seeds give .0673-.0675 / .0366-.0370, before and after the speed work of stop 28 (SASRec .0709-.0735 /
.0399-.0413); without the topic interests (``use_interest=False``) .0692-.0698 / .0376-.0384, but the defaults keep
them: the text-only cold-start step is the interest branch (``benchmarks/results/loo_seeds_zen5.md``).
The item text matters most to the GRU core (semantic, interest and relevance parts off): validation NDCG@10 .0464 with
learnt item vectors only, .0498 with MiniLM titles, .0514 at seed 0 with TF-IDF+SVD-256 of title, tags, category and
description (``text_feature="lsa", lsa_dim=256``; test .0754 / .0413) but .0487 at seed 1; with dropout 0.3
.0517 / .0508 over two seeds (test .0740 / .0756, .0405 / .0417): a tie with the default SASRec's .0518 / .0520 on
validation, and behind SASRec at dim 128 (.0550) or dropout 0.4 (.0545); the full model gains little from the LSA
text (.0476 with LSA-128)
(``benchmarks/results/loo_stop31_zen5.md``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from vidpop.data.preprocessing import Standardizer
from vidpop.errors import VidpopError
from vidpop.models.config import ModelConfig
from vidpop.models.interest_rnn import relevance
from vidpop.models.interest_rnn.batching import TextFeatures, item_documents, pad_sequences, precomputed_text_features
from vidpop.models.interest_rnn.network import InterestRNNNet, NetDims
from vidpop.models.interest_rnn.objective import InterestObjective
from vidpop.models.interest_rnn.topics import TopicConfig, UserTopicModel, decay_weights
from vidpop.models.rec_baselines.torch_common import (
    catalogue_softmax_threads,
    uses_full_softmax,
    validation_ndcg,
)
from vidpop.models.recommender import RecData, Recommender, UserQuery
from vidpop.models.registry import register_model
from vidpop.training.loop import TrainConfig, epoch_seconds, fit_module


def practical_train_config() -> TrainConfig:
    """Adam, lr 3e-3, batches of 256 users (the paper's SGD at lr 0.001 moves a 19k-way softmax too
    slowly for a CPU budget); at most 15 epochs (validation NDCG@10 still rose at the 8th, the old cap:
    .0469 -> .0475), stopped after 3 without a better validation NDCG@10. Chosen on validation items only."""
    return TrainConfig(epochs=15, batch_size=256, lr=3e-3, optimizer="adam", patience=3, grad_clip=5.0)


def paper_train_config() -> TrainConfig:
    """The paper's optimiser: plain SGD at lr 0.001."""
    return TrainConfig(epochs=50, batch_size=256, lr=1e-3, optimizer="sgd", momentum=0.0, patience=5)


@dataclass
class InterestRNNConfig(ModelConfig):
    text_feature: str = "title_minilm"  # an item feature of RecData, "lsa" (TF-IDF+SVD of item text), or "a+b"
    visual_feature: str = "cover_effnet"  # used where present (mask); absent rows use text only
    use_semantic: bool = True
    use_interest: bool = True
    use_relevance: bool = True
    d_e: int = 300
    d_interest: int = 64  # interest space = item vectors of the softmax (its matmul is most of an epoch)
    hidden: int = 128
    n_topics: int = 20
    decay: float = 0.1  # lambda of exp(-lambda |t - t_i|), per RecData time unit (day, or step)
    lambda_sem: float = 0.2
    lambda_int: float = 0.4
    lambda_rel: float = 0.2
    lambda_cold: float = 0.5  # weight of the text-only (cold-start) step; 0 = untrained cold path
    cold_fraction: float = 0.25  # users of a batch that also train the cold-start step
    rel_fraction: float = 0.25  # users of a batch whose relevance triplet is formed (partners cost GRU passes)
    lambda_l2: float = 0.0  # the paper's l4 (1e-4 hurt under Adam: see the module notes)
    margin_sem: float = 0.3  # tau_1
    margin_rel: float = 0.5  # tau_2
    item_id_embedding: bool = True
    id_input: bool = True  # GRU input T_x s_v + e_v (tied with the output side); False = T_x s_v (paper)
    n_negatives: int = 0  # 0 = full softmax in L_rec / L_cold; N = N uniform negatives shared by a batch
    dropout: float = 0.2  # on GRU inputs and outputs (validation HR@10 .084 against .080 without)
    greedy: bool = False  # True = the paper's generation (feed each pick back); False = top-k of one softmax
    max_len: int = 50  # longest history fed to the GRU (last items kept)
    rel_top_k: int = 10  # Jaccard neighbours a positive is drawn from
    sem_batch: int = 256  # visual/text pairs per batch in L_sem
    val_fraction: float = 0.02  # training users held out for early stopping when no validation item is given
    val_users: int | None = 5000  # validation-item users drawn for early stopping (None = all)
    lda_max_docs: int = 5000  # user streams sampled to fit the LDA (its cost grows with them)
    lda_max_iter: int = 5
    lsa_dim: int = 128
    seed: int = 0
    train: TrainConfig = field(default_factory=practical_train_config)


@register_model("interest_rnn")
class InterestRNN(Recommender):
    """GRU over interest embeddings of watched videos; next video by softmax; top-k (or greedy)."""

    description = "dynamic interest RNN: semantic video embedding + LDA interests + Jaccard relevance + GRU"
    Config = InterestRNNConfig
    capabilities = frozenset({"recommend", "from_text"})  # a text-only query takes the cold-start step
    uses_validation = True  # leave-one-out: early stopping on the validation item (``fit(validation=...)``)

    @property
    def item_feature_kinds(self) -> tuple[str, ...]:
        """Item features the evaluation protocol must attach before ``fit``."""
        kinds = list(precomputed_text_features(self.config.text_feature))
        return tuple(kinds + ([self.config.visual_feature] if self.config.use_semantic else []))

    def _build_module(self) -> InterestRNNNet:
        c = self.config
        return InterestRNNNet(
            self.dims_,
            c.d_e,
            c.d_interest,
            c.hidden,
            c.use_semantic,
            c.item_id_embedding,
            c.decay,
            c.dropout,
            c.id_input,
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, X: RecData, y: Any = None, **kwargs: Any) -> InterestRNN:
        data, c = X, self.config
        rng = np.random.default_rng(c.seed)
        self.notes_: list[str] = []
        self.timings_: dict[str, float] = {}
        stages = iter(["text", "visual", "topics", "relevance", "tensors"])
        bar = tqdm(total=5, desc="interest_rnn preparation", unit="stage", disable=not c.train.progress)
        bar.set_postfix_str(next(stages))
        clock = time.perf_counter()

        def done(stage: str) -> None:
            nonlocal clock
            self.timings_[f"{stage}_seconds"] = time.perf_counter() - clock
            clock = time.perf_counter()
            bar.set_postfix_str(next(stages, "done"))  # name the stage that is running now
            bar.update()

        self.text_encoder_ = TextFeatures(c.text_feature, c.lsa_dim, c.seed)
        text, note = self.text_encoder_.fit_transform(data)
        self.notes_ += [note] if note else []
        done("text")
        vis_rows, vis_idx = self._visual(data)
        done("visual")
        topics = self._fit_topics(data) if c.use_interest else None
        done("topics")
        users = np.flatnonzero(np.array([len(s) for s in data.sequences]) > 0)
        users = users[rng.permutation(len(users))]
        validation = kwargs.get("validation")
        if validation is not None and len(validation.queries):  # held-out items: every user trains
            validation = validation.subset(c.val_users, c.seed)
            n_val = 0
        else:  # no held-out items: a share of the users is held out and their loss monitored
            validation = None
            n_val = round(len(users) * c.val_fraction) if len(users) >= 20 else 0
        train_u, val_u = np.sort(users[n_val:]), np.sort(users[:n_val])
        rel = self._relevance_sampler(data, rng) if c.use_relevance else None
        done("relevance")
        self.dims_ = NetDims(
            data.n_items,
            text.shape[1],
            vis_rows.shape[1] if len(vis_idx) else 0,
            len(vis_idx),
            topics.shape[1] if topics is not None else 0,
        )
        self.item_ids_ = np.asarray(data.item_ids)
        self.time_unit_ = data.time_unit
        torch.manual_seed(c.seed)  # the initial weights are part of the seeded run
        net = self._build_module()
        net.text.copy_(torch.from_numpy(text))
        if len(vis_idx):
            net.visual_rows.copy_(torch.from_numpy(vis_rows))
            net.visual_idx.copy_(torch.from_numpy(vis_idx))
            net.visual_pos[torch.from_numpy(vis_idx)] = torch.arange(len(vis_idx))
        if topics is not None:
            net.item_topics.copy_(torch.from_numpy(topics))
        self.module_ = net
        seq, tim, lens = (
            torch.from_numpy(a) for a in pad_sequences(data.sequences, data.times, c.max_len, data.n_items)
        )
        objective = InterestObjective(c, seq, tim, lens, len(vis_idx), rel, rng, n_train=len(train_u))
        done("tensors")
        bar.close()

        def after(module: torch.nn.Module, epoch: int) -> dict[str, float]:
            if validation is None:
                return {}
            scores = validation_ndcg(self, validation)
            # the loop keeps the weights of the lowest ``val_loss``: here 1 - validation NDCG@10
            return {**scores, "val_loss": 1.0 - scores["val_NDCG@10"]}

        hist = fit_module(
            net,
            objective,
            {"user": train_u},
            {"user": val_u} if len(val_u) else None,
            catalogue_softmax_threads(c.train, uses_full_softmax(c.n_negatives, data.n_items)),
            epoch_callback=after,
            on_epoch_start=objective.on_epoch_start,
        )
        self.history_ = hist.as_dict()
        self.epochs_run_ = len(hist.epochs)
        self.best_epoch_ = hist.best_epoch
        # the epoch's resampling and training steps (no validation pass), as the sequential baselines report
        self.seconds_per_epoch_, cpu = epoch_seconds(hist)
        self.timings_["seconds_per_epoch"] = self.seconds_per_epoch_ or 0.0
        # CPU seconds of all threads: on a shared machine wall time measures the neighbours too
        self.timings_["cpu_seconds_per_epoch"] = cpu or 0.0
        return self

    def _visual(self, data: RecData) -> tuple[np.ndarray, np.ndarray]:
        """Standardised visual rows of the items that really have them (never zero images)."""
        name = self.config.visual_feature
        empty = (np.zeros((0, 1), np.float32), np.zeros(0, np.int64))
        if not self.config.use_semantic:
            return empty
        if name not in data.item_features:
            self.notes_.append(f"no visual feature '{name}' in the data: semantic embedding from text only, L_sem off")
            return empty
        values = np.asarray(data.item_features[name], np.float32)
        present = np.asarray(data.item_feature_present.get(name, np.ones(len(values), bool)), bool)
        idx = np.flatnonzero(present)
        if len(idx) < 2:
            self.notes_.append(f"only {len(idx)} item(s) have '{name}': semantic embedding from text only, L_sem off")
            return empty
        self.visual_scaler_ = Standardizer().fit(values[idx])
        self.notes_.append(f"{len(idx)} of {data.n_items} items have '{name}'; the others are embedded from text only")
        return self.visual_scaler_.transform(values[idx]).astype(np.float32), idx.astype(np.int64)

    def _fit_topics(self, data: RecData) -> np.ndarray:
        """LDA on the training streams (one document per user), then topics of every item."""
        c = self.config
        docs = item_documents(data.items)
        streams = [" ".join(docs[i] for i in s) for s in data.sequences if len(s)]
        self.topic_model_ = UserTopicModel(
            TopicConfig(c.n_topics, max_iter=c.lda_max_iter, max_docs=c.lda_max_docs, seed=c.seed)
        ).fit(streams)
        return self.topic_model_.transform(docs)

    def _relevance_sampler(self, data: RecData, rng: np.random.Generator) -> dict[str, Any]:
        nb = relevance.jaccard_neighbours(data.sequences, data.n_items, top_k=self.config.rel_top_k)
        have = sum(len(x) > 0 for x in nb)
        self.notes_.append(f"{have} of {len(nb)} training users have a Jaccard-overlapping user (relevance anchors)")
        return {"nb": nb, "watch": relevance.watch_matrix(data.sequences, data.n_items)}

    # ------------------------------------------------------------------ prediction
    def _text_interests(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Eq. (2) on a text stream: every behaviour (the " . "-separated text of one video, as the
        protocol writes it) gets its topics, then the decayed sum as for a history. Returns the
        decayed topic sums ``(B, K)`` and weight totals ``(B,)`` (their ratio is ``u``)."""
        pieces = [[p for p in (t or "").split(" . ") if p.strip()] or [""] for t in texts]
        flat = self.topic_model_.transform([p for ps in pieces for p in ps])
        sums, totals, start = [], [], 0
        for ps in pieces:
            theta = flat[start : start + len(ps)]
            start += len(ps)
            w = decay_weights(np.arange(len(ps), dtype=np.float64), len(ps) - 1, self.config.decay)
            sums.append((w[:, None] * theta).sum(0))
            totals.append(w.sum())
        return np.asarray(sums, np.float32), np.asarray(totals, np.float32)

    @torch.no_grad()
    def _start_states(
        self, queries: list[UserQuery]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        """GRU state after reading each query (history, or one text-only step for a cold-start user),
        the item interest embeddings, and the decayed topic sums and weight totals at that point."""
        m = self.module_
        m.eval()
        emb = m.item_interest(m.item_semantic())
        h = torch.zeros(len(queries), self.config.hidden)
        sums = torch.zeros(len(queries), self.dims_.n_topics) if m.T_u is not None else None
        totals = torch.ones(len(queries)) if m.T_u is not None else None
        warm = [i for i, q in enumerate(queries) if len(q.history)]
        cold = [i for i, q in enumerate(queries) if not len(q.history)]
        if warm:
            hists = [np.asarray(queries[i].history, np.int64) for i in warm]
            if any(x.min() < 0 or x.max() >= self.dims_.n_items for x in hists):
                raise VidpopError(f"history item indices must lie in [0, {self.dims_.n_items})")
            arrays = pad_sequences(hists, [queries[i].times for i in warm], self.config.max_len, self.dims_.n_items)
            seq, tim, lens = (torch.from_numpy(a) for a in arrays)
            _, last = m.histories(seq, tim, lens, emb)
            h[warm] = last
            if sums is not None and totals is not None:
                rows = torch.arange(len(warm))
                t_ref = tim[rows, lens - 1][:, None]
                valid = torch.arange(seq.shape[1])[None, :] < lens[:, None]
                w = torch.exp(-self.config.decay * (t_ref - tim).abs()) * valid
                sums[warm] = (w[..., None] * m.item_topics[seq.clamp(max=self.dims_.n_items - 1)]).sum(1)
                totals[warm] = w.sum(1)
        if cold:
            interests = None
            if sums is not None and totals is not None:
                s_np, z_np = self._text_interests([queries[i].text or "" for i in cold])
                sums[cold], totals[cold] = torch.from_numpy(s_np), torch.from_numpy(z_np)
                interests = sums[cold] / totals[cold][:, None]
            h[cold] = m.step(m.cold_inputs(interests, len(cold)))
        return h, emb, sums, totals

    def full_sort_scores(self, X: list[UserQuery], batch_size: int = 512) -> np.ndarray:
        """Log-probability of every item being the next one watched."""
        self._check_fitted()
        outs = []
        for start in range(0, len(X), batch_size):
            h, emb, _, _ = self._start_states(X[start : start + batch_size])
            with torch.no_grad():
                outs.append(F.log_softmax(self.module_.logits(h, self.module_.item_targets(emb)), dim=-1).numpy())
        return np.concatenate(outs) if outs else np.zeros((0, self.dims_.n_items), np.float32)

    @torch.no_grad()
    def recommend(
        self, queries: list[UserQuery], k: int = 10, exclude_seen: bool = True, batch_size: int = 512
    ) -> np.ndarray:
        """Greedy generation: pick the most probable not-yet-chosen (and, by default, unseen) video,
        feed it back as the next input (its video and the interest updated with its topics), repeat
        until ``k`` are chosen. With ``greedy=False``: the top ``k`` of the first softmax."""
        self._check_fitted()
        m, k = self.module_, min(k, self.dims_.n_items)
        # a generated video comes one step after the history (no clock advances between recommendations)
        fade = float(np.exp(-self.config.decay)) if self.time_unit_ == "step" else 1.0
        result = []
        for start in range(0, len(queries), batch_size):
            chunk = queries[start : start + batch_size]
            h, emb, sums, totals = self._start_states(chunk)
            targets, inputs = m.item_targets(emb), m.item_inputs(emb)
            banned = torch.zeros(len(chunk), self.dims_.n_items, dtype=torch.bool)
            if exclude_seen:
                for i, q in enumerate(chunk):
                    if len(q.history):
                        banned[i, torch.as_tensor(np.asarray(q.history, np.int64))] = True
            if not self.config.greedy:
                result.append(m.logits(h, targets).masked_fill(banned, float("-inf")).topk(k, dim=1).indices.numpy())
                continue
            picks = []
            for _ in range(k):
                pick = m.logits(h, targets).masked_fill(banned, float("-inf")).argmax(1)
                banned[torch.arange(len(chunk)), pick] = True
                picks.append(pick)
                interests = None
                if sums is not None and totals is not None:
                    sums, totals = sums * fade + m.item_topics[pick], totals * fade + 1.0
                    interests = sums / totals[:, None]
                h = m.step(m.step_inputs(inputs[pick], interests), h)
            result.append(torch.stack(picks, 1).numpy())
        return np.concatenate(result) if result else np.zeros((0, k), np.int64)
