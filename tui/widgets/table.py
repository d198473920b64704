"""Filling a DataTable many times a second without losing the operator's cursor."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from textual.widgets import DataTable
from textual.widgets.data_table import RowDoesNotExist

Row = tuple[str, Sequence[Any]]


def fill_table(table: DataTable[Any], rows: Sequence[Row]) -> None:
    """Show ``rows`` (key, cells). With the same keys in the same order, only the cells that
    changed are updated; otherwise the table is rebuilt and the cursor kept on its row."""
    keys = [key for key, _ in rows]
    if [row.key.value for row in table.ordered_rows] == keys:
        columns = table.ordered_columns
        for key, cells in rows:
            old = table.get_row(key)
            for column, before, after in zip(columns, old, cells, strict=False):
                if before != after:
                    table.update_cell(key, column.key, after, update_width=True)
        return
    cursor_key = current_row_key(table)
    cursor_column = table.cursor_coordinate.column
    table.clear()
    for key, cells in rows:
        table.add_row(*cells, key=key)
    if cursor_key is not None and cursor_key in keys:
        table.move_cursor(row=keys.index(cursor_key), column=cursor_column, animate=False)


def current_row_key(table: DataTable[Any]) -> str | None:
    if table.row_count == 0:
        return None
    try:
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
    except (RowDoesNotExist, LookupError):
        return None
    return None if key is None else str(key)
