"""Motion: the driving poses and camera, their file formats, rendering and alignment."""
