"""How every page names a dataset row: by its id when the dataset has an id column, else by its
1-based position (the data row of the CSV, as data error messages count). The Data, Results,
Explain and What-if pages all name rows through here, so "id 543" means the same row on each."""
from __future__ import annotations

import pandas as pd

from multimodal.data.dataset import Dataset


def id_column(ds: Dataset) -> str | None:
    """The dataset's id column (the first column with the role 'id'), if it has one."""
    return ds.id_col


def row_name(ds: Dataset, row: int) -> str:
    """How every page names a row: by its id ('id 543') when the dataset has an id column, else by
    its 1-based position ('row 543', the data row of the CSV, as in data error messages).
    row: the 0-based position in the dataset (the index a run's splits store)."""
    column = id_column(ds)
    return f"{column} {ds.frame[column].iloc[int(row)]}" if column else f"row {int(row) + 1}"


def with_row_ids(ds: Dataset, table: pd.DataFrame, positions: str | None = None) -> pd.DataFrame:
    """The table with the rows' identifier as its first column, as `row_name` names them: the id
    column's values, else a 1-based 'row'. positions: the column holding 0-based dataset positions
    (dropped; None: the table's own index is the position)."""
    at = (table[positions] if positions else pd.Series(table.index, index=table.index)).astype(int)
    out = table.drop(columns=[positions]) if positions else table.copy()
    column = id_column(ds)
    name, values = (column, ds.frame[column].to_numpy()[at.to_numpy()]) if column else ("row", at + 1)
    out = out.drop(columns=[name], errors="ignore")
    out.insert(0, name, values)
    return out
