from pathlib import Path

import pyarrow as pa

from sands.ingest.contract import ENTITIES, INTERACTIONS, PRICE_TYPE
from sands.ingest.contract_docs import render_contract

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
