import math

import pytest
import torch

from spark_rl.algos import (
    AGG_MODES,
    GRPOLossConfig,
    compute_advantages,
    grpo_loss,
    kl_estimate,
    policy_loss,
    zero_variance_group_mask,
)
from spark_rl.algos import (
    aggregate_loss as aggregate,
)

R = torch.tensor([1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 5.0])
G = torch.tensor([0, 0, 0, 0, 1, 1, 2])   # group 0: [1,0,0,0]; group 1 all equal; group 2 size 1


def test_grpo_by_hand():
    # group 0: mean 0.25, unbiased std = sqrt((0.5625 + 3*0.0625)/3) = sqrt(0.25) = 0.5
    a = compute_advantages("grpo", R, G, eps=0.0)
    assert torch.allclose(a[:4], torch.tensor([1.5, -0.5, -0.5, -0.5]))
    assert a[4:].tolist() == [0.0, 0.0, 0.0]          # all-equal group and group of one


def test_dr_grpo_and_rloo_by_hand():
    d = compute_advantages("dr_grpo", R, G)
    assert torch.allclose(d[:4], torch.tensor([0.75, -0.25, -0.25, -0.25]))
    r = compute_advantages("rloo", R, G)
    # sample 0: 1 - mean(0,0,0) = 1; sample 1: 0 - mean(1,0,0) = -1/3
    assert torch.allclose(r[:4], torch.tensor([1.0, -1 / 3, -1 / 3, -1 / 3]))
    assert r[4:].tolist() == [0.0, 0.0, 0.0]


def test_reinforce_pp_whitens_over_batch():
    a = compute_advantages("reinforce_pp_baseline", R, G)
    assert abs(a.mean().item()) < 1e-6 and abs(a.std().item() - 1.0) < 1e-4
    same = compute_advantages("reinforce_pp_baseline", torch.ones(4), torch.tensor([0, 0, 1, 1]))
    assert torch.isfinite(same).all() and same.abs().max() == 0


def test_estimator_errors():
    with pytest.raises(ValueError, match="unknown advantage"):
        compute_advantages("nope", R, G)
    with pytest.raises(ValueError, match="non-finite"):
        compute_advantages("grpo", torch.tensor([float("nan"), 1.0]), torch.tensor([0, 0]))
    assert compute_advantages("grpo", torch.tensor([]), torch.tensor([], dtype=torch.long)).numel() == 0


def test_zero_variance_mask():
    assert zero_variance_group_mask(R, G).tolist() == [False] * 4 + [True, True, True]


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([math.log(0.5)]), torch.tensor([math.log(0.25)])
    # log(p/q) = log 2
    assert kl_estimate(logp, ref, "k1").item() == pytest.approx(math.log(2))
    assert kl_estimate(logp, ref, "k2").item() == pytest.approx(0.5 * math.log(2) ** 2)
    assert kl_estimate(logp, ref, "k3").item() == pytest.approx(0.5 - math.log(0.5) - 1)   # q/p - log(q/p) - 1
    big = kl_estimate(torch.tensor([0.0]), torch.tensor([-100.0]), "k3", clamp=10.0)
    assert big.item() == pytest.approx(math.exp(-10) + 10 - 1)   # log-ratio clamped to 10 first
    with pytest.raises(ValueError):
        kl_estimate(logp, ref, "k9")


LOSS = torch.tensor([[1.0, 2.0, 3.0], [4.0, 0.0, 0.0]])
MASK = torch.tensor([[1, 1, 1], [1, 0, 0]])


@pytest.mark.parametrize("mode,expected", [
    ("token-mean", 10 / 4), ("seq-mean-token-mean", (2 + 4) / 2), ("seq-mean-token-sum", 10 / 2),
    ("seq-mean-token-sum-norm", 10 / (2 * 3))])
def test_aggregation_by_hand(mode, expected):
    assert aggregate(LOSS, MASK, mode).item() == pytest.approx(expected)


@pytest.mark.parametrize("mode", AGG_MODES)
def test_aggregation_splits_with_global_denominators(mode):
    torch.manual_seed(0)
    loss = torch.randn(6, 5)
    mask = (torch.rand(6, 5) > 0.3).int()
    mask[:, 0] = 1
    full = aggregate(loss, mask, mode)
    kw = dict(num_tokens=float(mask.sum()), num_seqs=6.0, norm_len=5.0)
    parts = sum(aggregate(loss[i:i + 2], mask[i:i + 2], mode, **kw) for i in range(0, 6, 2))
    assert parts.item() == pytest.approx(full.item(), abs=1e-6)


def test_policy_loss_clipping_by_hand():
    old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5]]))      # ratios 1.5 and 0.5
    mask = torch.ones(1, 2)
    pos = torch.ones(1, 2)
    loss, m = policy_loss(logp, old, pos, mask, clip_low=0.2)
    # A=+1: max(-1.5, -1.2) = -1.2 (clipped); max(-0.5, -0.8) = -0.5 (unclipped) -> mean -0.85
    assert loss.item() == pytest.approx(-0.85) and m["clip_frac"] == pytest.approx(0.5)
    loss, m = policy_loss(logp, old, -pos, mask, clip_low=0.2)
    # A=-1: max(1.5, 1.2) = 1.5; max(0.5, 0.8) = 0.8 (clipped) -> mean 1.15
    assert loss.item() == pytest.approx(1.15) and m["clip_frac"] == pytest.approx(0.5)
    loss, _ = policy_loss(logp, old, pos, mask, clip_low=0.2, clip_high=0.6)
    # clip-higher: ratio 1.5 within 1.6 -> -1.5; -> mean -1.0
    assert loss.item() == pytest.approx(-1.0)


def test_grpo_loss_adds_kl_term():
    logp = torch.tensor([[-1.0, -2.0]], requires_grad=True)
    ref = torch.tensor([[-1.5, -2.0]])
    mask = torch.ones(1, 2)
    adv = torch.tensor([0.5])
    cfg = GRPOLossConfig(kl_coef=0.1)
    loss, m = grpo_loss(logp, None, ref, adv, mask, cfg)
    kl = kl_estimate(logp.detach(), ref, "k3").mean().item()
    assert m["kl"] == pytest.approx(kl)
    assert loss.item() == pytest.approx(-0.5 + 0.1 * kl)     # ratio 1 -> pg = -A
    loss.backward()
    assert torch.isfinite(logp.grad).all()


def test_all_masked_is_finite_zero():
    logp = torch.zeros(2, 3, requires_grad=True)
    loss, m = grpo_loss(logp, None, torch.zeros(2, 3), torch.ones(2), torch.zeros(2, 3), GRPOLossConfig())
    assert loss.item() == 0.0 and all(math.isfinite(v) for v in m.values())
