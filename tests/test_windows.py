import pytest
import torch

from dreamdance.animate.windows import aggregate, blend_weights, window_slices

CASES = [(13, 4, 1), (13, 4, 2), (12, 6, 4), (11, 4, 1), (20, 13, 4), (9, 3, 0), (6, 2, 0)]


@pytest.mark.parametrize("n, window, overlap", CASES)
def test_slices_cover_with_overlap(n, window, overlap):
    slices = window_slices(n, window, overlap)
    assert slices[0].start == 0 and slices[-1].stop == n
    assert all(s.stop - s.start == window for s in slices)
    for a, b in zip(slices, slices[1:], strict=False):
        assert a.start < b.start <= a.stop  # no gap, always moving on
        assert a.stop - b.start >= overlap
    covered = torch.zeros(n, dtype=torch.bool)
    for s in slices:
        covered[s] = True
    assert covered.all()


def test_slices_stride_and_end_alignment():
    assert window_slices(11, 4, 1) == [slice(0, 4), slice(3, 7), slice(6, 10), slice(7, 11)]
    assert window_slices(10, 4, 1) == [slice(0, 4), slice(3, 7), slice(6, 10)]


@pytest.mark.parametrize("n, window", [(1, 4), (5, 5), (3, 13)])
def test_short_video_is_one_window(n, window):
    assert window_slices(n, window, 2 if window > 2 else 0) == [slice(0, n)]


@pytest.mark.parametrize("n, window, overlap", [(10, 4, 4), (10, 4, -1), (10, 0, 0), (0, 4, 1)])
def test_bad_windows_raise(n, window, overlap):
    with pytest.raises(ValueError):
        window_slices(n, window, overlap)


@pytest.mark.parametrize("n, window, overlap", CASES)
def test_weights_sum_to_one_inside_windows(n, window, overlap):
    slices = window_slices(n, window, overlap)
    weights = blend_weights(slices, n)
    assert weights.shape == (len(slices), n)
    torch.testing.assert_close(weights.sum(0), torch.ones(n))
    inside = torch.zeros_like(weights, dtype=torch.bool)
    for i, s in enumerate(slices):
        inside[i, s] = True
    assert (weights[inside] > 0).all() and (weights[~inside] == 0).all()


def test_two_windows_cross_fade_linearly():
    weights = blend_weights(window_slices(6, 4, 2), 6)
    expected = torch.tensor([[1, 1, 2 / 3, 1 / 3, 0, 0], [0, 0, 1 / 3, 2 / 3, 1, 1]])
    torch.testing.assert_close(weights, expected.float())


@pytest.mark.parametrize("n, window, overlap", CASES)
def test_aggregate_of_identical_values_returns_them(n, window, overlap):
    full = torch.randn(2, n, 3, 4, 5, generator=torch.Generator().manual_seed(n))
    slices = window_slices(n, window, overlap)
    out = aggregate([full[:, s] for s in slices], slices, blend_weights(slices, n))
    torch.testing.assert_close(out, full)


def test_aggregate_blends_within_the_values():
    slices = window_slices(13, 4, 2)
    predictions = [torch.full((1, 4, 1, 1, 1), float(i)) for i in range(len(slices))]
    out = aggregate(predictions, slices, blend_weights(slices, 13)).flatten()
    assert out[0] == 0 and out[-1] == len(slices) - 1
    assert (out[1:] >= out[:-1]).all()  # a monotone ramp from window to window
