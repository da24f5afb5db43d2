"""COLMAP's steps for :mod:`dreamdance.motion.colmap_track`: keyframes and masks written for it,
SIFT features, sequential matching, sub-pixel tracks, the incremental mapper and the
refinement of its reconstruction (seeded with :data:`SEED`)."""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import cv2
import numpy as np
import pycolmap

from dreamdance.motion.klt import background_masks

log = logging.getLogger("dreamdance.motion.colmap_track")

if TYPE_CHECKING:
    from dreamdance.motion.colmap_track import ColmapConfig


SEED = 0


@contextlib.contextmanager
def quiet():
    """COLMAP's log (glog, on stderr) limited to errors while inside."""
    before = pycolmap.logging.minloglevel
    pycolmap.logging.minloglevel = pycolmap.logging.ERROR
    try:
        yield
    finally:
        pycolmap.logging.minloglevel = before


def threads(cfg: ColmapConfig) -> int:
    """``num_threads``, else the CPUs this process may use (all of them where the system does
    not say)."""
    if cfg.num_threads:
        return cfg.num_threads
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


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
    options.num_threads = threads(cfg)
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
    matching.num_threads = threads(cfg)
    matching.use_gpu = False
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = cfg.overlap
    pairing.quadratic_overlap = True
    pairing.loop_detection = False
    pairing.num_threads = threads(cfg)
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


def reconstruct(database: Path, root: Path, n: int, cfg: ColmapConfig) -> Placed:
    """Incremental mapping with the intrinsics held fixed; the poses of the largest
    reconstruction, :func:`refine`-d, per keyframe."""
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads = threads(cfg)
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
    placed = Placed.empty(n)
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
    solver.num_threads = threads(cfg)
    config = pycolmap.BundleAdjustmentConfig()
    for image_id in model.reg_image_ids():
        config.add_image(image_id)
    for camera_id in model.cameras:
        config.set_constant_cam_intrinsics(camera_id)
    summary = pycolmap.create_default_bundle_adjuster(options, config, model).solve()
    if not summary.is_solution_usable():
        raise RuntimeError(f"COLMAP's bundle adjustment failed: {summary.brief_report()}")


@dataclass
class Placed:
    """Per-keyframe poses and what placed them."""

    w2c: np.ndarray  # [N, 4, 4]
    registered: np.ndarray  # [N] bool
    inliers: np.ndarray  # [N] int
    rotation_only: np.ndarray  # [N] bool

    @classmethod
    def empty(cls, n: int) -> Placed:
        return cls(np.repeat(np.eye(4)[None], n, axis=0), np.zeros(n, bool),
                   np.zeros(n, np.int64), np.ones(n, bool))
