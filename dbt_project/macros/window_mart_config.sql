{#- How an incremental mart replaces the run's window [min_date, max_date) of `window_column`, per engine. Models
    call `config(**window_mart_config('<column>'))`, so engine-specific materialization lives here, dispatched on
    the adapter, never in copies of models. -#}
{% macro window_mart_config(window_column) -%}
    {{ return(adapter.dispatch('window_mart_config', 'nightjar')(window_column)) }}
{%- endmacro %}


{#- DuckDB, Postgres: the pre-hook deletes the window, then delete+insert on the unique key writes it, so rows
    whose raw rows were removed do not survive a re-run. The post-hook indexes what those deletes look up (on
    Postgres; a no-op elsewhere). -#}
{% macro default__window_mart_config(window_column) -%}
    {{ return({
        'incremental_strategy': 'delete+insert',
        'pre_hook': "{{ clear_window('" ~ window_column ~ "') }}",
        'post_hook': "{{ index_window_mart('" ~ window_column ~ "') }}",
    }) }}
{%- endmacro %}


{#- Postgres finds rows only by an index: without one on the window column the pre-hook's delete and every read
    of a day scan the whole mart (a year of days for one), and without one on the unique key so does the
    delete+insert's delete. Made if missing after each build, so a mart built before gets them at its next run;
    DuckDB needs none (its zone maps skip other days), Spark partitions by day.
    Once made, the hook only looks the name up (no lock: CREATE INDEX IF NOT EXISTS would take a SHARE lock on
    the mart every build, which waits on any concurrent build's writes). Two builds making it at once can
    deadlock or collide on the name: the one that loses skips it (its build is kept) and the other makes it. -#}
{% macro index_window_mart(window_column) -%}
    {{ return(adapter.dispatch('index_window_mart', 'nightjar')(window_column)) }}
{%- endmacro %}

{% macro default__index_window_mart(window_column) -%}{%- endmacro %}

{% macro postgres__index_window_mart(window_column) -%}
    {%- set key = config.get('unique_key') -%}
    {%- set keys = [key] if key is string else (key or []) -%}
    {%- for column in [window_column] + keys -%}
        {%- set name = this.identifier ~ '__' ~ column -%}
        {%- if name | length > 63 -%}
            {%- set name = this.identifier[:40] ~ '__' ~ local_md5(this.identifier ~ '.' ~ column)[:12] -%}
        {%- endif %}
    do $$ begin
        if to_regclass('{{ this.schema }}."{{ name }}"') is null then
            create index if not exists "{{ name }}" on {{ this }} ("{{ column }}");
        end if;
    exception when deadlock_detected or unique_violation or duplicate_table then
        null;
    end $$;
    {%- endfor %}
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
