"""What a camera tracker gives (:class:`TrackResult`), the checks of its inputs, and the
configured-component form every tracker takes (:class:`Tracker`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dreamdance.camera import Trajectory
from dreamdance.errors import InputError


@dataclass(frozen=True, eq=False)
class TrackResult:
    """What :func:`track_camera` found.

    Attributes:
        trajectory: the camera path, standardised (first pose the identity), arbitrary scale.
        inliers: per frame, the correspondences that agree with the model that placed it
            (rotation, essential matrix or PnP); for frame 0 the number of its background
            features; 0 for a frame that could not be placed. [T]
        scale_confidence: per frame, in [0, 1], the fraction of map points whose depth ratio
            is within 10% of its step's scale. 1 for frame 0, the step that sets the scale and
            rotations before any translation; a frame placed by PnP, or as a rotation, has the
            confidence of the step it depends on; 0 where the scale was assumed or the pose
            held. [T]
        rotation_only: per frame, whether it was placed as a pure rotation (no translation
            from its reference; frame 0, and frames held or bridged: True). [T]
        warnings: one line per frame held or bridged, or whose scale was assumed; one line
            for a video with nothing to track.
    """

    trajectory: Trajectory
    inliers: np.ndarray  # [T] int
    scale_confidence: np.ndarray  # [T] float
    rotation_only: np.ndarray  # [T] bool
    warnings: list[str]


def check_inputs(frames: np.ndarray, K: np.ndarray, masks: np.ndarray | None,
                 name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """A camera tracker's inputs as arrays, checked (see :func:`track_camera`).

    Returns:
        frames [T, H, W, 3] uint8, K [3, 3] float64, masks [T, H, W] bool or None.

    Raises:
        InputError: fewer than 2 frames.
        ValueError: shapes or types a caller got wrong.
    """
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be [T, H, W, 3] uint8, got {frames.shape} {frames.dtype}")
    T, H, W = frames.shape[:3]
    if T < 2:
        raise InputError(name, f"a camera path needs at least 2 frames, got {T}")
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (3, 3) or not np.isfinite(K).all() or K[0, 0] <= 0 or K[1, 1] <= 0:
        raise ValueError(f"K must be a finite [3, 3] with positive focal lengths, got shape "
                         f"{K.shape}")
    if masks is not None:
        masks = np.asarray(masks, dtype=bool)
        if masks.shape != (T, H, W):
            raise ValueError(f"masks must be [{T}, {H}, {W}] bool, got {masks.shape}")
    return frames, K, masks


def still(T: int, K: np.ndarray, W: int, H: int, warnings: list[str]) -> TrackResult:
    """The result for a video with nothing to track: identity poses, no inliers, confidence
    0, with the ``warnings`` that say why."""
    traj = Trajectory(np.repeat(np.eye(4)[None], T, 0), np.repeat(K[None], T, 0), W, H)
    return TrackResult(traj, np.zeros(T, np.int64), np.zeros(T), np.ones(T, bool), warnings)


class Tracker:
    """A camera tracker as a configured component: ``Tracker(**settings)(frames, K, masks)``.

    A subclass names its settings' dataclass (``config``, with ``config.from_conf(**changes)``)
    and its function (``track(frames, K, masks, cfg, name=...) -> TrackResult``); keyword
    arguments are fields of ``config`` that differ from the tracker's ``conf/camtrack/*.yaml``
    (Hydra gives them all).
    """

    config: type
    track: Callable[..., TrackResult]

    def __init__(self, **settings):
        self.cfg = self.config.from_conf(**settings)

    def __call__(self, frames: np.ndarray, K: np.ndarray, masks: np.ndarray | None = None,
                 name: str = "driving") -> TrackResult:
        return type(self).track(frames, K, masks, self.cfg, name=name)

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.cfg, f.name)!r}"
                           for f in dataclasses.fields(self.cfg))
        return f"{type(self).__name__}({fields})"


class SettingsCheck:
    """Checks of a tracker's settings (``camtrack.KEY``); each failure is an
    :class:`~dreamdance.errors.InputError` naming ``camtrack.KEY=VALUE``."""

    def __init__(self, settings: object):
        self.settings = settings

    def fail(self, key: str, problem: str) -> InputError:
        return InputError(f"camtrack.{key}={getattr(self.settings, key)}", problem)

    def number(self, key: str) -> float:
        """The setting as a float; a bool, text or non-finite value fails."""
        value = getattr(self.settings, key)
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                or not np.isfinite(value):
            raise self.fail(key, "must be a finite number")
        return float(value)

    def integers(self, least: dict[str, int], optional: tuple[str, ...] = ()) -> None:
        """Each key an integer of at least its value (or None, for the ``optional`` ones)."""
        for key, low in least.items():
            if key in optional and getattr(self.settings, key) is None:
                continue
            value = self.number(key)
            if value != int(value) or value < low:
                raise self.fail(key, f"must be an integer >= {low}"
                                + (" or null" if key in optional else ""))

    def positive(self, *keys: str) -> None:
        for key in keys:
            if not self.number(key) > 0:
                raise self.fail(key, "must be positive")
