"""RFM scoring: 1-5 scores by quantile within the workspace, and the named cells.

A score is ceil(5 x percent rank), the percent rank being the average rank of the value
(ties share it) over the number of buyers: equal values always get equal scores, and a
workspace where most people bought once still spreads the rest. Recency ranks the
other way round (the most recent buyers score 5).

The cell comes from R and FM, the rounded-up mean of F and M, on the usual grid:

    FM:    1               2               3               4          5
    R 5    New             Potential l.    Potential l.    Champions  Champions
    R 4    Promising       Potential l.    Potential l.    Loyal      Loyal
    R 3    About to sleep  About to sleep  Need attention  Loyal      Loyal
    R 2    Hibernating     Hibernating     At risk         At risk    Can't lose them
    R 1    Lost            Hibernating     At risk         At risk    Can't lose them
"""

import numpy as np
from django.utils.translation import pgettext_lazy
from scipy.stats import rankdata

CELLS = (
    "Champions",
    "Loyal",
    "Potential loyalists",
    "New",
    "Promising",
    "Need attention",
    "About to sleep",
    "At risk",
    "Can't lose them",
    "Hibernating",
    "Lost",
)

# The names people read; the stored cell (and the rule language's value) stays English.
CELL_LABELS = {
    "Champions": pgettext_lazy("RFM cell", "Champions"),
    "Loyal": pgettext_lazy("RFM cell", "Loyal"),
    "Potential loyalists": pgettext_lazy("RFM cell", "Potential loyalists"),
    "New": pgettext_lazy("RFM cell", "New"),
    "Promising": pgettext_lazy("RFM cell", "Promising"),
    "Need attention": pgettext_lazy("RFM cell", "Need attention"),
    "About to sleep": pgettext_lazy("RFM cell", "About to sleep"),
    "At risk": pgettext_lazy("RFM cell", "At risk"),
    "Can't lose them": pgettext_lazy("RFM cell", "Can't lose them"),
    "Hibernating": pgettext_lazy("RFM cell", "Hibernating"),
    "Lost": pgettext_lazy("RFM cell", "Lost"),
}


def cell_label(cell: str) -> str:
    """A cell's name in the person's language."""
    return str(CELL_LABELS.get(cell, cell))


_GRID = {
    5: ("New", "Potential loyalists", "Potential loyalists", "Champions", "Champions"),
    4: ("Promising", "Potential loyalists", "Potential loyalists", "Loyal", "Loyal"),
    3: ("About to sleep", "About to sleep", "Need attention", "Loyal", "Loyal"),
    2: ("Hibernating", "Hibernating", "At risk", "At risk", "Can't lose them"),
    1: ("Lost", "Hibernating", "At risk", "At risk", "Can't lose them"),
}


def quintile_scores(values: np.ndarray, *, higher_is_better: bool = True) -> np.ndarray:
    """1-5 for each value: ceil(5 x average rank / n)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        return np.zeros(0, dtype=np.int16)
    ranks = rankdata(values if higher_is_better else -values, method="average")
    return np.clip(np.ceil(5 * ranks / values.size), 1, 5).astype(np.int16)


def fm_score(f: int, m: int) -> int:
    return (int(f) + int(m) + 1) // 2


def rfm_cell(r: int, f: int, m: int) -> str:
    return _GRID[int(r)][fm_score(f, m) - 1]


def rfm_score(
    recency_days: np.ndarray, frequency: np.ndarray, monetary: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """The R, F and M scores and the cell of each buyer."""
    r = quintile_scores(recency_days, higher_is_better=False)
    f = quintile_scores(frequency)
    m = quintile_scores(monetary)
    fm = (f.astype(np.int32) + m + 1) // 2
    table = np.array([[_GRID[row][col] for col in range(5)] for row in range(1, 6)], dtype=object)
    cells = table[r - 1, fm - 1].tolist() if r.size else []
    return r, f, m, cells
