"""Hydra configs, installed as the package ``dreamdance.conf`` (``pkg://dreamdance.conf``)."""
