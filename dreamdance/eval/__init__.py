"""Evaluation: the metrics of the paper's Table 1 on predicted and reference videos.

``frames`` (SSIM, PSNR, L1), ``lpips``, ``inception`` (FID), ``i3d`` (FID-VID, FVD),
``frechet`` (the Fréchet distance), ``videos`` (loading and matching), ``evaluate`` (the
aggregation) and ``report`` (table and JSON); the command line is ``python -m tools.evaluate``.
"""
