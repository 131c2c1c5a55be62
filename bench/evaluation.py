"""Full-catalogue evaluation on a played home: the gate's evaluation of the challenger and champion
monitoring, timed in one process, with the metrics they produced (so a speed change can be checked
to leave them identical). Run `python -m bench loop --home DIR` first; no peer, seconds. A played
home holds the lists the loop ranked, which a run only reads: `--cold` ranks them afresh.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time

from rich.console import Console


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench evaluation")
    parser.add_argument("--home", help="a SANDS_HOME the loop has played (bench loop --home)")
    parser.add_argument("--json", help="write the timings and metrics here, to compare runs")
    parser.add_argument(
        "--cold",
        action="store_true",
        help="rank afresh: do not read the lists the loop stored (`ranked_lists`)",
    )
    args = parser.parse_args(argv)
    console = Console()
    if not args.home:
        console.print("evaluation: skipped, pass --home of a played loop (python -m bench loop)")
        return
    os.environ["SANDS_HOME"] = args.home
    os.environ.setdefault("DO_NOT_TRACK", "1")
    # Imported after SANDS_HOME is set: resources resolve it on build.
    from resources import build_resources
    from sands.evaluation.challenger import evaluate_challenger
    from sands.evaluation.gate import GateRules
    from sands.evaluation.offline import EvaluationSpec
    from sands.monitoring.champion import champion_quality
    from sands.monitoring.verdicts import Objective

    if args.cold:
        from sands.evaluation import rankings

        rankings._read = lambda *_: {}  # the lists are ranked and stored again, never read
    resources = build_resources()
    registry, lake = resources["registry"].open(), resources["lake"]
    started = time.perf_counter()
    try:
        run = evaluate_challenger(
            registry, lake.root, EvaluationSpec(), GateRules(), 7, lake.storage_options
        )
    except LookupError as error:  # a home the loop has not trained in
        sys.exit(f"evaluation: {args.home}: {error}")
    evaluation = time.perf_counter() - started
    started = time.perf_counter()
    quality = champion_quality(
        registry, lake.root, Objective(), EvaluationSpec(), lake.storage_options
    )
    monitoring = time.perf_counter() - started
    lists = json.dumps(sorted(run.challenger.recommendations.items())).encode()
    figures = {
        "evaluation_s": round(evaluation, 1),
        "monitoring_s": round(monitoring, 1),
        "pairs_per_ranker": run.setup.users.num_rows * run.setup.catalogue.num_rows,
        "challenger": run.challenger.overall | run.challenger.pointwise,
        "champion": run.champion.overall if run.champion else None,
        "popularity": run.baseline.overall,
        "challenger_lists_md5": hashlib.md5(lists).hexdigest(),
        "monitoring": None if quality is None else [quality[1].ndcg, quality[1].popularity_ndcg],
    }
    console.print_json(data=figures)
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(figures, handle, indent=1)
