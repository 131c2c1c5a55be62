"""`python -m bench [name [options]]`: run one benchmark with its options, or all with defaults."""

from __future__ import annotations

import sys

from bench import (
    clicks,
    drift,
    drift_alarms,
    engines,
    evaluation,
    event_log,
    feature_build,
    ingestion,
    kill_loop,
    loop,
    newcomers,
    online,
    ope,
    partition_reads,
    pit,
    quality,
    ranker_ablation,
    serving,
    similarity,
)

BENCHMARKS = {
    "ingestion": ingestion.main,
    "pit": pit.main,
    "partition_reads": partition_reads.main,
    "feature_build": feature_build.main,
    "online": online.main,
    "drift": drift.main,
    "drift_alarms": drift_alarms.main,
    "loop": loop.main,
    "newcomers": newcomers.main,
    "evaluation": evaluation.main,
    "serving": serving.main,
    "similarity": similarity.main,
    "engines": engines.main,
    "event_log": event_log.main,
    "clicks": clicks.main,
    "ranker_ablation": ranker_ablation.main,
    "quality": quality.main,
    "kill_loop": kill_loop.main,
    "ope": ope.main,
}

if __name__ == "__main__":
    if len(sys.argv) > 1:
        name, options = sys.argv[1], sys.argv[2:]
        if name not in BENCHMARKS:
            sys.exit(f"unknown benchmark {name!r}; choose from {', '.join(BENCHMARKS)}")
        BENCHMARKS[name](options)
    else:
        for run in BENCHMARKS.values():
            run([])
