"""One training sample: what the dataset builds and the trainer encodes.

Every video is ``[F, H, W, 3]`` float32 in [0, 1] and every mask ``[F, H, W]`` float32 in
{0, 1}, at the training size. As tensors (:meth:`TrainSample.tensors`, and batched by
:func:`collate`) the videos become ``[B, F, 3, H, W]``, the masks ``[B, F, H, W]`` and the
character ``[B, H, W, 4]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dreamdance.animate.backend import POSE_KEYS


@dataclass
class TrainSample:
    """One clip as the model sees it in training.

    Args:
        name: the clip's name.
        video: the target clip.  [F, H, W, 3]
        background: the clip with the character removed (filled) and degraded to look like a
            rendered Gaussian scene.  [F, H, W, 3]
        boxes: 1 inside the character's bounding box in each frame (for the early black-box
            schedule: the trainer fills these with black in ``background`` for the first
            steps).  [F, H, W]
        mask: the inpainting mask from the clip's poses (dreamdance.motion.mask), 1 where the
            character may be painted.  [F, H, W]
        poses: ``{"face", "hand", "body"}`` rendered pose videos (dreamdance.motion.videos),
            black for a scene-only clip.  [F, H, W, 3] each
        character: the reference frame (from the same video, outside the clip) with alpha = its
            character mask; all-zero alpha for a scene-only clip.  [H, W, 4]
        has_person: False for a scene-only clip.
    """

    name: str
    video: np.ndarray
    background: np.ndarray
    boxes: np.ndarray
    mask: np.ndarray
    poses: dict[str, np.ndarray]
    character: np.ndarray
    has_person: bool = True

    def __post_init__(self):
        f, h, w, c = self.video.shape
        if c != 3:
            raise ValueError(f"video: expected [F, H, W, 3], got {self.video.shape}")
        expect = {"background": (f, h, w, 3), "boxes": (f, h, w), "mask": (f, h, w),
                  "character": (h, w, 4)}
        expect.update({f"poses[{k}]": (f, h, w, 3) for k in POSE_KEYS})
        got = {"background": self.background.shape, "boxes": self.boxes.shape,
               "mask": self.mask.shape, "character": self.character.shape}
        if set(self.poses) != set(POSE_KEYS):
            raise ValueError(f"poses: expected keys {POSE_KEYS}, got {sorted(self.poses)}")
        got.update({f"poses[{k}]": self.poses[k].shape for k in POSE_KEYS})
        for key, shape in expect.items():
            if tuple(got[key]) != shape:
                raise ValueError(f"{key}: expected shape {shape}, got {tuple(got[key])}")

    def tensors(self) -> dict[str, torch.Tensor]:
        """The sample as float32 tensors, videos channels-first:
        ``video, background, pose_face, pose_hand, pose_body [F, 3, H, W]``,
        ``boxes, mask [F, H, W]``, ``character [H, W, 4]``, ``has_person []``."""

        def video(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(np.ascontiguousarray(x, np.float32)).permute(0, 3, 1, 2)

        out = {"video": video(self.video), "background": video(self.background),
               "boxes": torch.from_numpy(np.asarray(self.boxes, np.float32)),
               "mask": torch.from_numpy(np.asarray(self.mask, np.float32)),
               "character": torch.from_numpy(np.asarray(self.character, np.float32)),
               "has_person": torch.tensor(float(self.has_person))}
        for key in POSE_KEYS:
            out[f"pose_{key}"] = video(self.poses[key])
        return out


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack :meth:`TrainSample.tensors` dicts into a batch (a leading ``B``)."""
    return {key: torch.stack([item[key] for item in items]) for key in items[0]}
