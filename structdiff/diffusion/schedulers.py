"""diffusers' schedulers, imported without what a command-line start does not need.

`import diffusers` runs `diffusers.utils.torch_utils`, which tries `from torch._dynamo import
allow_in_graph` to mark its own models for `torch.compile`, and so imports torch's whole
compiler stack (about 1.2 s of a 4.9 s `structdiff generate`, issue 14). We use diffusers for its
schedulers only, never compile its models, and diffusers falls back to a no-op marker when that
import fails. `scheduler_class` blocks `torch._dynamo` (a `None` entry in `sys.modules`, which
makes that import raise ImportError) only while diffusers is first imported, then removes the
block, so that anything later that wants torch._dynamo (`torch.compile`, Lightning) imports it
as usual. When torch._dynamo is already imported, nothing is blocked.

DPM-Solver++'s module imports `scipy.stats` (0.3 s) for a sigma option we do not use; it is
imported only when that sampler is asked for, as each class is. Even so, any scheduler module
runs diffusers' package set-up (0.7-0.9 s), so the default DDIM sampler and the betas do not come
from here but from `ddim.py`, tested equal to these classes.
"""

from __future__ import annotations

import importlib
import sys
from functools import cache

_DYNAMO = "torch._dynamo"
_MODULES = {
    "DDPMScheduler": "diffusers.schedulers.scheduling_ddpm",
    "DDIMScheduler": "diffusers.schedulers.scheduling_ddim",
    "DPMSolverMultistepScheduler": "diffusers.schedulers.scheduling_dpmsolver_multistep",
}


@cache
def scheduler_class(name: str) -> type:
    """The diffusers scheduler class `name` (a key of `_MODULES`)."""
    if name not in _MODULES:
        raise ValueError(f"unknown scheduler {name!r} (known: {', '.join(_MODULES)})")
    block = _DYNAMO not in sys.modules and "diffusers" not in sys.modules
    if block:
        sys.modules[_DYNAMO] = None  # type: ignore[assignment]
    try:
        module = importlib.import_module(_MODULES[name])
    finally:
        if block and sys.modules.get(_DYNAMO, 0) is None:
            del sys.modules[_DYNAMO]
    return getattr(module, name)
