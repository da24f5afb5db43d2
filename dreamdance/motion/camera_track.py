"""Camera trajectory from a driving video, on a CPU with OpenCV only (no weights).

The person is masked out and the camera is tracked from the background:

1. **Tracks.** Shi-Tomasi corners followed frame to frame by pyramidal Lucas-Kanade (KLT)
   with a forward-backward check; every frame is topped up with new corners away from the
   live tracks, so what the camera reveals is tracked as well. Only corners that stand out of
   the frame's own noise are taken (their structure-tensor strength against the noise level
   measured in the frame): noise gives no tracks, and so no invented motion. After a frame
   with too few tracks (blank, blurred, covered) the last good frame's tracks are looked for
   again for ``max_gap`` frames. Every feature carries a track id; two frames share the ids
   they hold.
2. **Rotation or translation.** Each frame is compared with the *anchor*, the last frame
   placed with a translation (frame 0 at first), so that parallax accumulates over frames that
   each moved little. A pure rotation is fitted first (homography RANSAC for the inliers, then
   the least-squares rotation of the bearing vectors); its residual is the parallax left once
   rotation is compensated. While that parallax (upper quartile, pixels) is below
   ``parallax_threshold``, or the rotation explains the matches better than an essential
   matrix by Torr's GRIC, the frame is a rotation (translation zero) about its reference:
   pans are common in dance videos and an essential matrix is degenerate for them. Otherwise
   ``cv2.findEssentialMat`` (USAC, ``ransac_threshold`` pixels) and ``cv2.recoverPose`` (with
   no limit on the distance of an inlier, so the far background counts) give the rotation
   and the direction of the translation, refined on the inliers by
   Levenberg-Marquardt on the robust Sampson error; the frame becomes the new anchor.
3. **One scale.** An essential matrix gives a unit translation. The inliers of each
   translating step are triangulated (``cv2.triangulatePoints``) and kept, in world
   coordinates, as a small map; the next step's unit-baseline depths of the tracks it shares
   with the map are matched to the map's depths (median of the ratios), so every step is in
   the scale of the first translating step, whose length is 1: **the overall scale is
   arbitrary** (the scene stage rescales the path to the scene, see
   :func:`dreamdance.camera.normalise_scale`). Frames first placed as rotations are re-placed
   by PnP against the map once one is built (a slow translation is then not left as a
   rotation). A video that only rotates has no map and zero translation throughout.
4. **Chain and standardise.** Relative poses are chained into world-to-camera poses and
   :func:`dreamdance.camera.standardise`-d, so the first pose is the identity.

Fewer than two frames raise :class:`~dreamdance.errors.InputError`. Everything else gives a
path, and a warning line for each thing it could not see:

- no frame with ``min_features`` background features (a plain backdrop, a noise-only video,
  masks that cover it): a still camera (identity poses);
- a frame that cannot be placed (too few shared tracks or inliers: a blank frame) is placed
  on the way between its neighbours once the path is re-attached; lost for more than
  ``max_gap`` frames (a cut), the frames hold the last pose and the path goes on from there;
- a step whose scale cannot be measured (too few map points in view) takes the median of
  the earlier step lengths.

Such frames have ``scale_confidence`` 0.

Coordinates follow :mod:`dreamdance.camera`: OpenCV axes, world-to-camera poses, K in pixels
with pixel centres at ``+0.5`` (OpenCV's feature positions, with centres at integers, are
shifted by half a pixel to match).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from dreamdance.motion.klt import background_masks, track_klt
from dreamdance.motion.track_chain import chain_path
from dreamdance.motion.track_result import SettingsCheck, Tracker, TrackResult, check_inputs, still
from dreamdance.settings import FromConf


@dataclass(frozen=True)
class TrackConfig(FromConf):
    """Settings of :func:`track_camera`; lengths are in pixels of the frames given.

    Attributes:
        max_corners: most tracks alive at once; each frame is topped up to it with new
            corners away from the live tracks, so areas the camera reveals are tracked too.
        quality: Shi-Tomasi quality level, relative to the frame's best corner (corners are
            taken best first, so a low level only fills up ``max_corners`` in weak texture).
        noise_margin: a corner is taken only where its strength (the structure tensor's
            smaller eigenvalue) is this many times what the frame's own sensor noise could
            give; flat or noise-only frames then give no features rather than random ones.
        min_distance: least distance between two detected corners.
        window: Lucas-Kanade window size.
        levels: Lucas-Kanade pyramid levels above the full image.
        fb_threshold: largest forward-backward KLT error kept.
        max_gap: a frame that cannot be tracked (blank, blurred, covered) is bridged: the
            tracks of the last good frame are looked for again up to this many frames later.
        ransac_threshold: RANSAC inlier threshold (epipolar distance, transfer error); half of
            it is the feature noise assumed by the model choice.
        parallax_threshold: least rotation-compensated parallax (upper quartile) for a frame
            to be placed with a translation.
        keyframe_overlap: a rotation-only frame becomes the reference of the next ones when
            it shares fewer than this fraction of its reference's tracks.
        min_inliers: fewest shared tracks and model inliers for a frame to be placed.
        min_features: fewest background features some frame must have; with none, the camera
            is taken as still (identity poses) and a warning says so.
        min_scale_points: fewest map points for measuring a step's scale.
        mask_dilation: the person masks are grown by this radius before features are taken;
            at least half the window keeps the person out of every tracking window.
    """

    max_corners: int
    quality: float
    noise_margin: float
    min_distance: float
    window: int
    levels: int
    fb_threshold: float
    max_gap: int
    ransac_threshold: float
    parallax_threshold: float
    keyframe_overlap: float
    min_inliers: int
    min_features: int
    min_scale_points: int
    mask_dilation: int

    conf_file = "camtrack/opencv"

    def __post_init__(self):
        check = SettingsCheck(self)
        check.integers({"max_corners": 1, "window": 3, "min_inliers": 8, "min_features": 1,
                        "min_scale_points": 1, "max_gap": 0, "levels": 0, "mask_dilation": 0})
        check.positive("min_distance", "fb_threshold", "ransac_threshold", "parallax_threshold")
        if not check.number("noise_margin") >= 0:
            raise check.fail("noise_margin", "must be >= 0")
        for key in ("quality", "keyframe_overlap"):
            if not 0.0 < check.number(key) < 1.0:
                raise check.fail(key, "must be in (0, 1)")


def track_camera(
    frames: np.ndarray,
    K: np.ndarray,
    masks: np.ndarray | None = None,
    cfg: TrackConfig | None = None,
    name: str = "driving",
) -> TrackResult:
    """The camera path of a video, from its background (see the module notes for the method).

    Args:
        frames: RGB frames. [T, H, W, 3] uint8
        K: intrinsics of every frame, in pixels (pixel centres at ``+0.5``). [3, 3]
        masks: True on the person (or anything else that moves by itself), whose features are
            ignored; None: use the whole frame. [T, H, W] bool
        cfg: settings; default :class:`TrackConfig`.
        name: the input as the user knows it, for error messages.

    Returns:
        The trajectory (first pose the identity, arbitrary overall scale) with per-frame
        inlier counts, scale confidences and warnings.

    Raises:
        InputError: fewer than 2 frames.
    """
    cfg = cfg or TrackConfig.from_conf()
    frames, K, masks = check_inputs(frames, K, masks, name)
    T, H, W = frames.shape[:3]
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])  # [T, H, W]
    background = background_masks(masks, T, H, W, cfg.mask_dilation)  # [T, H, W] uint8
    ids, pts = track_klt(gray, background, cfg)
    counts = np.array([len(i) for i in ids])
    if counts.max() < cfg.min_features:
        where = "the background" if masks is not None else "any frame"
        return still(T, K, W, H, [
            f"nothing to track: at most {counts.max()} features stand out of the noise on "
            f"{where} (need {cfg.min_features}); the camera is taken as still"])
    return chain_path(ids, pts, K, W, H, cfg)


class CameraTracker(Tracker):
    """The OpenCV camera tracker as a configured component:
    ``CameraTracker(**cfg)(frames, K, masks)``; keyword arguments are the fields of
    :class:`TrackConfig` (``conf/camtrack/opencv.yaml``)."""

    config = TrackConfig
    track = staticmethod(track_camera)
