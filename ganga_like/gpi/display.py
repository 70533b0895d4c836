"""Tables for the terminal (coloured by status) and for notebooks (HTML).

The formatting lives in ``ganga_like.model.table`` (the model's own reprs use it);
this module is the GPI's name for it.
"""

from ..model.table import COLOURS, html_table, pretty_table

__all__ = ["COLOURS", "html_table", "pretty_table"]
