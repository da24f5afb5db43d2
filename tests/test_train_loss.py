"""The training objective's pieces: latent mask, mask weighting, v-loss, black boxes, dropout."""

import pytest
import torch

from dreamdance.train.dropout import keep_masks
from dreamdance.train.loss import fill_boxes, latent_mask, loss_weights, v_loss


def test_latent_mask_pools_the_causal_frame_groups():
    mask = torch.zeros(1, 9, 16, 16)
    mask[0, 0, 0, 0] = 1  # frame 0 -> latent 0, cell (0, 0)
    mask[0, 6, 15, 15] = 1  # frames 5..8 -> latent 2, cell (3, 3) of a 4x4 grid
    out = latent_mask(mask, frames=3, height=4, width=4)
    assert out.shape == (1, 3, 1, 4, 4)
    expected = torch.zeros(1, 3, 1, 4, 4)
    expected[0, 0, 0, 0, 0] = 1
    expected[0, 2, 0, 3, 3] = 1
    torch.testing.assert_close(out, expected)
    with pytest.raises(ValueError, match="do not map"):
        latent_mask(torch.zeros(1, 8, 16, 16), 3, 4, 4)


def test_mask_weighting_acts_only_inside_the_mask():
    torch.manual_seed(0)
    target = torch.randn(2, 3, 4, 4, 4)
    mask = torch.zeros(2, 3, 1, 4, 4)
    mask[..., :2, :] = 1  # the top half is inside
    inside, outside = target.clone(), target.clone()
    inside[..., :2, :] += 1  # an error of 1 inside only
    outside[..., 2:, :] += 1  # the same error outside only
    w1 = loss_weights(mask, 1.0)
    w4 = loss_weights(mask, 4.0)
    torch.testing.assert_close(v_loss(inside, target, w1), torch.tensor(0.5))  # plain MSE
    torch.testing.assert_close(v_loss(inside, target, w4), torch.tensor(4 / 5))
    torch.testing.assert_close(v_loss(outside, target, w4), torch.tensor(1 / 5))
    torch.testing.assert_close(v_loss(target, target, w4), torch.tensor(0.0))
    with pytest.raises(ValueError, match="mask weight"):
        loss_weights(mask, 0.0)


def test_v_loss_is_cogvideox_weighted_x0_loss():
    """(x̂0 − x0)² / (1 − ᾱ) with x̂0 from the predicted velocity equals (v̂ − v)²."""
    torch.manual_seed(1)
    x0, noise, v_hat = torch.randn(3, 3, 1, 4, 2, 2)
    a = torch.tensor([0.9, 0.5, 0.02]).view(3, 1, 1, 1, 1)
    xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
    v = a.sqrt() * noise - (1 - a).sqrt() * x0
    x0_hat = a.sqrt() * xt - (1 - a).sqrt() * v_hat
    reference = ((x0_hat - x0).square() / (1 - a)).mean()
    torch.testing.assert_close(v_loss(v_hat, v, torch.ones(1)), reference)


def test_fill_boxes_blackens_only_the_boxes():
    video = torch.rand(1, 2, 3, 8, 8) + 0.1
    boxes = torch.zeros(1, 2, 8, 8)
    boxes[0, 1, 2:5, 3:6] = 1
    out = fill_boxes(video, boxes)
    assert (out[0, 1, :, 2:5, 3:6] == 0).all()
    inside = boxes.bool().unsqueeze(2).expand_as(video)
    torch.testing.assert_close(out[~inside], video[~inside])


@pytest.mark.parametrize("p_pose,p_character", [(0.1, 0.1), (0.3, 0.0), (1.0, 0.5)])
def test_condition_dropout_rate(p_pose, p_character):
    g = torch.Generator().manual_seed(0)
    keep_pose, keep_character = keep_masks(20000, p_pose, p_character, g)
    assert set(keep_pose.unique().tolist()) <= {0.0, 1.0}
    assert abs((1 - keep_pose.mean().item()) - p_pose) < 0.01
    assert abs((1 - keep_character.mean().item()) - p_character) < 0.01
    # the two conditions are dropped independently
    both = ((1 - keep_pose) * (1 - keep_character)).mean().item()
    assert abs(both - p_pose * p_character) < 0.01
    with pytest.raises(ValueError, match="drop_pose"):
        keep_masks(4, 1.5, 0.1, g)
