"""The report's sections. Each module has KEYS (the sections it writes; fps and quality
come from one pass over the same encodes), `measure(ctx, keys)` -> {key: figures},
`render(key, figures)` -> (title, markdown body), and `targets(docs)` -> the target rows
its figures decide, from the loaded JSON documents."""

from . import (cameras, cpu, density, encode, freecaps, live1080, mem, overhead, prerecord,
               startup, vp8speed)

# in the order they run
MODULES = [encode, cpu, live1080, mem, density, prerecord, freecaps, vp8speed, overhead,
           startup, cameras]
SECTIONS = [key for module in MODULES for key in module.KEYS]
# the order of the report's numbered blocks, "## 1." first
REPORT_ORDER = ["fps", "cpu", "quality", "live1080", "mem", "density", "prerecord", "freecaps",
                "vp8speed", "overhead", "startup", "cameras"]


def module_of(key):
    return next(module for module in MODULES if key in module.KEYS)
