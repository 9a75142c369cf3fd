"""Recipe search for the tabular transformer on inner validation, never on test folds (issue #25's second attempt).

    OMP_NUM_THREADS=1 python bench/risk_recipes.py german_credit '{"base": {}, "ens3": {"ens": 3}, "members5": {"members": 5}}'

Reads the encoded folds of a finished `python bench/risk.py --sets SET --out runs/bench-risk-2` (RUNS below). For each
of the 5 folds it splits the fold's *training* rows 80/20 (stratified, seeded) into fitting rows and early-stopping
rows, trains the FT-Transformer with a variant's settings and scores ROC-AUC on the fold's *validation* rows, which
neither the fitting nor the stopping saw; the fold's test rows are never read. Logistic regression fitted on the fold's
training rows, scored on the same validation rows, is printed beside it for scale. The schedule mirrors the scenario's
defaults (AdamW, warmup 50, cosine to 2,000 steps, validation every 10 steps, patience 20, best weights restored).

Variant keys: d (d_model), L (n_layer), h (heads), drop (residual and, unless adrop, attention dropout), adrop
(attention dropout), fdrop (dropout inside the MLP), wd, lr, bs, steps, warm, ee (validate every), pat (patience),
sel ("roc", "pr" or "loss": what early stopping follows), over (positives
repeated that many times in the epoch order, their loss weight divided by it), smooth (early stopping follows the mean
of the last n validations and keeps the middle one's weights), seed (the first model's seed), ema (decay of an exponential moving average of the weights,
validated and kept instead of the raw weights; torch.optim.swa_utils), ens (separately trained models, each stopped on its own, logits
averaged), members (one model of n_members trained jointly, one stopping point: what `model.members` does), emb
("linear" or "plr": the numeric tokenizer), k and sigma (plr's frequencies and their initial scale).

Every variant prints ROC-AUC and PR-AUC (average precision) on the validation rows; LightGBM, fitted on the same
fitting rows and stopped on the same early-stopping rows, and logistic regression are printed beside them.
"""
import copy
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np, torch
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from guimo.models.tabular import FTTransformer, TabularConfig, imbalance_loss, linear_warm_start
from guimo.data.tabular import stratified_split
from guimo.evaluate.baselines_tab import fit_lightgbm, fit_logistic
from sklearn.metrics import roc_auc_score, average_precision_score
torch.set_num_threads(1)
SET = sys.argv[1]; variants = json.loads(sys.argv[2]); folds = int(sys.argv[3]) if len(sys.argv) > 3 else 5
RUNS = Path(os.environ.get("RISK_RUNS", Path(__file__).resolve().parents[1] / "runs" / "bench-risk-2"))
base = f"{RUNS}/{SET}"
def load(k, s):
    z = np.load(f"{base}/fold{k}/data/{s}.npz"); return z["x_num"], z["x_cat"], z["y"]
def card(k):
    e = json.load(open(f"{base}/fold{k}/data/encoder.json"))
    from guimo.data.tabular import TableEncoder
    return TableEncoder.from_json(e)

def train_one(tr, es, v, seed, enc, pos_weight):
    torch.manual_seed(seed); rng = np.random.default_rng(seed)
    cfg = TabularConfig(n_num=enc.n_num, cat_cardinalities=enc.cardinalities, d_model=v.get("d", 64), n_layer=v.get("L", 3),
                        n_head=v.get("h", 4), dropout=v.get("drop", 0.1), attention_dropout=v.get("adrop"), ffn_dropout=v.get("fdrop", 0.0), n_members=v.get("members", 1), linear_skip=v.get("skip", False),
                        num_embedding=v.get("emb", "linear"), n_frequencies=v.get("k", 16), frequency_scale=v.get("sigma", 0.1))
    m = FTTransformer(cfg)
    if v.get("lrinit"):
        lr_warm_start(m, tr, enc)
    ema = None
    if v.get("ema"):  # Polyak/EMA weights: validated, kept and returned instead of the raw weights
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
        ema = AveragedModel(m, multi_avg_fn=get_ema_multi_avg_fn(v["ema"]), use_buffers=True)
    judged = lambda: ema.module if ema is not None else m
    ps = [p for p in m.parameters()]
    groups = [{"params": [p for p in ps if p.dim() >= 2], "weight_decay": v.get("wd", 1e-5)}, {"params": [p for p in ps if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=v.get("lr", 5e-4), betas=(0.9, 0.98))
    bs, maxs, warm, ee, pat = v.get("bs", 64), v.get("steps", 2000), v.get("warm", 50), v.get("ee", 10), v.get("pat", 20)
    xn, xc, y = [torch.from_numpy(a) for a in tr]
    en, ec, ey = [torch.from_numpy(a) for a in es]
    pool = np.arange(len(y))
    if v.get("over", 1) > 1:  # positives repeated: the same expected gradient as weighting them, less variance per batch
        pool = np.concatenate([pool] + [np.flatnonzero(y.numpy() == 1)] * (v["over"] - 1))
        pos_weight = pos_weight / v["over"]
    best, best_state, bad, order, pos = None, None, 0, rng.permutation(pool), 0
    window = []  # smooth: (metric, state) of the last validations; the window's mean decides, its middle state is kept
    sel = v.get("sel", "roc")
    def score():
        j = judged(); j.eval()
        with torch.no_grad(): z = j(en, ec)[:, 0].numpy() - np.log(pos_weight)
        if sel == "roc": return roc_auc_score(ey.numpy(), z)
        if sel == "pr": return average_precision_score(ey.numpy(), z)
        return -float(torch.nn.functional.binary_cross_entropy_with_logits(torch.from_numpy(z), ey.float()))
    if v.get("lrinit"):  # the warm start itself is a candidate
        best, best_state, bstep = score(), copy.deepcopy(judged().state_dict()), 0
    for step in range(maxs):
        lr = v.get("lr", 5e-4) * ((step + 1) / warm if step < warm else 0.1 + 0.45 * (1 + math.cos(math.pi * (step - warm) / (maxs - warm))))
        for g in opt.param_groups: g["lr"] = lr
        if pos + bs > len(order): order, pos = rng.permutation(pool), 0
        idx = order[pos:pos + bs]; pos += bs
        m.train(); loss = torch.stack([imbalance_loss(z, y[idx], task="binary", kind="weighted", pos_weight=pos_weight) for z in m.member_logits(xn[idx], xc[idx])]).mean()
        opt.zero_grad(); loss.backward(); torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0); opt.step()
        if ema is not None: ema.update_parameters(m)
        if (step + 1) % ee == 0:
            val, state, at = score(), copy.deepcopy(judged().state_dict()), step + 1
            if v.get("smooth", 1) > 1:
                window = (window + [(val, state, at)])[-v["smooth"]:]
                val, state, at = float(np.mean([w[0] for w in window])), *window[len(window) // 2][1:]
            if best is None or val > best: best, best_state, bad, bstep = val, state, 0, at
            else:
                bad += 1
                if bad >= pat: break
    m.load_state_dict(best_state); m.eval()
    return m, bstep

LR_FITS = {}
def lr_warm_start(m, rows, enc):
    """The model set to a logistic regression fitted on ``rows`` (as the baseline: one-hot categories, C=1), through
    ``guimo.models.tabular.linear_warm_start`` (what `model.linear_start` does in the scenario)."""
    key = id(rows[2])
    if key not in LR_FITS:
        LR_FITS[key] = fit_logistic("binary", enc.cardinalities, rows, c=1.0).model
    linear_warm_start(m, LR_FITS[key].coef_, LR_FITS[key].intercept_)

res = {}
BASE = {}
def baselines(k, tr, fit_, es, va, enc):
    if k not in BASE:
        lr_ = fit_logistic("binary", enc.cardinalities, tr, c=1.0).predict(va[0], va[1])
        gb = fit_lightgbm("binary", enc.n_num, len(enc.cardinalities), fit_, es).predict(va[0], va[1])
        BASE[k] = {n: (roc_auc_score(va[2], z), average_precision_score(va[2], z)) for n, z in (("lr", lr_), ("lgb", gb))}
    return BASE[k]
for name, v in variants.items():
    rocs, prs, lrs, steps, t0 = [], [], [], [], time.time()
    first = []  # with ens > 1: the first model alone (seed as a single run's), for the averaging's gain on the same draws
    for k in range(folds):
        tr, va = load(k, "train"), load(k, "val"); enc = card(k)
        y = tr[2]; a, b = stratified_split(y, (0.8, 0.2), seed=100 + k)
        fit_ = tuple(x[a] for x in tr); es = tuple(x[b] for x in tr)
        pw = float(np.sqrt((y[a] == 0).sum() / max(1, (y[a] == 1).sum())))
        zs = []
        for s in range(v.get("ens", 1)):
            m, bs_ = train_one(fit_, es, v, v.get("seed", 0) + s, enc, pw); steps.append(bs_)
            with torch.no_grad(): zs.append(m(torch.from_numpy(va[0]), torch.from_numpy(va[1]))[:, 0].numpy())
        z = np.mean(zs, 0)
        first.append((roc_auc_score(va[2], zs[0]), average_precision_score(va[2], zs[0])))
        rocs.append(roc_auc_score(va[2], z)); prs.append(average_precision_score(va[2], z))
        lrs.append(baselines(k, tr, fit_, es, va, enc))
    mean = lambda name, i: round(float(np.mean([b[name][i] for b in lrs])), 4)
    res[name] = dict(roc=round(float(np.mean(rocs)), 4), pr=round(float(np.mean(prs)), 4), lr_roc=mean("lr", 0), lr_pr=mean("lr", 1),
                     lgb_roc=mean("lgb", 0), lgb_pr=mean("lgb", 1), folds_roc=[round(r, 4) for r in rocs],
                     folds_pr=[round(r, 4) for r in prs], steps=steps, s=round(time.time() - t0),
                     first_roc=round(float(np.mean([f[0] for f in first])), 4), first_pr=round(float(np.mean([f[1] for f in first])), 4))
    print(name, json.dumps(res[name]), flush=True)
