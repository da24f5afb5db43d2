"""DreamDance: animate character art with the body and camera motion of a driving video.

Importing the package switches the Hugging Face libraries to offline mode: every model is
loaded from a local folder the user names, so no code path needs a hub. ``huggingface_hub``
reads its switch once, when it is first imported (``huggingface_hub.constants.HF_HUB_OFFLINE``,
from ``HF_HUB_OFFLINE`` or else ``TRANSFORMERS_OFFLINE``); transformers and diffusers take it
from there. So ``import dreamdance`` must come before anything imports them, as it does in the
command line and the tools. A variable the user has set is kept: ``HF_HUB_OFFLINE=0`` is the
deliberate way back online (e.g. for a script that downloads in the same process).
"""

import os
from collections.abc import MutableMapping

__version__ = "0.1.0"

OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")


def hub_offline(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set each of :data:`OFFLINE_SWITCHES` to ``"1"`` in ``environ`` unless already set."""
    for key in OFFLINE_SWITCHES:
        environ.setdefault(key, "1")


hub_offline()
