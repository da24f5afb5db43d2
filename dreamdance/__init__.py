"""DreamDance: animate character art with the body and camera motion of a driving video."""

__version__ = "0.1.0"
