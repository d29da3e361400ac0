"""iMaterialist (Fashion) 2020 / Fashionpedia instance segmentation with attributes."""
import os
import warnings

__version__ = "0.1.0"

# effdet decorates a function with torch.jit.script at import; torch 2.14 warns on every command.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
# albumentations asks PyPI for a newer version when imported (a 2 s timeout): no command may use the network
# unasked (an offline Kaggle kernel, a cluster node; the rehearsal blocks and records it).
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
