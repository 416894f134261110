"""The writes every warehouse shares (resources/warehouse/base.py): on DuckDB always, on a throwaway Postgres when
its server binaries are installed, and on a real Spark Connect server when Java is (.ci/run installs both; those
cases are skipped otherwise). The Spark server is started once for the module; each test starts from an empty
catalog."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from datetime import date, timedelta

import pandas as pd
import pytest

from resources.source.schema import Column
from resources.warehouse import (
    DuckDBWarehouse,
    NotInWarehouse,
    PostgresWarehouse,
    SparkWarehouse,
    Warehouse,
    WarehouseFileMissing,
)
from resources.warehouse.sql import date_literal, day_window, text_literal
from tests.postgres_server import postgres_bin, running_postgres

DAY = date(2026, 3, 1)
NEXT = DAY + timedelta(days=1)
AFTER = NEXT + timedelta(days=1)
TABLE = "raw.events"
COLUMNS = [Column("id", "VARCHAR", nullable=False), Column("day", "DATE"), Column("amount", "DOUBLE")]

_databases = itertools.count()


def _rows(ids, day: date = DAY, amount: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"id": list(ids), "day": [pd.Timestamp(day)] * len(ids), "amount": [amount] * len(ids)})


def _count(warehouse: Warehouse, table: str = TABLE) -> int:
    return int(warehouse.query(f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])


def _stored(warehouse: Warehouse, table: str = TABLE) -> list[tuple]:
    frame = warehouse.query(f"SELECT id, {warehouse.as_text('day')} AS day, amount FROM {table} ORDER BY day, id")
    return [(row.id, row.day, row.amount) for row in frame.itertuples()]


@pytest.fixture(scope="module")
def postgres():
    if postgres_bin() is None:
        pytest.skip("PostgreSQL server binaries not installed (.ci/run installs them)")
    pytest.importorskip("psycopg2")
    with running_postgres([]) as server:
        yield server


def _postgres_warehouse(server) -> PostgresWarehouse:
    """A warehouse on a database of its own, so no test sees another's tables."""
    import psycopg2

    name = f"engines_{next(_databases)}"
    conn = psycopg2.connect(
        host=server.host, port=server.port, user=server.user, password=server.password, dbname="postgres"
    )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name}")
    conn.close()
    return PostgresWarehouse(
        host=server.host, port=server.port, user=server.user, password=server.password, dbname=name
    )


def _spark_warehouse(server) -> SparkWarehouse:
    """A warehouse on the module's server, its catalog emptied first: no test sees another's tables."""
    warehouse = SparkWarehouse(remote=server.remote)
    spark = warehouse.spark()
    for (name,) in spark.sql("SHOW DATABASES").collect():
        if name != "default":
            spark.sql(f"DROP DATABASE {name} CASCADE")
    return warehouse


@pytest.fixture(params=["duckdb", "postgres", "spark"])
def warehouse(request, tmp_path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        yield DuckDBWarehouse(path=str(tmp_path / "w.duckdb"))
    elif request.param == "spark":
        spark = _spark_warehouse(request.getfixturevalue("spark_server"))
        yield spark
        spark.spark().stop()  # not left active for what runs next in this process
    else:
        yield _postgres_warehouse(request.getfixturevalue("postgres"))


# --- replace_window -------------------------------------------------------------------------------------------------


def test_replacing_a_window_twice_leaves_one_copy_and_other_days_alone(warehouse):
    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("ab"), _rows("c")], COLUMNS) == 3
    assert warehouse.replace_window(TABLE, "day", NEXT, AFTER, [_rows("x", day=NEXT)], COLUMNS) == 1
    assert (
        warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("ab", amount=2.0), _rows("c", amount=2.0)], COLUMNS)
        == 3
    )
    assert _stored(warehouse) == [
        ("a", "2026-03-01", 2.0),
        ("b", "2026-03-01", 2.0),
        ("c", "2026-03-01", 2.0),
        ("x", "2026-03-02", 1.0),
    ]
    # Empty chunks are skipped; no chunks at all clears the window.
    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows(""), _rows("d")], COLUMNS) == 1
    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [], COLUMNS) == 0
    assert _stored(warehouse) == [("x", "2026-03-02", 1.0)]
    back = warehouse.read_window(TABLE, "day", NEXT, AFTER)
    assert back["id"].tolist() == ["x"] and str(back["day"].dtype).startswith("datetime64")


def test_a_table_without_declared_columns_takes_them_from_its_first_chunk(warehouse):
    assert warehouse.replace_window("scores.daily", "day", DAY, NEXT, [_rows("ab")]) == 2
    assert warehouse.replace_window("scores.daily", "day", DAY, NEXT, [_rows("abc")]) == 3
    assert _count(warehouse, "scores.daily") == 3
    # Nothing to write and nothing declared: no table is made.
    assert warehouse.replace_window("scores.none", "day", DAY, NEXT, []) == 0
    assert not warehouse.table_exists("scores.none")
    with pytest.raises(ValueError, match="must be schema-qualified"):
        warehouse.replace_window("unqualified", "day", DAY, NEXT, [_rows("a")])


def _failing_source():
    yield _rows("no", amount=9.0)
    raise RuntimeError("source failed half-way")


def _rejected_chunks():
    yield _rows("no", amount=9.0)
    yield pd.DataFrame({"id": [None], "day": [pd.Timestamp(DAY)], "amount": [9.0]})  # id is NOT NULL


@pytest.mark.parametrize("chunks", [_failing_source, _rejected_chunks], ids=["source-fails", "engine-rejects"])
def test_a_chunk_failing_mid_write_leaves_the_previous_rows(warehouse, chunks):
    warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("ab")], COLUMNS)
    with pytest.raises(Exception) as raised:
        warehouse.replace_window(TABLE, "day", DAY, NEXT, chunks(), COLUMNS)
    if chunks is _failing_source:
        assert str(raised.value) == "source failed half-way"
    assert _stored(warehouse) == [("a", "2026-03-01", 1.0), ("b", "2026-03-01", 1.0)]
    # The first write of a table that fails leaves no table behind either (its creation is rolled back too).
    with pytest.raises(Exception):  # noqa: B017 - each engine raises its own driver's error here
        warehouse.replace_window("raw.fresh", "day", DAY, NEXT, chunks(), COLUMNS)
    assert not warehouse.table_exists("raw.fresh")
    # And the warehouse takes the next write.
    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("c")], COLUMNS) == 1


def test_a_window_replaced_with_keep_leaves_the_rows_meeting_it_whoever_wrote_them(warehouse):
    warehouse.replace_window(TABLE, "day", DAY, AFTER, [_rows("ab"), _rows("x", day=NEXT)], COLUMNS)
    warehouse.append(TABLE, _rows(["k1"], amount=5.0))  # another writer's row, after the caller read the table

    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("c", amount=2.0)], COLUMNS, keep="amount = 5") == 1

    assert _stored(warehouse) == [("c", "2026-03-01", 2.0), ("k1", "2026-03-01", 5.0), ("x", "2026-03-02", 1.0)]
    # Nothing new: the kept rows stay alone; a NULL condition keeps nothing (as a row that does not meet it).
    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [], COLUMNS, keep="amount > 4") == 0
    assert _stored(warehouse) == [("k1", "2026-03-01", 5.0), ("x", "2026-03-02", 1.0)]
    assert warehouse.replace_window(TABLE, "day", DAY, NEXT, [], COLUMNS, keep="CAST(NULL AS BOOLEAN)") == 0
    assert _stored(warehouse) == [("x", "2026-03-02", 1.0)]


# --- replace_window_from --------------------------------------------------------------------------------------------


def _stage(warehouse: Warehouse) -> None:
    staged = [Column("_row", "BIGINT"), *COLUMNS, Column("flag", "BOOLEAN")]
    frame = pd.concat([_rows("abc"), _rows("d", day=NEXT)], ignore_index=True)
    frame.insert(0, "_row", range(1, 5))
    frame["flag"] = [True, False, True, True]
    warehouse.replace_window("staging.events", "day", DAY, AFTER, [frame], staged)


def test_replace_window_from_copies_the_named_columns_of_the_window_once(warehouse):
    _stage(warehouse)
    # The target's columns are in another order: they are matched by name.
    warehouse.ensure_table(TABLE, [COLUMNS[2], COLUMNS[0], COLUMNS[1]])
    for _ in range(2):
        written = warehouse.replace_window_from(
            TABLE, "day", DAY, NEXT, "staging.events", where="flag", columns=["id", "day", "amount"]
        )
        assert written == 2 and isinstance(written, int)
    assert _stored(warehouse) == [("a", "2026-03-01", 1.0), ("c", "2026-03-01", 1.0)]
    # A condition with a literal % (a review band named "50% risk": Postgres' placeholder is %s).
    like = "id NOT LIKE '%b%'"
    assert warehouse.replace_window_from(TABLE, "day", DAY, NEXT, "staging.events", like, ["id", "day", "amount"]) == 2

    # A target that is not there yet is made with the named columns only, in their order.
    assert (
        warehouse.replace_window_from("review.events", "day", DAY, AFTER, "staging.events", columns=["day", "id"]) == 4
    )
    assert warehouse.column_names("review.events") == _partition_last(warehouse, ["day", "id"])
    # All columns when none are named.
    assert warehouse.replace_window_from("review.all", "day", NEXT, AFTER, "staging.events") == 1
    assert warehouse.column_names("review.all") == _partition_last(warehouse, ["_row", "id", "day", "amount", "flag"])


def _partition_last(warehouse: Warehouse, columns: list[str], window_column: str = "day") -> list[str]:
    """Spark stores a table in partitions of its window column, which it keeps as the last column."""
    if not isinstance(warehouse, SparkWarehouse):
        return columns
    return [c for c in columns if c != window_column] + [window_column]


def test_append_produced_stores_what_each_item_yields_with_missing_columns_null(warehouse):
    def day_of_rows(day: date) -> Iterator[pd.DataFrame]:
        """Two frames of rows for the day, then one of other columns (a status row). Local and pandas only, so it
        pickles by value: Spark's executors do not import the tests."""
        at = pd.Timestamp(day)
        yield pd.DataFrame({"id": [f"{day:%d}-a", f"{day:%d}-b"], "day": [at, at], "amount": [1.0, 1.0]})
        yield pd.DataFrame({"id": [f"{day:%d}-c"], "day": [at], "amount": [2.0]})
        yield pd.DataFrame({"note": [f"read {day}"]})

    columns = [*(Column(c.name, c.dtype) for c in COLUMNS), Column("note", "VARCHAR")]  # staging: all nullable
    warehouse.ensure_table("staging.produced", columns, "day")
    warehouse.append_produced("staging.produced", [DAY, NEXT], day_of_rows, columns, chunk_rows=2)
    rows = warehouse.query("SELECT id, day, amount, note FROM staging.produced ORDER BY id, note")
    data = rows[rows["id"].notna()]
    assert data["id"].tolist() == ["01-a", "01-b", "01-c", "02-a", "02-b", "02-c"]
    assert data["amount"].tolist() == [1.0, 1.0, 2.0, 1.0, 1.0, 2.0] and data["note"].isna().all()
    assert [str(d)[:10] for d in data["day"]] == ["2026-03-01"] * 3 + ["2026-03-02"] * 3
    notes = rows[rows["id"].isna()]
    assert notes["note"].tolist() == ["read 2026-03-01", "read 2026-03-02"] and notes["day"].isna().all()


# --- append, ensure_table, drop_table, reads ------------------------------------------------------------------------


def test_append_adds_a_column_the_rows_bring_and_earlier_rows_keep_null(warehouse):
    warehouse.append("audit.log", pd.DataFrame({"seq": [1], "action": ["train"]}))
    warehouse.append("audit.log", pd.DataFrame({"seq": [2], "action": ["promote"], "actor": ["ana"], "ok": [True]}))
    warehouse.append("audit.log", pd.DataFrame({"seq": [3], "action": ["gate"]}))
    rows = warehouse.query("SELECT seq, action, actor, ok FROM audit.log ORDER BY seq")
    assert rows["action"].tolist() == ["train", "promote", "gate"]
    assert pd.isna(rows["actor"][0]) and rows["actor"][1] == "ana" and pd.isna(rows["actor"][2])
    assert bool(rows["ok"][1]) and pd.isna(rows["ok"][0])


def test_ensure_table_adds_the_declared_columns_a_table_lacks(warehouse):
    warehouse.ensure_table(TABLE, COLUMNS[:2])
    warehouse.ensure_table(TABLE, COLUMNS[:2])  # idempotent
    warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("a")[["id", "day"]]], COLUMNS[:2])
    # Added columns accept NULL even when declared NOT NULL: the stored rows have none.
    grown = [*COLUMNS, Column("code", "VARCHAR", nullable=False)]
    warehouse.ensure_table(TABLE, grown)
    warehouse.ensure_table(TABLE, grown)
    assert warehouse.column_names(TABLE) == ["id", "day", "amount", "code"]
    assert _stored(warehouse)[0][:2] == ("a", "2026-03-01") and pd.isna(_stored(warehouse)[0][2])
    assert warehouse.replace_window(TABLE, "day", NEXT, AFTER, [_rows("b", day=NEXT).assign(code="k")], grown) == 1
    assert str(warehouse.read_window(TABLE, "day", NEXT, AFTER)["amount"].dtype) == "float64"  # a DOUBLE column


def test_reads_and_drops(warehouse):
    warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows([f"r{i:04d}" for i in range(2500)])], COLUMNS)
    chunks = list(warehouse.iter_window(TABLE, "day", DAY, NEXT, chunk_rows=2048))
    assert sum(len(c) for c in chunks) == 2500 and all(len(c) <= 2048 for c in chunks)
    # A window of all time, bigger than a chunk (the training set's read): the stored days, not every calendar day.
    warehouse.replace_window(TABLE, "day", NEXT, AFTER, [_rows(["late"], day=NEXT)], COLUMNS)
    everything = list(warehouse.iter_window(TABLE, "day", date(1900, 1, 1), date(9999, 12, 31), chunk_rows=2048))
    assert sum(len(c) for c in everything) == 2501 and all(len(c) <= 2048 for c in everything)
    with pytest.raises(NotInWarehouse, match="table raw.nothing does not exist in warehouse"):
        list(warehouse.iter_window("raw.nothing", "day", DAY, NEXT))
    assert warehouse.table_exists(TABLE) and not warehouse.table_exists("raw.nothing")
    warehouse.drop_table(TABLE)
    warehouse.drop_table(TABLE)
    assert not warehouse.table_exists(TABLE)


def test_literals_and_the_day_window_select_the_same_rows_on_every_engine(warehouse):
    """A case id with a quote finds its row (replay, review lookups) and a window takes its days, end excluded."""
    ids = ["O'Brien-1", "plain", "100%", "back\\slash"]
    warehouse.replace_window(TABLE, "day", DAY, AFTER, [_rows(ids), _rows(["next"], day=NEXT)], COLUMNS)
    warehouse.replace_window(TABLE, "day", AFTER, AFTER + timedelta(days=1), [_rows(["after"], day=AFTER)], COLUMNS)
    for wanted in ids:
        found = warehouse.query(f"SELECT id FROM {TABLE} WHERE id = {text_literal(wanted)}")
        assert list(found["id"]) == [wanted]
    in_window = warehouse.query(f"SELECT id FROM {TABLE} WHERE {day_window('day', DAY, AFTER)} ORDER BY id")
    assert sorted(in_window["id"]) == sorted([*ids, "next"])
    one_day = warehouse.query(f"SELECT count(*) AS n FROM {TABLE} WHERE {day_window('day', NEXT)}")
    assert int(one_day["n"].iloc[0]) == 1
    on_day = warehouse.query(f"SELECT count(*) AS n FROM {TABLE} WHERE day = {date_literal(AFTER)}")
    assert int(on_day["n"].iloc[0]) == 1


# --- engine specifics -----------------------------------------------------------------------------------------------


def test_duckdb_leaves_a_missing_file_missing(tmp_path):
    path = tmp_path / "none" / "w.duckdb"
    warehouse = DuckDBWarehouse(path=str(path))
    assert not warehouse.table_exists(TABLE)
    warehouse.drop_table(TABLE)
    for read in (
        lambda: warehouse.query("SELECT 1"),
        lambda: list(warehouse.iter_window(TABLE, "day", DAY, NEXT)),
        lambda: warehouse.replace_window_from(TABLE, "day", DAY, NEXT, "staging.events"),
    ):
        with pytest.raises(WarehouseFileMissing, match="does not exist yet: materialize the raw assets first"):
            read()
    assert not path.exists()
    warehouse.ensure_table(TABLE, COLUMNS)  # a write makes it
    assert path.exists()


def test_a_duckdb_session_opens_the_file_once_and_still_rolls_back(tmp_path, monkeypatch):
    import resources.warehouse.duckdb_warehouse as engine

    opened = []
    real_open = engine._open_duckdb
    monkeypatch.setattr(engine, "_open_duckdb", lambda *args: opened.append(args) or real_open(*args))
    path = tmp_path / "w.duckdb"
    warehouse = DuckDBWarehouse(path=str(path))
    with warehouse.session():
        # The first call opens the file, as it would outside a session: reads do not create a missing warehouse.
        assert not warehouse.table_exists(TABLE)
        with pytest.raises(WarehouseFileMissing):
            warehouse.query("SELECT 1")
        assert not path.exists() and not opened
        with warehouse.session():  # nested: the same connection
            warehouse.ensure_table(TABLE, COLUMNS)
        warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("ab")], COLUMNS)
        with pytest.raises(RuntimeError):
            warehouse.replace_window(TABLE, "day", DAY, NEXT, _failing_source(), COLUMNS)
        _stage(warehouse)
        assert warehouse.replace_window_from("review.events", "day", DAY, NEXT, "staging.events", "flag") == 2
        warehouse.append("audit.log", pd.DataFrame({"seq": [1]}))
        warehouse.drop_table("staging.events")
        assert warehouse.table_exists(TABLE) and not warehouse.table_exists("staging.events")
        assert _stored(warehouse) == [("a", "2026-03-01", 1.0), ("b", "2026-03-01", 1.0)]
        # A read in chunks beside the writes of one session: its cursor is its own, so a write in between does
        # not replace the rows it hands out (they would be the INSERT's row count).
        many = [f"r{i:05d}" for i in range(5000)]
        warehouse.replace_window("staging.many", "day", DAY, NEXT, [_rows(many)], COLUMNS)
        copied = warehouse.replace_window_mapped("raw.copied", "day", DAY, NEXT, "staging.many", iter, COLUMNS, 2048)
        assert copied == 5000 and _count(warehouse, "raw.copied") == 5000
    assert len(opened) == 1
    assert _count(warehouse) == 2 and len(opened) == 2  # outside a session, each call opens the file


def test_postgres_writers_of_one_window_take_turns(postgres):
    """Two overlapping replaces of one window: without the advisory lock, each would delete only the rows it saw
    and both inserts would stay."""
    warehouse = _postgres_warehouse(postgres)
    warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("abc")], COLUMNS)
    first_chunk_written, errors = threading.Event(), []

    def slow_source():
        yield _rows("ab", amount=2.0)
        first_chunk_written.set()
        threading.Event().wait(1.0)  # the other writer starts meanwhile
        yield _rows("c", amount=2.0)

    def write(chunks):
        try:
            warehouse.replace_window(TABLE, "day", DAY, NEXT, chunks, COLUMNS)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    slow = threading.Thread(target=write, args=(slow_source(),))
    slow.start()
    assert first_chunk_written.wait(30)
    fast = threading.Thread(target=write, args=([_rows("abc", amount=3.0)],))
    fast.start()
    slow.join(60), fast.join(60)
    assert not errors
    assert _stored(warehouse) == [("a", "2026-03-01", 3.0), ("b", "2026-03-01", 3.0), ("c", "2026-03-01", 3.0)]


def test_postgres_reads_give_the_frames_duckdb_gives(postgres):
    warehouse = _postgres_warehouse(postgres)
    warehouse.replace_window(TABLE, "day", DAY, NEXT, [_rows("a", amount=1.5)], COLUMNS)
    frame = warehouse.query(f"SELECT day, CAST(amount AS NUMERIC) AS amount FROM {TABLE}")
    assert str(frame["day"].dtype).startswith("datetime64") and frame["amount"].dtype == "float64"
    assert warehouse.describe() == f"postgres:{postgres.user}@{postgres.host}:{postgres.port}/{warehouse.dbname}"


def test_spark_without_a_server_fails_at_once_naming_the_address_and_the_fix():
    from resources.warehouse.spark_warehouse import SparkUnreachable
    from tests.mlflow_server import free_port

    remote = f"sc://127.0.0.1:{free_port()}"  # nothing listens there
    with pytest.raises(SparkUnreachable, match=f"no Spark Connect server answers at {remote}.*make spark-up"):
        SparkWarehouse(remote=remote).table_exists("raw.events")
    with pytest.raises(ValueError, match="must be a Spark Connect address, sc://host:port"):
        SparkWarehouse(remote="http://127.0.0.1:15002").table_exists("raw.events")


def test_postgres_finds_a_days_rows_by_an_index_on_the_window_column_not_a_scan_of_every_day(postgres):
    """What a DBA checks on a year of days: the table has an index on its day column and a day's read or delete
    uses it. A table from before (no index) gets one at its next window write; an index a DBA made is kept."""
    import psycopg2

    warehouse = _postgres_warehouse(postgres)
    conn = psycopg2.connect(
        host=postgres.host, port=postgres.port, user=postgres.user, password=postgres.password, dbname=warehouse.dbname
    )
    conn.autocommit = True

    def indexes(table: str) -> list[str]:
        schema, name = table.split(".")
        with conn.cursor() as cur:
            cur.execute("SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (schema, name))
            return [row[0] for row in cur.fetchall()]

    days = [DAY + timedelta(days=i) for i in range(60)]
    year = pd.concat([_rows([f"{d}-{i}" for i in range(300)], d) for d in days], ignore_index=True)
    with conn.cursor() as cur:  # a table as an earlier version made it: no index
        cur.execute(
            "CREATE SCHEMA raw; CREATE TABLE raw.events (id VARCHAR NOT NULL, day DATE, amount DOUBLE PRECISION)"
        )
    assert indexes(TABLE) == []
    warehouse.replace_window(TABLE, "day", days[0], days[-1] + timedelta(days=1), [year], COLUMNS)
    made = indexes(TABLE)
    assert len(made) == 1 and made[0].endswith("(day)"), made
    with conn.cursor() as cur:
        cur.execute("ANALYZE raw.events")
        cur.execute(f"EXPLAIN SELECT * FROM raw.events WHERE {day_window('day', days[30], days[31])}")
        plan = "\n".join(row[0] for row in cur.fetchall())
    assert "Index" in plan and "Seq Scan" not in plan, plan
    warehouse.replace_window(TABLE, "day", days[30], days[31], [_rows(["again"], days[30])], COLUMNS)
    assert indexes(TABLE) == made and _count(warehouse) == len(year) - 300 + 1  # no second index, one day replaced

    with conn.cursor() as cur:  # a DBA's own index starting with the day column
        cur.execute("CREATE TABLE raw.tuned (id VARCHAR, day DATE, amount DOUBLE PRECISION)")
        cur.execute("CREATE INDEX tuned_by_day_and_id ON raw.tuned (day, id)")
    warehouse.replace_window("raw.tuned", "day", DAY, NEXT, [_rows(["a"])], COLUMNS)
    assert [definition.split(" ON ")[0] for definition in indexes("raw.tuned")] == ["CREATE INDEX tuned_by_day_and_id"]
    conn.close()
