"""Scene stage pieces: segmentation, inpainting, captioning, depth, warping, Gaussians, rendering."""
