"""The training dataset: :class:`~dreamdance.train.sample.TrainSample` built on the fly from the
clips of a dataset folder (:mod:`dreamdance.train.layout`).

For a sample index the dataset

1. chooses a clip: with probability ``scene_ratio`` from the scene-only clips (when there are
   both kinds), then the clip at ``index`` in a seeded permutation of that pool, a new
   permutation for each pass (``index // pool size``);
2. chooses a window of ``frames`` frames ``stride`` apart and a reference frame at least
   ``reference_gap`` frames outside it (a stylised reference ``style.png`` with probability
   ``style_ratio`` when the clip has one: its frame ``style_frame`` is then the reference and
   the window is placed away from it). When the clip is too short for a reference that far
   from any window, the reference is the frame farthest from the window (possibly inside it);
   this is logged once per clip;
3. reads only the frames up to the last one it needs (video, ``mask.mp4`` and poses),
   centre-crops them to the training aspect and resizes them to ``height × width``; the
   poses get the same crop and resize;
4. builds the sample: the target ``video``; the character masks from ``mask.mp4`` (white =
   character) or, without one, the inpainting mask from the poses; ``background`` =
   :func:`~dreamdance.train.degrade.remove_character` then
   :func:`~dreamdance.train.degrade.degrade`; ``boxes`` =
   :func:`~dreamdance.train.degrade.character_boxes`; ``mask`` =
   :func:`~dreamdance.motion.mask.pose_masks`; ``poses`` =
   :func:`~dreamdance.motion.videos.pose_videos`; ``character`` = the reference frame with
   alpha = its character mask. A scene-only clip has black pose videos, empty masks and
   boxes and a zero alpha.

Every random choice comes from ``numpy.random.default_rng([seed, index])``, so a sample is a
function of ``(seed, index)`` alone. A clip that fails to read is warned about, counted in
:attr:`ClipDataset.skipped` and replaced by the next clip of its pool (with randomness from
``default_rng([seed, index, attempt])``).
"""

from __future__ import annotations

import logging
import math
import numbers
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dreamdance.errors import InputError
from dreamdance.media import load_image, probe_video, read_video, resize
from dreamdance.motion.mask import SHAPES, pose_masks
from dreamdance.motion.poses import PARTS, PoseSequence, read_poses
from dreamdance.motion.videos import pose_videos
from dreamdance.settings import FromConf
from dreamdance.train.degrade import DegradeConfig, character_boxes, degrade, remove_character
from dreamdance.train.layout import SPLITS, ClipRecord, read_metadata
from dreamdance.train.sample import POSE_KEYS, TrainSample

log = logging.getLogger(__name__)

MASK_OPTIONS = ("dilate", "face_margin", "hand_margin", "shape")


@dataclass
class DatasetConfig(FromConf):
    """What a training sample looks like: ``train.data`` of ``conf/stage/train.yaml``
    (``DatasetConfig.from_conf(**changes)``).

    Args:
        frames: frames per sample (F), >= 1.
        stride: step between the sample's frames in the clip, >= 1.
        height, width: the training size; frames are centre-cropped to its aspect and resized.
        reference_gap: the fewest frames between the reference frame and the window, >= 0.
        scene_ratio: fraction of samples from scene-only clips when there are both kinds,
            in [0, 1].
        style_ratio: probability to use a clip's ``style.png`` as the reference when it has
            one, in [0, 1].
        box_margin: growth of the character boxes, fraction of the box size, >= 0.
        pose_threshold: keypoints below this confidence are neither drawn nor masked.
        mask: options of :func:`~dreamdance.motion.mask.pose_masks` (``dilate``,
            ``face_margin``, ``hand_margin``, ``shape``); missing ones take the run config's
            ``mask`` (``conf/config.yaml``).
        degrade: a :class:`~dreamdance.train.degrade.DegradeConfig` or the settings that differ
            from the config file's.
    """

    frames: int
    stride: int
    height: int
    width: int
    reference_gap: int
    scene_ratio: float
    style_ratio: float
    box_margin: float
    pose_threshold: float
    mask: dict
    degrade: DegradeConfig | dict

    conf_file = "stage/train"
    conf_key = "train.data"

    def __post_init__(self):
        for key, lo in (("frames", 1), ("stride", 1), ("height", 1), ("width", 1),
                        ("reference_gap", 0)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < lo:
                raise ValueError(f"data.{key} must be an integer >= {lo}, got {value!r}")
        for key, hi in (("scene_ratio", 1.0), ("style_ratio", 1.0), ("box_margin", math.inf),
                        ("pose_threshold", 1.0)):
            value = getattr(self, key)
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or not 0 <= value <= hi):
                raise ValueError(f"data.{key} must be a number in [0, {hi}], got {value!r}")
        self.mask = dict(self.mask or {})
        unknown = set(self.mask) - set(MASK_OPTIONS)
        if unknown:
            raise ValueError(f"data.mask: unknown keys {sorted(unknown)}; "
                             f"expected some of {MASK_OPTIONS}")
        if "shape" in self.mask and self.mask["shape"] not in SHAPES:
            raise ValueError(f"data.mask.shape must be one of {SHAPES}, "
                             f"got {self.mask['shape']!r}")
        for key in ("dilate", "face_margin", "hand_margin"):
            value = self.mask.get(key, 0.0)
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or value < 0):
                raise ValueError(f"data.mask.{key} must be a number >= 0, got {value!r}")
        if not isinstance(self.degrade, DegradeConfig):
            self.degrade = DegradeConfig.from_conf(**dict(self.degrade))

    @property
    def span(self) -> int:
        """Frames of the clip one sample's window covers: ``(frames - 1) * stride + 1``."""
        return (self.frames - 1) * self.stride + 1


@dataclass(frozen=True)
class _Clip:
    record: ClipRecord
    frames: int  # probed


class ClipDataset(torch.utils.data.Dataset):
    """Training samples built on the fly from the clips of one split of a dataset folder.

    Args:
        root: the dataset folder (:mod:`dreamdance.train.layout`).
        config: a :class:`DatasetConfig` or its keyword arguments.
        seed: samples are a function of ``(seed, index)``.
        split: ``"train"`` or ``"val"``.

    Attributes:
        clips: the usable clips.
        skipped: reason -> count of clips left out at construction or that failed to read
            in :meth:`sample`.

    Raises:
        InputError: the layout is unreadable (:func:`read_metadata`), or no clip of the split
            is usable.
    """

    def __init__(self, root: str | os.PathLike, config: DatasetConfig | dict | None = None,
                 seed: int = 0, split: str = "train"):
        self.root = Path(root)
        self.config = config if isinstance(config, DatasetConfig) else \
            DatasetConfig.from_conf(**dict(config or {}))
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.seed = int(seed)
        self.split = split
        self.skipped: Counter = Counter()
        self._fallback_logged: set[str] = set()
        name = f"data={self.root}"
        records = [r for r in read_metadata(self.root, name) if r.split == split]
        self.clips: list[_Clip] = []
        for record in records:
            clip = self._probe(record)
            if clip is not None:
                self.clips.append(clip)
        if not self.clips:
            reasons = ", ".join(f"{k}: {v}" for k, v in sorted(self.skipped.items()))
            raise InputError(name, f"no usable {split} clip among {len(records)} "
                                   f"({reasons or 'none in metadata'}; each needs at least "
                                   f"{self.config.span} frames)")
        self._pools = [[i for i, c in enumerate(self.clips) if c.record.kind == kind]
                       for kind in ("person", "scene")]

    def _probe(self, record: ClipRecord) -> _Clip | None:
        where = f"{self.root}: clip {record.name!r}"
        try:
            info = probe_video(self.root / record.video, name=f"{where} video")
        except InputError as e:
            return self._skip("unreadable video", f"{e}")
        if record.kind == "person" and not (self.root / record.poses).is_file():
            return self._skip("missing poses", f"{where}: poses {record.poses} not found")
        if info.n_frames < self.config.span:
            return self._skip("too short", f"{where}: {info.n_frames} frames, fewer than "
                                           f"(frames - 1) * stride + 1 = {self.config.span}")
        return _Clip(record, info.n_frames)

    def _skip(self, reason: str, message: str) -> None:
        log.warning("skipping %s", message)
        self.skipped[reason] += 1
        return None

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return self.sample(index).tensors()

    def sample(self, index: int) -> TrainSample:
        """The sample at ``index`` (any integer >= 0), a function of ``(seed, index)``.

        Raises:
            InputError: every clip of the chosen pool failed to read.
        """
        if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
            raise ValueError(f"index must be an integer >= 0, got {index!r}")
        index = int(index)
        rng = np.random.default_rng([self.seed, index])
        person, scene = self._pools
        use_scene = rng.random() < self.config.scene_ratio
        pool = scene if (scene and (use_scene or not person)) else person
        epoch, position = divmod(index, len(pool))
        order = np.random.default_rng([self.seed, epoch, len(pool)]).permutation(len(pool))
        errors = []
        for attempt in range(len(pool)):
            clip = self.clips[pool[order[(position + attempt) % len(pool)]]]
            if attempt:
                rng = np.random.default_rng([self.seed, index, attempt])
            try:
                return self._build(clip, rng)
            except InputError as e:
                log.warning("sample %d: clip %r failed to read, using another (%s)", index,
                            clip.record.name, e)
                self.skipped["read failed"] += 1
                errors.append(str(e))
        raise InputError(f"data={self.root}", f"every clip failed to read (last: {errors[-1]})")

    # ----------------------------------------------------------------------------------------

    def _build(self, clip: _Clip, rng: np.random.Generator) -> TrainSample:
        cfg, record = self.config, clip.record
        where = f"{self.root}: clip {record.name!r}"
        person = record.kind == "person"
        poses = read_poses(self.root / record.poses, name=f"{where} poses") if person else None
        n = clip.frames if poses is None else min(clip.frames, len(poses))
        if n < cfg.span:
            raise InputError(where, f"{n} frames with poses, fewer than {cfg.span}")
        style = None
        if (record.style and record.style_frame is not None and 0 <= record.style_frame < n
                and rng.random() < cfg.style_ratio):
            start = choose_window(n, cfg.span, cfg.reference_gap, rng, reference=record.style_frame)
            if start is not None:
                style, reference = record.style_frame, record.style_frame
        if style is None:
            start, reference = choose_window_and_reference(n, cfg.span, cfg.reference_gap, rng)
        if reference_distance(reference, start, cfg.span) <= cfg.reference_gap and (
                record.name not in self._fallback_logged):
            self._fallback_logged.add(record.name)
            log.warning("%s: %d frames leave no reference frame %d frames away from a window of "
                        "%d; using frame %d", where, n, cfg.reference_gap, cfg.span, reference)
        window = start + cfg.stride * np.arange(cfg.frames)
        needed = int(max(window[-1], reference)) + 1
        frames = self._read(self.root / record.video, needed, f"{where} video")
        src_h, src_w = frames.shape[1:3]
        size = (cfg.width, cfg.height)
        video = fit_frames(frames[window], size).astype(np.float32) / 255.0
        ref_rgb = fit_frames(frames[reference:reference + 1], size)[0].astype(np.float32) / 255.0
        if style is not None:
            ref_rgb = self._style(record, (src_h, src_w), where)

        f, h, w = cfg.frames, cfg.height, cfg.width
        if person:
            picked = np.append(window, reference)
            fitted = fit_poses(poses, picked, (src_h, src_w), (h, w))
            masks = pose_masks(fitted, threshold=cfg.pose_threshold, **cfg.mask)
            masks = masks.astype(np.float32)
            if record.mask:
                raw = self._read(self.root / record.mask, needed, f"{where} mask")
                char = fit_frames(raw[picked], size, interpolation="linear")
                char = (char.mean(axis=-1) >= 127.5).astype(np.float32)
            else:
                char = masks
            drawn = pose_videos(_take(fitted, np.arange(f)), threshold=cfg.pose_threshold)
            pose = {k: drawn[k].astype(np.float32) / 255.0 for k in POSE_KEYS}
            mask, char_masks, ref_alpha = masks[:f], char[:f], char[f]
        else:
            pose = {k: np.zeros((f, h, w, 3), np.float32) for k in POSE_KEYS}
            mask = char_masks = np.zeros((f, h, w), np.float32)
            ref_alpha = np.zeros((h, w), np.float32)
        background = degrade(remove_character(video, char_masks), rng, cfg.degrade)
        return TrainSample(
            name=record.name, video=video, background=background,
            boxes=character_boxes(char_masks, cfg.box_margin), mask=mask, poses=pose,
            character=np.concatenate([ref_rgb, ref_alpha[..., None]], axis=-1),
            has_person=person)

    @staticmethod
    def _read(path: Path, needed: int, name: str) -> np.ndarray:
        frames = read_video(path, name=name, max_frames=needed).frames
        if len(frames) < needed:
            raise InputError(name, f"{len(frames)} decodable frames, fewer than the {needed} "
                                   "needed (the container's duration overstates it)")
        return frames

    def _style(self, record: ClipRecord, src: tuple[int, int], where: str) -> np.ndarray:
        rgb = load_image(self.root / record.style, name=f"{where} style").rgb
        if rgb.shape[:2] != src:  # a stylised copy at another size: bring it to the video's
            rgb = resize(rgb, (src[1], src[0]), interpolation="linear")
        return fit_frames(rgb[None], (self.config.width, self.config.height))[0]


# --------------------------------------------------------------------------------------------
# Windows, crops and poses


def reference_distance(reference: int, start: int, span: int) -> int:
    """Frames between ``reference`` and the window ``[start, start + span)``; 0 inside it,
    1 for a neighbour."""
    if reference < start:
        return start - reference
    return max(0, reference - (start + span - 1))


def choose_window(n: int, span: int, gap: int, rng: np.random.Generator,
                  reference: int) -> int | None:
    """A window start, uniformly among those keeping more than ``gap`` frames from
    ``reference`` (None when there is none)."""
    starts = [s for s in range(n - span + 1) if reference_distance(reference, s, span) > gap]
    return None if not starts else int(starts[rng.integers(len(starts))])


def choose_window_and_reference(n: int, span: int, gap: int,
                                rng: np.random.Generator) -> tuple[int, int]:
    """A window start and a reference frame more than ``gap`` frames outside the window.

    The start is uniform among the starts that leave room for such a reference, then the
    reference uniform among the frames that qualify. When no start leaves room (``n <= span +
    gap``), the start is uniform and the reference is the frame farthest from the window.

    Args:
        n: frames of the clip, >= ``span``.
        span: frames the window covers.
        gap: the fewest frames between reference and window.

    Returns:
        ``(start, reference)``.
    """
    if n < span:
        raise ValueError(f"a clip of {n} frames cannot hold a window of {span}")
    starts = [s for s in range(n - span + 1) if s > gap or n - (s + span) > gap]
    if not starts:
        start = int(rng.integers(n - span + 1))
        reference = max(range(n), key=lambda r: (reference_distance(r, start, span), -r))
        return start, reference
    start = int(starts[rng.integers(len(starts))])
    refs = [r for r in range(n) if reference_distance(r, start, span) > gap]
    return start, int(refs[rng.integers(len(refs))])


def crop_box(size: tuple[int, int], target: tuple[int, int]) -> tuple[int, int, int, int]:
    """The centred crop ``(x0, y0, x1, y1)`` of a ``size = (H, W)`` frame with the aspect of
    ``target = (H', W')`` (as large as fits)."""
    h, w = size
    th, tw = target
    if w * th > h * tw:  # wider than the target: crop the sides
        cw, ch = max(1, int(round(h * tw / th))), h
    else:
        cw, ch = w, max(1, int(round(w * th / tw)))
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return x0, y0, x0 + cw, y0 + ch


def fit_frames(frames: np.ndarray, size: tuple[int, int],
               interpolation: str = "area") -> np.ndarray:
    """Centre-crop frames to the aspect of ``size = (W', H')`` and resize them to it.

    Args:
        frames: [T, H, W, 3] uint8 or float32.

    Returns:
        [T, H', W', 3] of the input dtype.
    """
    x0, y0, x1, y1 = crop_box(frames.shape[1:3], (size[1], size[0]))
    return np.stack([resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), size,
                            interpolation=interpolation) for frame in frames])


def fit_poses(poses: PoseSequence, index: np.ndarray, source: tuple[int, int],
              target: tuple[int, int]) -> PoseSequence:
    """Frames ``index`` of ``poses`` mapped as :func:`fit_frames` maps a ``source = (H, W)``
    video to ``target = (H', W')``; absent keypoints stay ``(0, 0, 0)``.

    Keypoints are in pixel-index coordinates (pixel ``(i, j)`` at ``(x, y) = (j, i)``): they
    are first scaled from the pose file's ``width × height`` to the video's, then cropped and
    resized about pixel centres.

    Args:
        index: frames to take.  [T']

    Returns:
        :class:`PoseSequence` ``[T', P, K, 3]`` of ``width = W'``, ``height = H'``.
    """
    h, w = source
    th, tw = target
    x0, y0, x1, y1 = crop_box(source, target)
    sx, sy = tw / (x1 - x0), th / (y1 - y0)
    to_video = np.array([w / poses.width, h / poses.height])
    out = {}
    for part in PARTS:
        a = getattr(poses, part)[index].copy()
        xy = (a[..., :2] + 0.5) * to_video - 0.5  # pose pixels -> video pixels
        xy = (xy - np.array([x0, y0]) + 0.5) * np.array([sx, sy]) - 0.5
        present = a[..., 2:] > 0
        a[..., :2] = np.where(present, xy, 0.0)
        out[part] = a.astype(np.float32)
    return PoseSequence(**out, width=tw, height=th, fps=poses.fps, driver=poses.driver)


def _take(poses: PoseSequence, index: np.ndarray) -> PoseSequence:
    return PoseSequence(**{p: getattr(poses, p)[index] for p in PARTS}, width=poses.width,
                        height=poses.height, fps=poses.fps, driver=poses.driver)
