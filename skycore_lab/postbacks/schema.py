"""The postback schema: which XML element fills which events column, and its type.

One table, :data:`FIELDS`, is read by everything that writes or reads a
postback field: the parser's general path (:mod:`.documents`), its
validating fast path (:mod:`.grammar` and the compiled :mod:`.kernel`), the
frame assembly (:mod:`.assemble`), the sandbox's postback writer
(:func:`skycore_lab.sandbox.dispatcher.render_postback`) and the
benchmarks' log generator. Its order is the element order of the
documented examples (``POSTBACK_DELIVERY_REPORTS.md``: ORIGIN, CODE, SENTAS,
STATUS, MMSID, FROM, TO, TRACKINGID, SPID, TIMESTAMP, HANDSET, AGGREGATORID,
STATUSDETAILS), the order the fast path proves and the sandbox writes.
Records in any other order are read by the general path, to the same
fields; the order the sandbox wrote until 2026 (STATUS before SENTAS,
:data:`.grammar.OLD_ORDER`) is still proven there by a regular expression,
without lxml.

Adding a postback field takes its column name in :mod:`skycore_lab.columns`
(and its place in ``EVENT_COLUMNS``) and one row here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from .. import columns as col

__all__ = [
    "Field",
    "FIELDS",
    "FIELD_TAGS",
    "FIELD_INDEX",
    "TAG_COLUMNS",
    "NO_FIELDS",
    "TEXT_COLUMNS",
    "CATEGORY_COLUMNS",
    "STRING_DTYPE",
    "DATETIME_DTYPE",
    "TS_TYPE",
    "RECEIVED",
    "BATCH_SCHEMA",
]

Kind = Literal["category", "text", "timestamp"]


@dataclass(frozen=True)
class Field:
    """One documented child element of ``<POSTBACK>``.

    Attributes
    ----------
    tag : str
        The element name (upper case, as documented).
    column : str
        The events column it fills (:mod:`skycore_lab.columns`).
    kind : {"category", "text", "timestamp"}
        ``category``: a small vocabulary (pandas categorical); ``text``:
        free text (pandas ``str``); ``timestamp``: read as UTC instants.
    """

    tag: str
    column: str
    kind: Kind


FIELDS: tuple[Field, ...] = (
    Field("ORIGIN", col.ORIGIN, "category"),
    Field("CODE", col.CODE, "category"),
    Field("SENTAS", col.SENT_AS, "category"),
    Field("STATUS", col.STATUS, "category"),
    Field("MMSID", col.MMS_ID, "text"),
    Field("FROM", col.SENDER, "text"),
    Field("TO", col.TO, "text"),
    Field("TRACKINGID", col.TRACKING_ID, "text"),
    Field("SPID", col.SPID, "text"),
    Field("TIMESTAMP", col.TIMESTAMP, "timestamp"),
    Field("HANDSET", col.HANDSET, "text"),
    Field("AGGREGATORID", col.AGGREGATOR_ID, "text"),
    Field("STATUSDETAILS", col.STATUS_DETAILS, "text"),
)

#: The elements, in schema order.
FIELD_TAGS: tuple[str, ...] = tuple(field.tag for field in FIELDS)
#: Element → its position in :data:`FIELDS`.
FIELD_INDEX: dict[str, int] = {tag: index for index, tag in enumerate(FIELD_TAGS)}
#: Element → column.
TAG_COLUMNS: dict[str, str] = {field.tag: field.column for field in FIELDS}
#: A record's field texts when none is present ('' means absent or empty).
NO_FIELDS: tuple[str, ...] = ("",) * len(FIELDS)
#: Free-text columns, in schema order.
TEXT_COLUMNS: tuple[str, ...] = tuple(field.column for field in FIELDS if field.kind == "text")
#: Small-vocabulary columns, in schema order.
CATEGORY_COLUMNS: tuple[str, ...] = tuple(field.column for field in FIELDS if field.kind == "category")

#: pandas' default ``str`` dtype (Arrow-backed, NaN for missing).
STRING_DTYPE = pd.StringDtype("pyarrow", na_value=np.nan)
DATETIME_DTYPE = col.DATETIME_DTYPE
#: Arrow's type for the same instants.
TS_TYPE = pa.timestamp("us", tz="UTC")

RECEIVED = "received"  # working column of a batch table: the log's received_at text
#: A batch table: received_at text, then each field's text ('' or null = absent).
BATCH_SCHEMA = pa.schema([(RECEIVED, pa.string()), *((tag, pa.string()) for tag in FIELD_TAGS)])
