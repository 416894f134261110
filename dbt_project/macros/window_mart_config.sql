{#- How an incremental mart replaces the run's window [min_date, max_date) of `window_column`, per engine. Models
    call `config(**window_mart_config('<column>'))`, so engine-specific materialization lives here, dispatched on
    the adapter, never in copies of models. -#}
{% macro window_mart_config(window_column) -%}
    {{ return(adapter.dispatch('window_mart_config', 'nightjar')(window_column)) }}
{%- endmacro %}


{#- DuckDB, Postgres: the pre-hook deletes the window, then delete+insert on the unique key writes it, so rows
    whose raw rows were removed do not survive a re-run. -#}
{% macro default__window_mart_config(window_column) -%}
    {{ return({
        'incremental_strategy': 'delete+insert',
        'pre_hook': "{{ clear_window('" ~ window_column ~ "') }}",
    }) }}
{%- endmacro %}


{#- Spark: the table is partitioned by the day column and a run overwrites the days it writes (the server runs
    with spark.sql.sources.partitionOverwriteMode=dynamic): the same rows as a delete of the window, with no
    DELETE, which parquet tables do not support. -#}
{% macro spark__window_mart_config(window_column) -%}
    {{ return({
        'incremental_strategy': 'insert_overwrite',
        'file_format': 'parquet',
        'partition_by': [window_column],
    }) }}
{%- endmacro %}
