"""Pictures of rows: boxes drawn on images, grids, and HTML for notebooks.

>>> from hfgcot import viz
>>> viz.hex_colour((255, 0, 0))
'#ff0000'
"""

from hfgcot.viz.draw import (
    HTML,
    PALETTE,
    colour,
    draw_boxes,
    draw_groundings,
    draw_regions,
    grid,
    hex_colour,
    label_colour,
    phrase_colours,
    render_row,
    row_html,
    rows_html,
    text_segments,
)

__all__ = [
    "HTML",
    "PALETTE",
    "colour",
    "draw_boxes",
    "draw_groundings",
    "draw_regions",
    "grid",
    "hex_colour",
    "label_colour",
    "phrase_colours",
    "render_row",
    "row_html",
    "rows_html",
    "text_segments",
]
