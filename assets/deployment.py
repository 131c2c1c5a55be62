"""Deployment layer: the `champion` alias follows the gate."""

from dagster import AssetExecutionContext, DataVersion, MaterializeResult, MetadataValue, asset

from assets.automation import after_updates_of
from assets.evaluation import evaluation_report
from resources.registry import RegistryResource
from sands.aliases import CHALLENGER

GROUP = "deployment"


@asset(
    deps=[evaluation_report],
    group_name=GROUP,
    automation_condition=after_updates_of("evaluation_report"),
    kinds={"mlflow"},
    description="The serving model: moves MLflow's `champion` alias to the challenger only when "
    "its promotion gate passed, and records why it did or did not.",
)
def deployed_ranker(
    context: AssetExecutionContext, registry: RegistryResource
) -> MaterializeResult:
    client = registry.open()
    challenger = client.aliased(CHALLENGER)
    if challenger is None:
        raise LookupError("no challenger registered: materialize ranker and evaluation_report")
    version = int(challenger.version)
    verdict = challenger.tags.get("sands.gate")
    if verdict is None:
        raise LookupError(
            f"challenger v{version} has not been evaluated: materialize evaluation_report"
        )
    reasons = challenger.tags.get("sands.gate.reasons", "")
    current = client.champion_version()
    if verdict == "passed" and current != version:
        change = client.promote(
            version, f"dagster run {context.run.run_id}", f"gate passed: {reasons}", "gate_promote"
        )
        previous = f"v{change.previous}" if change.previous is not None else "none"
        outcome = f"promoted v{version} (previous champion: {previous})"
    elif verdict == "passed":
        outcome = f"v{version} is already the champion"
    else:
        outcome = f"kept champion v{current}; v{version} was rejected: {reasons}"
    context.log.info(outcome)
    champion = client.champion_version()
    return MaterializeResult(
        metadata={
            "champion_version": MetadataValue.int(champion or 0),
            "challenger_version": MetadataValue.int(version),
            "decision": MetadataValue.text(outcome),
            "model_uri": MetadataValue.text(f"models:/{registry.model_name}@champion"),
        },
        data_version=DataVersion(f"champion-v{champion}"),
    )
