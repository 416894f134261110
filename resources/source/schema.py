"""The raw tables' contract: column names and warehouse types, shared by every source.

The synthetic generator produces exactly these columns, the landing-folder source validates files against
them, and the warehouse creates its raw tables from them. A user bringing other data edits this contract
(and the dbt staging models that read it), nothing else in the raw layer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    dtype: str  # warehouse type: VARCHAR, DATE, TIMESTAMP, DOUBLE, INTEGER, BOOLEAN
    nullable: bool = True


@dataclass(frozen=True)
class TableSchema:
    name: str  # table name inside the raw schema
    partition_column: str  # DATE column holding the partition day
    id_column: str
    columns: tuple[Column, ...]

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


APPLICATIONS = TableSchema(
    name="applications",
    partition_column="application_date",
    id_column="application_id",
    columns=(
        Column("application_id", "VARCHAR", nullable=False),
        Column("applied_at", "TIMESTAMP", nullable=False),
        Column("application_date", "DATE", nullable=False),
        Column("annual_income", "DOUBLE"),
        Column("loan_amount", "DOUBLE"),
        Column("term_months", "INTEGER"),
        Column("interest_rate", "DOUBLE"),
        Column("credit_score", "INTEGER"),
        Column("debt_to_income", "DOUBLE"),
        Column("employment_length_years", "INTEGER"),
        Column("home_ownership", "VARCHAR"),
        Column("purpose", "VARCHAR"),
        Column("state", "VARCHAR"),
        Column("age", "INTEGER"),
        Column("open_credit_lines", "INTEGER"),
        Column("delinquencies_2y", "INTEGER"),
        Column("revolving_utilization", "DOUBLE"),
        Column("inquiries_6m", "INTEGER"),
        Column("channel", "VARCHAR"),
    ),
)

OUTCOMES = TableSchema(
    name="outcomes",
    partition_column="outcome_date",
    id_column="application_id",
    columns=(
        Column("application_id", "VARCHAR", nullable=False),
        Column("application_date", "DATE", nullable=False),
        Column("outcome_date", "DATE", nullable=False),
        Column("observed_at", "TIMESTAMP", nullable=False),
        Column("defaulted", "BOOLEAN", nullable=False),
    ),
)

RAW_TABLES = {t.name: t for t in (APPLICATIONS, OUTCOMES)}
