from pathlib import Path

import pyarrow as pa
import pytest

from sands.ingest.contract import (
    ENTITIES,
    INTERACTIONS,
    PRICE_TYPE,
    positive_events,
    strongest_positives,
)
from sands.ingest.contract_docs import render_contract
from sands.settings import SettingError

DOC = Path(__file__).resolve().parents[3] / "docs" / "data-contract.md"


def test_the_contract_document_is_generated_from_the_schemas():
    assert DOC.read_text() == render_contract(), (
        "run `sands contract-docs` after changing sands/ingest/contract.py"
    )


def test_every_column_declares_how_it_is_stored_and_what_it_means():
    for entity in ENTITIES.values():
        for name, column in entity.schema().columns.items():
            assert isinstance(column.metadata["arrow"], pa.DataType), name
            assert column.description, name


def test_bronze_interactions_are_stored_with_decimal_prices_and_the_landing_day():
    schema = INTERACTIONS.arrow_schema()
    assert schema.field("price").type == PRICE_TYPE
    assert schema.field("event_ts").type == pa.timestamp("us", tz="UTC")
    assert schema.names[-1] == "landing_date"


def test_positives_are_the_conversions_unless_the_setting_names_event_types():
    assert positive_events({}) == ("favourite", "purchase")
    chosen = positive_events({"SANDS_POSITIVE_EVENTS": " click, Purchase ,click"})
    assert chosen == ("click", "purchase")
    for bad in ("buy", "click;purchase", ","):
        with pytest.raises(SettingError, match=r"SANDS_POSITIVE_EVENTS=.*expected event types"):
            positive_events({"SANDS_POSITIVE_EVENTS": bad})


def test_a_history_without_conversions_is_labelled_on_its_strongest_funnel_step():
    assert strongest_positives({"view", "purchase"}) is None  # conversions: the default holds
    assert strongest_positives({"view", "click"}) == ("click", "favourite", "purchase")
    assert strongest_positives({"view"}) == ("view", "click", "favourite", "purchase")
    assert strongest_positives({"click"}) == ("click", "favourite", "purchase")
    assert strongest_positives(set()) is None
    assert strongest_positives({"Click", "like"}) is None  # the contract would reject them
