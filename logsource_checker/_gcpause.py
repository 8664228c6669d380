"""``paused_gc``: the cyclic garbage collector off for a block, then back as it was.

Kept free of imports (it runs before typer is imported) and written as a plain class, not with
``contextlib``, so that using it costs nothing measurable.
"""
from __future__ import annotations

import gc
from typing import Any


class paused_gc:  # noqa: N801 - used like a function: ``with paused_gc():``
    """The cyclic garbage collector off for the block, then back as it was.

    A check builds tens of thousands of long-lived objects (rules, requirements, report entries), and
    imports create as many (modules, classes, functions), with almost no cyclic garbage; without the
    pause the collector walks them again and again (about a tenth of a warm run on the SigmaHQ rule
    set). Reference counting still frees everything else.

    On the way out the objects the block left behind are handed to the oldest generation without a
    collection (``gc.freeze()`` then ``gc.unfreeze()``: two list splices). Otherwise the first
    allocation after the pause runs a young-generation pass over all of them (~20 ms per block on the
    SigmaHQ rule set); they stay collectable as before, by the next full collection. The splice is
    skipped when objects were already frozen on entry (a host program's own ``gc.freeze()``, when the
    check is used as a library): ``gc.unfreeze()`` would move those back too.
    """

    __slots__ = ("_was_enabled", "_was_frozen")

    def __enter__(self) -> None:
        self._was_enabled = gc.isenabled()
        self._was_frozen = gc.get_freeze_count() != 0
        gc.disable()

    def __exit__(self, *exc_info: Any) -> None:
        if self._was_enabled:
            if not self._was_frozen:
                gc.freeze()
                gc.unfreeze()
            gc.enable()


__all__ = ["paused_gc"]
