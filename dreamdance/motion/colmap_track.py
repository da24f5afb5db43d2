"""Camera trajectory from a driving video with COLMAP (through pycolmap), on a CPU.

The second camera-tracking backend (``camtrack=colmap``); it returns the same
:class:`~dreamdance.motion.camera_track.TrackResult` as the OpenCV tracker
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
   fitted to the matches (:func:`~dreamdance.motion.camera_track.rotation_fit`); what it leaves
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

import contextlib
import dataclasses
import logging
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pycolmap

from dreamdance.camera import Trajectory, interpolate_poses, standardise
from dreamdance.errors import InputError
from dreamdance.motion.camera_track import (
    TrackResult,
    background_masks,
    check_inputs,
    rotation_fit,
    still,
)

log = logging.getLogger(__name__)

SEED = 0


@dataclass(frozen=True)
class ColmapConfig:
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

    max_keyframes: int | None = 60
    max_features: int = 4096
    peak_threshold: float = 0.0067
    overlap: int = 10
    refine_window: int | None = 21
    init_min_tri_angle: float = 4.0
    max_error: float = 1.0
    min_registered: float = 0.5
    parallax_threshold: float = 1.0
    ransac_threshold: float = 1.0
    min_inliers: int = 20
    min_features: int = 30
    mask_dilation: int = 16
    num_threads: int | None = None

    def __post_init__(self):
        def fail(key: str, problem: str) -> InputError:
            return InputError(f"camtrack.{key}={getattr(self, key)}", problem)

        def number(key: str) -> float:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) \
                    or not np.isfinite(value):
                raise fail(key, "must be a finite number")
            return float(value)

        optional = ("max_keyframes", "refine_window", "num_threads")
        for key, least in (("max_keyframes", 2), ("max_features", 1), ("overlap", 1),
                           ("refine_window", 3), ("min_inliers", 3), ("min_features", 1),
                           ("mask_dilation", 0), ("num_threads", 1)):
            if key in optional and getattr(self, key) is None:
                continue
            value = number(key)
            if value != int(value) or value < least:
                raise fail(key, f"must be an integer >= {least}"
                           + (" or null" if key in optional else ""))
        for key in ("peak_threshold", "init_min_tri_angle", "max_error", "parallax_threshold",
                    "ransac_threshold"):
            if not number(key) > 0:
                raise fail(key, "must be positive")
        if not 0.0 < number("min_registered") <= 1.0:
            raise fail("min_registered", "must be in (0, 1]")


class ColmapTracker:
    """The COLMAP camera tracker as a configured component:
    ``ColmapTracker(**cfg)(frames, K, masks)``.

    Keyword arguments are the fields of :class:`ColmapConfig` (``conf/camtrack/colmap.yaml``).
    """

    def __init__(self, **settings):
        self.cfg = ColmapConfig(**settings)

    def __call__(self, frames: np.ndarray, K: np.ndarray, masks: np.ndarray | None = None,
                 name: str = "driving") -> TrackResult:
        return track_colmap(frames, K, masks, self.cfg, name=name)

    def __repr__(self) -> str:
        fields = ", ".join(f"{f.name}={getattr(self.cfg, f.name)!r}"
                           for f in dataclasses.fields(self.cfg))
        return f"ColmapTracker({fields})"


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
    cfg = cfg or ColmapConfig()
    frames, K, masks = check_inputs(frames, K, masks, name)
    T, H, W = frames.shape[:3]
    keys = keyframes(T, cfg.max_keyframes)
    if len(keys) < T:
        log.info("%s: %d of %d frames go through COLMAP; the others are interpolated", name,
                 len(keys), T)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dreamdance-colmap-") as tmp, _quiet():
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


@contextlib.contextmanager
def _quiet():
    """COLMAP's log (glog, on stderr) limited to errors while inside."""
    before = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = pycolmap.logging.ERROR
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = before


def _threads(cfg: ColmapConfig) -> int:
    """``num_threads``, else the CPUs this process may use (all of them where the system does
    not say)."""
    if cfg.num_threads:
        return cfg.num_threads
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# COLMAP: inputs, features, matches, mapper
# ---------------------------------------------------------------------------------------------


def image_name(i: int) -> str:
    """File name of keyframe ``i``; names sort in frame order, as sequential matching needs."""
    return f"{i:06d}.png"


def write_inputs(root: Path, frames: np.ndarray, masks: np.ndarray | None,
                 dilation: int) -> None:
    """Frames as ``root/images/<name>`` and, with masks, COLMAP mask files
    ``root/masks/<name>.png`` (0 on the person grown by ``dilation``: no feature there).

    Args:
        frames: RGB frames. [N, H, W, 3] uint8
        masks: True on the person, or None. [N, H, W] bool
    """
    (root / "images").mkdir()
    for i, frame in enumerate(frames):
        _write(root / "images" / image_name(i), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if masks is None:
        return
    (root / "masks").mkdir()
    allowed = background_masks(masks, *masks.shape, dilation)  # [N, H, W] uint8, 255 = use
    for i, m in enumerate(allowed):
        _write(root / "masks" / f"{image_name(i)}.png", m)


def _write(path: Path, image: np.ndarray) -> None:
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def extract(database: Path, root: Path, K: np.ndarray, cfg: ColmapConfig,
            peak_threshold: float) -> None:
    """SIFT features of ``root/images`` (outside ``root/masks`` if there) into a new
    ``database``, with one shared PINHOLE camera holding ``K``."""
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = "PINHOLE"
    reader.camera_params = ",".join(repr(float(v)) for v in (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
    if (root / "masks").is_dir():
        reader.mask_path = str(root / "masks")
    options = pycolmap.FeatureExtractionOptions()
    options.num_threads = _threads(cfg)
    options.use_gpu = False
    options.sift.max_num_features = cfg.max_features
    options.sift.peak_threshold = peak_threshold
    pycolmap.extract_features(database, root / "images", camera_mode=pycolmap.CameraMode.SINGLE,
                              reader_options=reader, extraction_options=options,
                              device=pycolmap.Device.cpu)


def feature_counts(database: Path, n: int) -> np.ndarray:
    """Features per keyframe. [n] int"""
    counts = np.zeros(n, np.int64)
    db = pycolmap.Database.open(database)
    try:
        for image in db.read_all_images():
            counts[_index(image.name)] = db.num_keypoints_for_image(image.image_id)
    finally:
        db.close()
    return counts


def _index(name: str) -> int:
    return int(Path(name).stem)


def match(database: Path, cfg: ColmapConfig) -> None:
    """Sequential SIFT matching on the CPU (``cfg.overlap``, quadratic, no loop detection),
    each pair verified by COLMAP."""
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = _threads(cfg)
    matching.use_gpu = False
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = cfg.overlap
    pairing.quadratic_overlap = True
    pairing.loop_detection = False
    pairing.num_threads = _threads(cfg)
    verification = pycolmap.TwoViewGeometryOptions()
    verification.ransac.random_seed = SEED
    pycolmap.set_random_seed(SEED)
    pycolmap.match_sequential(database, matching_options=matching, pairing_options=pairing,
                              verification_options=verification, device=pycolmap.Device.cpu)


def verified_pairs(database: Path, n: int) -> dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]:
    """COLMAP's verified matches between keyframes ``i < j``, as pixels of both.

    Returns:
        ``{(i, j): (p_i [M, 2], p_j [M, 2])}``, pixel centres at ``+0.5``.
    """
    db = pycolmap.Database.open(database)
    try:
        index = {image.image_id: _index(image.name) for image in db.read_all_images()}
        points = {image_id: db.read_keypoints(image_id)[:, :2].astype(np.float64)
                  for image_id in index}
        pairs = {}
        for pair_id, geometry in zip(*db.read_two_view_geometries(), strict=True):
            id1, id2 = pycolmap.pair_id_to_image_pair(pair_id)
            m = np.asarray(geometry.inlier_matches).reshape(-1, 2)
            if len(m) == 0:
                continue
            i, j = index[id1], index[id2]
            p1, p2 = points[id1][m[:, 0]], points[id2][m[:, 1]]
            pairs[(i, j) if i < j else (j, i)] = (p1, p2) if i < j else (p2, p1)
    finally:
        db.close()
    assert all(0 <= i < j < n for i, j in pairs), sorted(pairs)
    return pairs


def refine_keypoints(database: Path, frames: np.ndarray, window: int) -> None:
    """Sub-pixel refinement of the matched keypoints along their tracks, in the database.

    Tracks are followed through the verified matches of consecutive keyframes. Every keypoint
    of a track after its first is aligned by Lucas-Kanade (a ``window`` x ``window`` patch,
    starting from its SIFT position) to the track's first keypoint, and moved there when the
    alignment converges, comes back within 0.1 pixel and moves it by less than a pixel.

    Args:
        frames: the keyframes, RGB. [N, H, W, 3] uint8
    """
    gray = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])  # [N, H, W]
    lk = dict(winSize=(window, window), maxLevel=0, flags=cv2.OPTFLOW_USE_INITIAL_FLOW,
              criteria=(cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 0.001))
    db = pycolmap.Database.open(database)
    try:
        ids = {_index(image.name): image.image_id for image in db.read_all_images()}
        keypoints = [db.read_keypoints(ids[i]) for i in range(len(frames))]  # [M_i, 6]
        first = [np.full(len(k), i) for i, k in enumerate(keypoints)]  # track's first frame
        origin = [np.arange(len(k)) for k in keypoints]  # and keypoint there
        for j in range(1, len(frames)):
            if db.exists_two_view_geometry(ids[j - 1], ids[j]):
                m = _inlier_matches(db, ids[j - 1], ids[j])
                first[j][m[:, 1]] = first[j - 1][m[:, 0]]
                origin[j][m[:, 1]] = origin[j - 1][m[:, 0]]
            moved = keypoints[j].copy()
            for r in np.unique(first[j][first[j] < j]):
                sel = np.flatnonzero(first[j] == r)
                src = keypoints[r][origin[j][sel], :2] - 0.5  # OpenCV: pixel centres at 0
                guess = keypoints[j][sel, :2] - 0.5
                out, ok = _align(gray[r], gray[j], src, guess, lk)
                moved[sel[ok], :2] = out[ok] + 0.5
            db.update_keypoints(ids[j], moved)
    finally:
        db.close()


def _align(a: np.ndarray, b: np.ndarray, src: np.ndarray, guess: np.ndarray,
           lk: dict) -> tuple[np.ndarray, np.ndarray]:
    """Lucas-Kanade of points ``src`` of image ``a`` into image ``b`` from ``guess``, with a
    forward-backward check. [N, 2] x 2 -> positions [N, 2] float32, which to keep [N] bool"""
    src, guess = src.astype(np.float32).reshape(-1, 1, 2), guess.astype(np.float32)
    out, st, _ = cv2.calcOpticalFlowPyrLK(a, b, src, guess.reshape(-1, 1, 2).copy(), **lk)
    back, st_back, _ = cv2.calcOpticalFlowPyrLK(b, a, out.copy(), src.copy(), **lk)
    out = out.reshape(-1, 2)
    ok = (st.ravel() == 1) & (st_back.ravel() == 1) \
        & (np.linalg.norm(back.reshape(-1, 2) - src.reshape(-1, 2), axis=1) < 0.1) \
        & (np.linalg.norm(out - guess, axis=1) < 1.0)
    return out, ok


def _inlier_matches(db: pycolmap.Database, id1: int, id2: int) -> np.ndarray:
    """Verified matches of two images as keypoint indices ``[M, 2]`` (first column ``id1``)."""
    return np.asarray(db.read_two_view_geometry(id1, id2).inlier_matches).reshape(-1, 2)


def reconstruct(database: Path, root: Path, n: int, cfg: ColmapConfig) -> _Placed:
    """Incremental mapping with the intrinsics held fixed; the poses of the largest
    reconstruction, :func:`refine`-d, per keyframe."""
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = _threads(cfg)
    options.random_seed = SEED
    options.extract_colors = False
    options.ba_refine_focal_length = False
    options.ba_refine_principal_point = False
    options.ba_refine_extra_params = False
    options.mapper.abs_pose_refine_focal_length = False
    options.mapper.abs_pose_refine_extra_params = False
    options.mapper.init_min_tri_angle = cfg.init_min_tri_angle
    (root / "sparse").mkdir()
    pycolmap.set_random_seed(SEED)
    models = pycolmap.incremental_mapping(database, root / "images", root / "sparse",
                                          options=options)
    placed = _Placed.empty(n)
    if not models:
        return placed
    model = max(models.values(), key=lambda r: r.num_reg_images())
    refine(model, cfg)
    for image in model.images.values():
        if not image.has_pose:
            continue
        i = _index(image.name)
        placed.w2c[i, :3] = image.cam_from_world().matrix()
        placed.registered[i] = True
        placed.inliers[i] = image.num_points3D
    placed.rotation_only[:] = False
    log.info("COLMAP registered %d of %d keyframes in the largest of %d reconstructions",
             placed.registered.sum(), n, len(models))
    return placed


def refine(model: pycolmap.Reconstruction, cfg: ColmapConfig, rounds: int = 2) -> None:
    """Clean and re-adjust a reconstruction, in place; ``rounds`` times:

    1. every registered image is re-placed by robust PnP (LO-RANSAC, ``cfg.max_error``
       pixels) against the current points, so that one image no longer bends to fit a few bad
       points (a wrong match along an epipolar line, triangulated across frames that barely
       moved, can hold two cameras in a wrong place under the mapper's squared loss);
    2. observations farther than ``cfg.max_error`` from their point, and points seen at too
       small an angle (COLMAP's 1.5 degrees), are dropped;
    3. a bundle adjustment of every image and point with the intrinsics fixed, a robust
       (Cauchy, ``cfg.max_error / 2`` pixels) loss and tight convergence.
    """
    camera = next(iter(model.cameras.values()))
    for _ in range(rounds):
        for image_id in model.reg_image_ids():
            _relocalise(model, model.image(image_id), camera, cfg.max_error)
        pycolmap.ObservationManager(model).filter_all_points3D(cfg.max_error, 1.5)
        _bundle_adjust(model, cfg)


def _relocalise(model: pycolmap.Reconstruction, image: pycolmap.Image, camera: pycolmap.Camera,
                max_error: float) -> None:
    """Robust PnP of ``image`` against its points; its pose is replaced when at least half of
    them agree."""
    seen = [p for p in image.points2D if p.has_point3D()]
    if len(seen) < 6:
        return
    xy = np.array([p.xy for p in seen])
    xyz = np.array([model.point3D(p.point3D_id).xyz for p in seen])
    estimation = pycolmap.AbsolutePoseEstimationOptions()
    estimation.ransac.max_error = max_error
    estimation.ransac.random_seed = SEED
    refinement = pycolmap.AbsolutePoseRefinementOptions()
    refinement.refine_focal_length = False
    refinement.refine_extra_params = False
    found = pycolmap.estimate_and_refine_absolute_pose(xy, xyz, camera, estimation, refinement)
    if found is not None and found["num_inliers"] >= 0.5 * len(seen):
        image.frame.set_cam_from_world(image.camera_id, found["cam_from_world"])


def _bundle_adjust(model: pycolmap.Reconstruction, cfg: ColmapConfig) -> None:
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_focal_length = False
    options.refine_principal_point = False
    options.refine_extra_params = False
    options.print_summary = False
    options.ceres.loss_function_type = pycolmap.LossFunctionType.CAUCHY
    options.ceres.loss_function_scale = 0.5 * cfg.max_error
    solver = options.ceres.solver_options
    solver.gradient_tolerance = solver.function_tolerance = 1e-8
    solver.max_num_iterations = 100
    solver.num_threads = _threads(cfg)
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in model.reg_image_ids():
        config.add_image(image_id)
    for camera_id in model.cameras:
        config.set_constant_cam_intrinsics(camera_id)
    summary = pycolmap.create_default_bundle_adjuster(options, config, model).solve()
    if not summary.is_solution_usable():
        raise RuntimeError(f"COLMAP's bundle adjustment failed: {summary.brief_report()}")


# ---------------------------------------------------------------------------------------------
# Pure rotations from the verified matches
# ---------------------------------------------------------------------------------------------


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
                  K: np.ndarray, cfg: ColmapConfig) -> _Placed:
    """Keyframe rotations chained from pure-rotation fits to the verified matches; each
    keyframe from the nearest placed earlier one (within ``cfg.overlap``) with
    ``cfg.min_inliers`` rotation inliers. Translation zero."""
    placed = _Placed.empty(n)
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


# ---------------------------------------------------------------------------------------------
# Keyframe poses -> every frame
# ---------------------------------------------------------------------------------------------


@dataclass
class _Placed:
    """Per-keyframe poses and what placed them."""

    w2c: np.ndarray  # [N, 4, 4]
    registered: np.ndarray  # [N] bool
    inliers: np.ndarray  # [N] int
    rotation_only: np.ndarray  # [N] bool

    @classmethod
    def empty(cls, n: int) -> _Placed:
        return cls(np.repeat(np.eye(4)[None], n, axis=0), np.zeros(n, bool),
                   np.zeros(n, np.int64), np.ones(n, bool))


@dataclass
class _Filled:
    """Per-frame poses of the whole video."""

    w2c: np.ndarray  # [T, 4, 4]
    inliers: np.ndarray  # [T] int
    confidence: np.ndarray  # [T] float
    rotation_only: np.ndarray  # [T] bool
    warnings: list[str]


def fill(keys: np.ndarray, T: int, placed: _Placed) -> _Filled:
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
