"""Extract the motion of a driving video on its own: poses, camera, aligned pose and mask videos.

    python -m tools.extract_motion driving=dance.mp4 out=runs/dance \\
        pose.det_model=DIR/yolox_l.onnx pose.pose_model=DIR/dw-ll_ucoco_384.onnx

The same as ``python -m dreamdance.run stage=motion ...`` (every key of that stage works here);
writes ``motion/poses.json``, ``motion/camera.json``, ``motion/poses_aligned.json``,
``animate/pose_{body,face,hand}.mp4``, ``animate/mask.mp4`` and ``motion/preview.png``.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    from dreamdance import run

    args = list(sys.argv[1:] if argv is None else argv)
    if any(a.startswith("stage=") for a in args):
        print("error: stage=: tools.extract_motion always runs stage=motion", file=sys.stderr)
        sys.exit(run.EXIT_BAD_INPUT)
    sys.argv = [sys.argv[0], "stage=motion", *args]
    run.main()


if __name__ == "__main__":
    main()
