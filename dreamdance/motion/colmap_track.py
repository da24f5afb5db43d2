"""Camera trajectory from a driving video with COLMAP (through pycolmap), on a CPU.

The second camera-tracking backend (``camtrack=colmap``); it returns the same
:class:`~dreamdance.motion.track_result.TrackResult` as the OpenCV tracker
(``camtrack=opencv``, :mod:`dreamdance.motion.camera_track`).

1. **Keyframes.** A video longer than ``max_keyframes`` sends only that many frames, evenly
   spaced (first and last included), through COLMAP; the frames between them get their poses
   by interpolation (slerp of the rotations, linear camera centres) and are said so in one log
   line, not in the warnings.
2. **Features and matches.** The keyframes (and their person masks, grown by
   ``mask_dilation`` pixels, as COLMAP mask files: no feature is taken on the person) are
   written to a temporary directory. SIFT features are extracted on the CPU into a COLMAP
   database with one shared PINHOLE camera holding the given intrinsics, and matched
   sequentially (each keyframe with ``overlap`` later ones, 1, 2, 4, 8, ... ahead; no loop
   detection); COLMAP verifies every pair geometrically (RANSAC).
3. **Sub-pixel tracks.** SIFT positions of one scene point differ from frame to frame by a
   tenth of a pixel or more, as much as the whole parallax of frames that barely moved. The
   matches of consecutive keyframes are followed into tracks, and each keypoint after a
   track's first is aligned to it by Lucas-Kanade (``refine_window``) in the database.
4. **Rotation or reconstruction.** On each keyframe's widest verified pair a pure rotation is
   fitted to the matches (:func:`~dreamdance.motion.two_view.rotation_fit`); what it leaves
   (upper quartile, pixels) is the parallax. While the largest parallax stays below
   ``parallax_threshold`` the camera only rotates (a pan, or yaw, pitch and roll about a fixed
   centre, common in dance videos) and the mapper is not run: an incremental mapper cannot
   start without a triangulation angle. Otherwise COLMAP's incremental mapper reconstructs
   the scene with the intrinsics held fixed; in the largest reconstruction every image is
   re-placed by robust PnP, observations off by more than ``max_error`` are dropped and all
   is bundle-adjusted again with a robust loss (twice; see :func:`refine`). If it registers
   fewer than ``min_registered`` of the keyframes the reconstruction is taken as failed and,
   with a warning, the rotation path is used instead.
5. **Rotation path.** Each keyframe is placed by the rotation fitted to COLMAP's verified
   matches with the previous keyframe (or, failing that, the nearest earlier one within
   ``overlap`` that has ``min_inliers`` rotation inliers), chained; the translation is zero
   and ``rotation_only`` is True throughout.
6. **Gaps and standardisation.** A keyframe COLMAP did not register (or could not chain) is
   not invented: it is interpolated between its registered neighbours, or held at the ends,
   with one warning per frame and ``scale_confidence`` 0. The poses are
   :func:`dreamdance.camera.standardise`-d: the first pose is the identity, and **the overall
   scale is arbitrary** (the scene stage rescales the path to the scene).

Fewer than two frames raise :class:`~dreamdance.errors.InputError`. No keyframe with
``min_features`` background features even at a quarter of ``peak_threshold`` (a plain
backdrop, or masks that cover it) gives a still camera (identity poses) and one warning, as
``camtrack=opencv`` does; a video with features but nothing that matches from frame to frame
(sensor noise only) holds the first pose on every frame, each with a warning.

When to use which: ``camtrack=opencv`` tracks frame to frame in a few hundredths of a second
per frame; ``camtrack=colmap`` matches every keyframe with several others and bundle-adjusts
them all together, which holds the directions of a long or hand-held path and copes with
large motions between frames (SIFT descriptors), at about 0.6 s per keyframe of 384 x 384 on
two cores.

Coordinates follow :mod:`dreamdance.camera`: OpenCV axes, world-to-camera poses, K in pixels
with pixel centres at ``+0.5``, which is also COLMAP's convention (the centre of the top-left
pixel is ``(0.5, 0.5)``), so K and the keypoints are used as they are. COLMAP is seeded
(seed 0); with several threads its results may still differ slightly from run to run.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dreamdance.camera import Trajectory, interpolate_poses, standardise
from dreamdance.motion.colmap_sfm import (
    Placed,
    extract,
    feature_counts,
    match,
    quiet,
    reconstruct,
    refine_keypoints,
    verified_pairs,
    write_inputs,
)
from dreamdance.motion.track_result import SettingsCheck, Tracker, TrackResult, check_inputs, still
from dreamdance.motion.two_view import rotation_fit
from dreamdance.settings import FromConf

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ColmapConfig(FromConf):
    """Settings of :func:`track_colmap`; lengths are in pixels of the frames given.

    Attributes:
        max_keyframes: most frames sent through COLMAP (evenly spaced, the first and last
            included); the others are interpolated. None: every frame.
        max_features: most SIFT features per frame.
        peak_threshold: SIFT's contrast threshold (COLMAP's default is 0.0067; lower finds
            more, weaker features).
        overlap: each keyframe is matched with ``overlap`` later ones, quadratically spaced
            (1, 2, 4, 8, ... keyframes ahead).
        refine_window: Lucas-Kanade window of the sub-pixel refinement of the matched
            keypoints along their tracks; None: SIFT's positions as they are.
        init_min_tri_angle: least triangulation angle (degrees) of the mapper's initial pair
            (COLMAP halves it twice when no pair qualifies).
        max_error: largest reprojection error of an observation kept after mapping; the
            robust PnP threshold and twice the robust loss scale of the last adjustment.
        min_registered: least fraction of the keyframes the largest reconstruction must
            register; below it the reconstruction is taken as failed and the rotation path
            used.
        parallax_threshold: rotation-compensated parallax (upper quartile over a keyframe's
            widest verified pair; the largest over the keyframes) below which the video is
            taken as a pure rotation and the mapper is not run.
        ransac_threshold: transfer error of a match that agrees with a fitted rotation.
        min_inliers: fewest rotation inliers for a keyframe to be chained in the rotation path.
        min_features: fewest background features some keyframe must have; a video with no such
            frame is refused.
        mask_dilation: the person masks are grown by this radius before features are taken
            (more than half of ``refine_window``).
        num_threads: CPU threads for COLMAP; None: the CPUs this process may use.
    """

    max_keyframes: int | None
    max_features: int
    peak_threshold: float
    overlap: int
    refine_window: int | None
    init_min_tri_angle: float
    max_error: float
    min_registered: float
    parallax_threshold: float
    ransac_threshold: float
    min_inliers: int
    min_features: int
    mask_dilation: int
    num_threads: int | None

    conf_file = "camtrack/colmap"

    def __post_init__(self):
        check = SettingsCheck(self)
        check.integers({"max_keyframes": 2, "max_features": 1, "overlap": 1, "refine_window": 3,
                        "min_inliers": 3, "min_features": 1, "mask_dilation": 0,
                        "num_threads": 1}, optional=("max_keyframes", "refine_window",
                                                     "num_threads"))
        check.positive("peak_threshold", "init_min_tri_angle", "max_error", "parallax_threshold",
                       "ransac_threshold")
        if not 0.0 < check.number("min_registered") <= 1.0:
            raise check.fail("min_registered", "must be in (0, 1]")


def track_colmap(
    frames: np.ndarray,
    K: np.ndarray,
    masks: np.ndarray | None = None,
    cfg: ColmapConfig | None = None,
    name: str = "driving",
) -> TrackResult:
    """The camera path of a video with COLMAP (see the module notes for the method).

    Args:
        frames: RGB frames. [T, H, W, 3] uint8
        K: intrinsics of every frame, in pixels (pixel centres at ``+0.5``). [3, 3]
        masks: True on the person (or anything else that moves by itself), where no feature
            is taken; None: use the whole frame. [T, H, W] bool
        cfg: settings; default :class:`ColmapConfig`.
        name: the input as the user knows it, for error messages.

    Returns:
        The trajectory (first pose the identity, arbitrary overall scale) with per-frame
        inlier counts (3D points seen, or rotation inliers; 0 for interpolated frames), scale
        confidences (1 for a keyframe placed by COLMAP or by the rotation path, 0 for one
        interpolated or held, the lower of its two keyframes for a frame between keyframes)
        and warnings (one per keyframe that could not be placed, and one if the
        reconstruction failed).

    Raises:
        InputError: fewer than 2 frames.
    """
    cfg = cfg or ColmapConfig.from_conf()
    frames, K, masks = check_inputs(frames, K, masks, name)
    T, H, W = frames.shape[:3]
    keys = keyframes(T, cfg.max_keyframes)
    if len(keys) < T:
        log.info("%s: %d of %d frames go through COLMAP; the others are interpolated", name,
                 len(keys), T)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dreamdance-colmap-") as tmp, quiet():
        tmp = Path(tmp)
        write_inputs(tmp, frames[keys], None if masks is None else masks[keys],
                     cfg.mask_dilation)
        database = tmp / "database.db"
        extract(database, tmp, K, cfg, cfg.peak_threshold)
        counts = feature_counts(database, len(keys))
        if counts.max() < cfg.min_features:  # low contrast: once more at a quarter
            log.info("%s: at most %d SIFT features per frame; extracting again at a quarter "
                     "of peak_threshold", name, counts.max())
            database = tmp / "database-low.db"
            extract(database, tmp, K, cfg, cfg.peak_threshold / 4)
            counts = feature_counts(database, len(keys))
        if counts.max() < cfg.min_features:
            where = "the background" if masks is not None else "any frame"
            return still(T, K, W, H, [
                f"nothing to track: at most {counts.max()} SIFT features on {where} (need "
                f"{cfg.min_features}); the camera is taken as still"])
        match(database, cfg)
        if cfg.refine_window is not None:
            refine_keypoints(database, frames[keys], cfg.refine_window)
        pairs = verified_pairs(database, len(keys))
        parallax = largest_parallax(pairs, K, cfg)
        warnings: list[str] = []
        if parallax < cfg.parallax_threshold:
            log.info("%s: parallax %.2f px < %.2f: the camera only rotates", name, parallax,
                     cfg.parallax_threshold)
            placed = rotation_path(pairs, len(keys), K, cfg)
        else:
            placed = reconstruct(database, tmp, len(keys), cfg)
            if placed.registered.sum() < cfg.min_registered * len(keys):
                warnings.append(
                    f"COLMAP registered {placed.registered.sum()} of {len(keys)} keyframes "
                    f"(parallax {parallax:.1f} px); the camera is taken as rotating about a "
                    "fixed centre")
                placed = rotation_path(pairs, len(keys), K, cfg)
    log.info("%s: COLMAP took %.1f s for %d keyframes", name, time.perf_counter() - start,
             len(keys))
    result = fill(keys, T, placed)
    traj = standardise(Trajectory(result.w2c, np.repeat(K[None], T, axis=0), W, H))
    return TrackResult(traj, result.inliers, result.confidence, result.rotation_only,
                       warnings + result.warnings)


def keyframes(T: int, max_keyframes: int | None) -> np.ndarray:
    """Indices of the frames sent through COLMAP: all, or ``max_keyframes`` evenly spaced with
    the first and last included. [N] int"""
    if max_keyframes is None or T <= max_keyframes:
        return np.arange(T)
    return np.unique(np.rint(np.linspace(0, T - 1, max_keyframes)).astype(int))


def largest_parallax(pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]],
                     K: np.ndarray, cfg: ColmapConfig) -> float:
    """The largest rotation-compensated parallax (pixels, upper quartile) over each keyframe's
    widest verified pair with ``cfg.min_inliers`` matches; 0 if there is none."""
    widest: dict[int, int] = {}
    for i, j in pairs:
        if len(pairs[(i, j)][0]) >= cfg.min_inliers and j > widest.get(i, i):
            widest[i] = j
    largest = 0.0
    for i, j in widest.items():
        _, err = rotation_fit(*pairs[(i, j)], K, cfg.ransac_threshold)
        largest = max(largest, float(np.percentile(err, 75)))
    return largest


def rotation_path(pairs: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]], n: int,
                  K: np.ndarray, cfg: ColmapConfig) -> Placed:
    """Keyframe rotations chained from pure-rotation fits to the verified matches; each
    keyframe from the nearest placed earlier one (within ``cfg.overlap``) with
    ``cfg.min_inliers`` rotation inliers. Translation zero."""
    placed = Placed.empty(n)
    placed.registered[0] = True
    placed.inliers[0] = max((len(p[0]) for (i, _), p in pairs.items() if i == 0), default=0)
    for j in range(1, n):
        for i in range(j - 1, max(-1, j - 1 - cfg.overlap), -1):
            if not placed.registered[i] or (i, j) not in pairs:
                continue
            R, err = rotation_fit(*pairs[(i, j)], K, cfg.ransac_threshold)
            inliers = int((err < cfg.ransac_threshold).sum())
            if inliers >= cfg.min_inliers:
                placed.w2c[j, :3, :3] = R @ placed.w2c[i, :3, :3]
                placed.registered[j], placed.inliers[j] = True, inliers
                break
    return placed


@dataclass
class _Filled:
    """Per-frame poses of the whole video."""

    w2c: np.ndarray  # [T, 4, 4]
    inliers: np.ndarray  # [T] int
    confidence: np.ndarray  # [T] float
    rotation_only: np.ndarray  # [T] bool
    warnings: list[str]


def fill(keys: np.ndarray, T: int, placed: Placed) -> _Filled:
    """Poses for every frame from the placed keyframes.

    A frame with a placed keyframe keeps its pose (confidence 1). Any other frame is
    interpolated between the nearest placed keyframes before and after it (slerp of the
    rotations, linear centres), or holds the nearest one at the ends; an unplaced keyframe is
    warned about, with confidence 0, and a frame between keyframes takes the lower confidence
    of its two keyframes.

    Args:
        keys: frame index of each keyframe, increasing. [N] int
        T: number of frames.
        placed: the keyframes' poses, ``registered`` where placed (at least one).
    """
    assert placed.registered.any()
    ok = np.flatnonzero(placed.registered)  # keyframes placed
    frames_ok = keys[ok]  # their frame indices
    key_conf = placed.registered.astype(np.float64)
    t = np.arange(T)
    after = np.clip(np.searchsorted(frames_ok, t), 0, len(ok) - 1)  # first placed >= t
    before = np.clip(np.searchsorted(frames_ok, t, side="right") - 1, 0, len(ok) - 1)
    span = frames_ok[after] - frames_ok[before]
    a = np.where(span > 0, (t - frames_ok[before]) / np.maximum(span, 1), 0.0)
    w2c = interpolate_poses(placed.w2c[ok][before], placed.w2c[ok][after], a)
    exact = np.isin(t, frames_ok)
    w2c[exact] = placed.w2c[ok][np.searchsorted(frames_ok, t[exact])]

    k_after = np.clip(np.searchsorted(keys, t), 0, len(keys) - 1)  # nearest keyframes
    k_before = np.clip(np.searchsorted(keys, t, side="right") - 1, 0, len(keys) - 1)
    confidence = np.minimum(key_conf[k_before], key_conf[k_after])
    inliers = np.zeros(T, np.int64)
    inliers[exact] = placed.inliers[ok][np.searchsorted(frames_ok, t[exact])]
    held = frames_ok[before] == frames_ok[after]
    rotation_only = np.where(held & ~exact, True,
                             placed.rotation_only[ok][before] & placed.rotation_only[ok][after])
    warnings = []
    for k in np.flatnonzero(~placed.registered):
        f = int(keys[k])
        if held[f]:
            how = f"pose held from frame {int(frames_ok[before[f]])}"
        else:
            how = (f"pose interpolated between frames {int(frames_ok[before[f]])} and "
                   f"{int(frames_ok[after[f]])}")
        warnings.append(f"frame {f}: COLMAP could not place it; {how}")
    return _Filled(w2c, inliers, confidence, rotation_only, warnings)


class ColmapTracker(Tracker):
    """The COLMAP camera tracker as a configured component:
    ``ColmapTracker(**cfg)(frames, K, masks)``; keyword arguments are the fields of
    :class:`ColmapConfig` (``conf/camtrack/colmap.yaml``)."""

    config = ColmapConfig
    track = staticmethod(track_colmap)
