"""The Postgres warehouse's COPY (resources/warehouse/postgres_warehouse.py) stores every value as written: floats
bit for bit (tiny, huge, subnormal, negative zero, +-inf; NaN as NULL), timestamps to the microsecond, dates,
booleans, integers, strings with commas, quotes, newlines, backslashes and unicode, the empty string apart from
NULL. pyarrow formats the CSV when the columns allow it; pandas' ``to_csv`` (the route before it, kept for the other
frames) is the reference: both routes must store the same text in every cell. On a throwaway Postgres server,
skipped when its binaries are not installed (.ci/run installs them); the server and one database per test
come from tests/test_warehouse_engines.py."""

from __future__ import annotations

import math
import struct
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest

from resources.source.schema import Column
from resources.warehouse import PostgresWarehouse, postgres_warehouse
from tests import test_warehouse_engines as engines

postgres = engines.postgres  # the module's throwaway server (a fixture)
_postgres_warehouse = engines._postgres_warehouse  # a database of its own per test
TABLE = "raw.copied"
COLUMNS = [
    Column("id", "VARCHAR", nullable=False),
    Column("day", "TIMESTAMP"),
    Column("x", "DOUBLE"),
    Column("r", "REAL"),
    Column("flag", "BOOLEAN"),
    Column("born", "DATE"),
    Column("n", "BIGINT"),
    Column("note", "VARCHAR"),
    Column("at", "TIMESTAMP"),
    Column("on_day", "DATE"),
]
FLOATS = [
    0.1,
    -0.0,
    5e-324,  # the smallest subnormal
    2.2250738585072014e-308,
    1.7976931348623157e308,
    1e-300,
    float("nan"),
    float("inf"),
    float("-inf"),
    123456789.12345679,
    1 / 3,
    -1e16,
]
NOTES = [
    "a,b",
    'say "hi"',
    "line\nbreak",
    'all, "of\nthem"',
    "back\\slash\\",
    "ünïcødé ✓ 日本",
    "",
    None,
    "\\N",  # a string, not NULL, on both routes (pandas' route once stored it as NULL)
    " padded ",
    "tab\there",
    "'single'",
]


def _frame() -> pd.DataFrame:
    rows = len(FLOATS)
    return pd.DataFrame(
        {
            "id": [f"row-{i:02d}" for i in range(rows)],
            "day": pd.Timestamp("2026-03-01"),
            "x": FLOATS,
            "r": pd.Series([0.1, 1e-5, 3.0e38, -0.0, None, 1.5] * 2, dtype="float32"),
            "flag": pd.array([True, False, None] * 4, dtype="boolean"),
            "born": [date(1999, 12, 31), None, date(2026, 2, 28)] * 4,
            "n": pd.array([0, -1, 2**62, None] * 3, dtype="Int64"),
            "note": NOTES,
            "at": [pd.Timestamp("2026-03-01 23:59:59.999999"), pd.NaT, pd.Timestamp("1970-01-01 00:00:00.000001")] * 4,
            "on_day": pd.to_datetime(  # a timestamp into a DATE column (the marts' application_date): its date
                ["2026-03-01 23:59:59.999999999", "1969-12-31 23:59:59.5", "1900-01-01 00:00:00.0", None] * 3
            ),
        }
    )


def _bits(value):
    return struct.pack(">d", value).hex() if isinstance(value, float) else value


def _stored(warehouse: PostgresWarehouse, table: str = TABLE) -> list[tuple]:
    """The rows as psycopg2 returns them (floats compared by their bits, so -0.0 differs from 0.0)."""
    import psycopg2

    conn = psycopg2.connect(
        host=warehouse.host,
        port=warehouse.port,
        user=warehouse.user,
        password=warehouse.password,
        dbname=warehouse.dbname,
    )
    try:
        with conn.cursor() as cur:
            cur.execute(f"SELECT {', '.join(c.name for c in COLUMNS)} FROM {table} ORDER BY id")
            return [tuple(_bits(v) for v in row) for row in cur.fetchall()]
    finally:
        conn.close()


def _expected(frame: pd.DataFrame) -> list[tuple]:
    def value(v, column):
        if v is None or v is pd.NA or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
            return None
        if column == "r":
            return _bits(float(str(np.float32(v))))  # a REAL is printed with its shortest digits, read back as a double
        if column in ("day", "at"):
            return v.to_pydatetime()
        if column == "on_day":
            return v.date()
        if column == "n":
            return int(v)
        if column == "flag":
            return bool(v)
        return _bits(v)

    return [tuple(value(row[c.name], c.name) for c in COLUMNS) for _, row in frame.astype(object).iterrows()]


def _texts(warehouse: PostgresWarehouse, table: str) -> list[tuple]:
    frame = warehouse.query(f"SELECT {', '.join(f'CAST({c.name} AS TEXT) AS {c.name}' for c in COLUMNS)} FROM {table}")
    return sorted(tuple(row) for row in frame.astype(object).where(frame.notna(), None).itertuples(index=False))


@pytest.mark.parametrize("slice_rows", [None, 5])
def test_every_value_round_trips_exactly(postgres, monkeypatch, slice_rows):
    """Also with the CSV formatted 5 rows at a time (three slices, the last one short)."""
    if slice_rows is not None:
        monkeypatch.setattr(postgres_warehouse, "_SLICE_ROWS", slice_rows, raising=False)
    warehouse = _postgres_warehouse(postgres)
    frame = _frame()
    warehouse.replace_window(TABLE, "day", date(2026, 3, 1), date(2026, 3, 2), [frame], COLUMNS)
    stored = _stored(warehouse)
    assert stored == _expected(frame)
    assert stored[1][2] == _bits(-0.0) and stored[2][2] == _bits(5e-324) and stored[8][2] == _bits(float("-inf"))
    assert stored[0][8] == datetime(2026, 3, 1, 23, 59, 59, 999999) and stored[6][7] == ""
    assert stored[8][7] == "\\N" and stored[7][7] is None


@pytest.mark.parametrize("midnight", [False, True])
def test_the_arrow_route_stores_the_same_text_as_pandas_route(postgres, monkeypatch, midnight):
    """The same frame through both routes: every cell's text (REAL and DOUBLE as Postgres prints them) equal;
    also when every timestamp into the DATE column is at midnight (pandas then writes the date alone)."""
    warehouse = _postgres_warehouse(postgres)
    frame = _frame()
    if midnight:
        frame["on_day"] = frame["on_day"].dt.normalize()
    warehouse.replace_window(TABLE, "day", date(2026, 3, 1), date(2026, 3, 2), [frame], COLUMNS)
    with monkeypatch.context() as patched:
        patched.setattr(postgres_warehouse, "_arrow_csv", lambda chunk, targets: None)
        warehouse.replace_window("raw.by_pandas", "day", date(2026, 3, 1), date(2026, 3, 2), [frame], COLUMNS)
    assert _texts(warehouse, TABLE) == _texts(warehouse, "raw.by_pandas")


def test_an_inputs_like_frame_takes_the_arrow_route_and_others_take_pandas():
    """What the scorer writes (strings, timestamps, floats into VARCHAR / TIMESTAMP / DOUBLE) is formatted by
    pyarrow; a column whose text could store another value (floats into VARCHAR, a time zone, Python objects of
    mixed types) is formatted by pandas as before."""
    frame = _frame()
    targets = {
        "id": "character varying",
        "day": "timestamp without time zone",
        "x": "double precision",
        "r": "real",
        "flag": "boolean",
        "born": "date",
        "n": "bigint",
        "note": "character varying",
        "at": "timestamp without time zone",
        "on_day": "date",
    }
    assert postgres_warehouse._arrow_csv(frame, targets) is not None
    assert postgres_warehouse._arrow_csv(frame, {**targets, "x": "character varying"}) is None
    assert postgres_warehouse._arrow_csv(frame, {**targets, "x": "numeric"}) is None
    half = frame.assign(r=pd.Series([0.1] * len(frame), dtype="float16"))  # Arrow prints 0.0999755859375
    assert postgres_warehouse._arrow_csv(half, targets) is None
    assert postgres_warehouse._arrow_csv(frame.drop(columns="note"), {k: targets[k] for k in targets if k != "note"})
    zoned = frame.assign(at=frame["at"].dt.tz_localize("Europe/Paris"))
    assert postgres_warehouse._arrow_csv(zoned, targets) is None
    mixed = frame.assign(note=["a", 1, 2.5, None] * 3)
    assert postgres_warehouse._arrow_csv(mixed, targets) is None
    assert postgres_warehouse._arrow_csv(frame.drop(columns="id"), targets) is not None
    assert postgres_warehouse._arrow_csv(frame.assign(extra=1.0), targets) is None  # no such column: pandas' error


def test_frames_of_the_pandas_route_store_what_they_stored(postgres):
    """A time-zoned timestamp is stored as its local time, Python objects of mixed types as their str()."""
    warehouse = _postgres_warehouse(postgres)
    columns = [Column("id", "VARCHAR", nullable=False), Column("at", "TIMESTAMP"), Column("note", "VARCHAR")]
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "at": pd.Series([pd.Timestamp("2026-03-01 12:00:00.000001"), pd.Timestamp("2026-07-01")]).dt.tz_localize(
                "Europe/Paris"
            ),
            "note": ["x", 1],
        }
    )
    warehouse.replace_window("raw.zoned", "at", date(2026, 1, 1), date(2027, 1, 1), [frame], columns)
    stored = warehouse.query("SELECT id, CAST(at AS TEXT) AS at, note FROM raw.zoned ORDER BY id")
    assert stored.values.tolist() == [["a", "2026-03-01 12:00:00.000001", "x"], ["b", "2026-07-01 00:00:00", "1"]]


@pytest.mark.parametrize("dtype", ["string", "category"])
def test_a_backslash_n_string_of_a_typed_column_on_pandas_route_is_not_null(postgres, dtype):
    """The mixed column sends the frame down pandas' route; the ``\\N`` of a pandas ``string`` (or categorical)
    column is still that string, and its missing value still NULL."""
    warehouse = _postgres_warehouse(postgres)
    columns = [
        Column("id", "VARCHAR", nullable=False),
        Column("day", "TIMESTAMP"),
        Column("note", "VARCHAR"),
        Column("tag", "VARCHAR"),
    ]
    frame = pd.DataFrame(
        {
            "id": ["a", "b", "c"],
            "day": pd.Timestamp("2026-03-01"),
            "note": ["x", 1, None],
            "tag": pd.Series(["\\N", None, "t"], dtype=dtype),
        }
    )
    assert postgres_warehouse._arrow_csv(frame, {c.name: "character varying" for c in columns}) is None
    table = f"raw.typed_{dtype}"
    warehouse.replace_window(table, "day", date(2026, 3, 1), date(2026, 3, 2), [frame], columns)
    stored = warehouse.query(f"SELECT id, note, tag FROM {table} ORDER BY id").astype(object)
    assert stored.where(stored.notna(), None).values.tolist() == [["a", "x", "\\N"], ["b", "1", None], ["c", None, "t"]]


def test_a_null_in_a_not_null_column_fails_with_the_same_message_on_both_routes(postgres, monkeypatch):
    import psycopg2

    warehouse = _postgres_warehouse(postgres)
    frame = _frame()
    frame.loc[3, "id"] = None
    messages = []
    for route in ("arrow", "pandas"):
        with monkeypatch.context() as patched:
            if route == "pandas":
                patched.setattr(postgres_warehouse, "_arrow_csv", lambda chunk, targets: None)
            with pytest.raises(psycopg2.errors.NotNullViolation) as failure:
                warehouse.replace_window(TABLE, "day", date(2026, 3, 1), date(2026, 3, 2), [frame], COLUMNS)
        messages.append(str(failure.value).splitlines()[0])
    assert messages[0] == messages[1] == 'null value in column "id" of relation "copied" violates not-null constraint'
    assert not warehouse.table_exists(TABLE) or _stored(warehouse) == []


def test_a_carriage_return_in_a_string_is_stored(postgres):
    """pandas' route wrote it unquoted and Postgres refused the COPY ("unquoted carriage return found in data");
    Arrow quotes every string."""
    warehouse = _postgres_warehouse(postgres)
    columns = [Column("id", "VARCHAR", nullable=False), Column("day", "TIMESTAMP"), Column("note", "VARCHAR")]
    frame = pd.DataFrame({"id": ["a", "b"], "day": pd.Timestamp("2026-03-01"), "note": ["cr\rlf", "crlf\r\n"]})
    warehouse.replace_window("raw.returns", "day", date(2026, 3, 1), date(2026, 3, 2), [frame], columns)
    assert warehouse.query("SELECT note FROM raw.returns ORDER BY id")["note"].tolist() == ["cr\rlf", "crlf\r\n"]
