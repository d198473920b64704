"""A checkbox that reads the same in any colour scheme: ``[x]`` when ticked, ``[ ]`` when not.

Textual's own draws an X either way and tells the two apart by colour alone, which on a
dark theme left an unticked team looking ticked (issue 20, finding 2)."""

from __future__ import annotations

from textual.content import Content
from textual.widgets import Checkbox


class TickBox(Checkbox):
    @property
    def _button(self) -> Content:
        style = self.get_visual_style("toggle--button")
        return Content.assemble("[", ("x" if self.value else " ", style), "]")
