"""Text in Blender layouts: long messages as labels broken between words (a label never wraps itself, and a
narrow panel cuts it off mid-word). Imports nothing but the standard library, so the numpy-free fallback
(``no_numpy``) draws with it too."""

from __future__ import annotations

import textwrap


def draw_wrapped(layout, text: str, icon: str = "NONE", width: int = 80) -> None:
    """``text`` as labels of about ``width`` characters; the icon on the first line."""
    column = layout.column(align=True)
    for i, line in enumerate(textwrap.wrap(text, width) or [""]):
        column.label(text=line, icon=icon if i == 0 else "BLANK1" if icon != "NONE" else "NONE")
