"""iMaterialist (Fashion) 2020 / Fashionpedia instance segmentation with attributes."""
import warnings

__version__ = "0.1.0"

# effdet decorates a function with torch.jit.script at import; torch 2.14 warns on every command.
warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=FutureWarning)
