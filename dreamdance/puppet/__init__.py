"""A CPU puppet animator: the classical method of Smith et al., "A Method for Animating
Children's Drawings of the Human Figure" (ACM TOG 2023, the AnimatedDrawings project).

The character's pixels are given to body parts by capsules around its own pose's bones,
snapped to the art's strokes (:mod:`~dreamdance.puppet.labels`); the cut-out is meshed with
the parts' boundaries as constraints (:mod:`~dreamdance.puppet.mesh`), the mesh is cut where
parts merely touch (everywhere between parts not joined in the skeleton, away from the joint
between parent and child: :mod:`~dreamdance.puppet.skeleton`), and bounded biharmonic weights
bind it to the bones, each part rigid away from its joints (:mod:`~dreamdance.puppet.rig`).
Each frame, every bone gets the affine map that takes its rest joints to the frame's
keypoints, the mesh is skinned with them (stretches blended linearly, rigid motions as dual
quaternions: :mod:`~dreamdance.puppet.deform`), and the cut-out is drawn on it part by part
in a pose-dependent order (:mod:`~dreamdance.puppet.draw`).

    rig = build_rig(character, rest_body, rest_face)        # once per character
    transforms = frame_transforms(rig, body, face)          # [B, 2, 3] per frame
    frame = draw_frame(character, rig, deform(rig, transforms), draw_order(rig, body), bg)

or :func:`animate` for a whole pose sequence, and :func:`rig_preview` to check a rig.
"""

from dreamdance.puppet.animate import animate
from dreamdance.puppet.deform import deform, deform_points, frame_transforms
from dreamdance.puppet.draw import draw_frame, draw_order
from dreamdance.puppet.preview import rig_preview
from dreamdance.puppet.rig import Rig, build_rig
from dreamdance.puppet.skeleton import PART_NAMES

__all__ = ["PART_NAMES", "Rig", "animate", "build_rig", "deform", "deform_points", "draw_frame",
           "draw_order", "frame_transforms", "rig_preview"]
