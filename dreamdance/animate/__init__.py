"""Animate stage pieces: the pose-aware video inpainting transformer, its pipeline, overlapping
windows for long videos, and the diffusion-free preview compositor."""
