"""Evidently's DataDriftPreset on the bench's Parquet files; runs in `.venv-evidently`.

Usage: python bench/evidently_drift.py REFERENCE CURRENT NUMERIC,COLUMNS CATEGORICAL,COLUMNS
Prints JSON: seconds for the report run (data already in memory) and each column's drift score.
"""

import json
import sys
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.presets import DataDriftPreset


def main() -> None:
    reference_path, current_path, numeric, categorical = sys.argv[1:5]
    numeric_columns, categorical_columns = numeric.split(","), categorical.split(",")
    reference, current = pd.read_parquet(reference_path), pd.read_parquet(current_path)
    definition = DataDefinition(
        numerical_columns=numeric_columns, categorical_columns=categorical_columns
    )
    started = time.perf_counter()
    ref = Dataset.from_pandas(reference, data_definition=definition)
    cur = Dataset.from_pandas(current, data_definition=definition)
    # The same methods our checks use above 1,000 rows, stated explicitly.
    preset = DataDriftPreset(num_method="wasserstein", cat_method="jensenshannon")
    snapshot = Report([preset]).run(reference_data=ref, current_data=cur)
    seconds = time.perf_counter() - started
    scores = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric.get("config", {})
        column = config.get("column")
        value = metric.get("value")
        if column and isinstance(value, int | float):
            scores[column] = float(value)
    print(json.dumps({"seconds": seconds, "scores": scores}))


if __name__ == "__main__":
    main()
