"""Pictures of rows: boxes drawn on images, grids, HTML for notebooks and the viewer pages.

>>> from hfgcot import viz
>>> viz.hex_colour((255, 0, 0))
'#ff0000'
"""

from hfgcot.viz.colours import PALETTE, colour, hex_colour, label_colour, phrase_colours
from hfgcot.viz.draw import NOT_IN_TEXT, draw_boxes, draw_groundings, draw_regions
from hfgcot.viz.fonts import find_font, font_covers, text_font
from hfgcot.viz.html import HTML, row_html
from hfgcot.viz.layout import place_labels
from hfgcot.viz.picture import grid, render_row
from hfgcot.viz.rows import RowView, row_view
from hfgcot.viz.text import mentioned_phrases, phrase_spans, text_segments
from hfgcot.viz.viewer import load_rows, rows_html, write_view

__all__ = [
    "HTML",
    "NOT_IN_TEXT",
    "PALETTE",
    "RowView",
    "colour",
    "draw_boxes",
    "draw_groundings",
    "draw_regions",
    "find_font",
    "font_covers",
    "grid",
    "hex_colour",
    "label_colour",
    "load_rows",
    "mentioned_phrases",
    "phrase_colours",
    "phrase_spans",
    "place_labels",
    "render_row",
    "row_html",
    "row_view",
    "rows_html",
    "text_font",
    "text_segments",
    "write_view",
]
