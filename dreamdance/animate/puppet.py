"""``model=puppet``: the character moves its limbs on a CPU, with no weights.

The cut-out is meshed, rigged from the art's own pose and deformed, frame by frame, so that its
joints follow the aligned driving poses while each part stays rigid (the method of Smith et al.,
"A Method for Animating Children's Drawings of the Human Figure", ACM TOG 2023; see
:mod:`dreamdance.puppet`), then drawn over the background video. Adds ``animate/rig.png``: the
mesh, bones and skinning weights over the art, to check the rig before anything else.
"""

from __future__ import annotations

import logging

from dreamdance.animate.backend import AnimateInputs, AnimateOutput, rest_pose
from dreamdance.errors import InputError

log = logging.getLogger(__name__)


class Puppet:
    """The puppet animator as an animate backend.

    Args:
        name: the option's name, for messages.
        max_area: largest mesh triangle in px² (None: from the figure's size).
        progress: show a progress bar over the frames.
    """

    def __init__(self, name: str = "puppet", max_area: float | None = None,
                 progress: bool = True):
        if max_area is not None and max_area <= 0:
            raise InputError(f"model.max_area={max_area}", "must be positive (or null)")
        self.name, self.max_area, self.progress = name, max_area, bool(progress)

    def __call__(self, inputs: AnimateInputs) -> AnimateOutput:
        from dreamdance import puppet

        own = rest_pose(inputs, self.name)
        try:
            rig = puppet.build_rig(inputs.character, own["body"], own["face"],
                                   max_area=self.max_area)
        except ValueError as e:
            raise InputError("scene/character.png", f"cannot rig the character: {e}") from None
        log.info("puppet: %d vertices, %d triangles", len(rig.vertices), len(rig.triangles))
        frames = puppet.animate(inputs.character, own["body"], own["face"], inputs.poses,
                                inputs.background, rig=rig, progress=self.progress)
        return AnimateOutput(frames, {"rig": puppet.rig_preview(inputs.character, rig)})
