{#-
    dbt tests guard the run's window, not all history.

    A partition run passes its window, min_date (inclusive) to max_date (exclusive): see window_bound() in in_window.sql. Every generic test (unique,
    not_null, accepted_values, relationships, ...) on a model or source that declares its partition column in
    `config.meta.nightjar.partition_column` reads only the rows of that window, so one bad stored day fails the
    build of that day and never the builds of later days. Without a window (a plain `dbt test` / `dbt build`, or
    the full-history test job) no filter is added at all: every row is checked, rows with a null partition
    column included.

    How: dbt compiles a generic test's `model` argument to `{{ get_where_subquery(<ref or source>) }}` at run
    time (dbt-core: parser/generic_test_builders.py, build_model_str). dbt's own version reads the test's
    `where` config, which is rendered at parse time (var() works, as dbt re-parses when vars change, but project
    macros are not available there); this override, in the root project, wins over dbt's and adds the window on
    the tested resource's partition column, AND-ed with any `where` a test sets itself. Singular tests are not
    wrapped by dbt: they call test_window_filter() themselves.
-#}

{#- True when the vars select all history (the defaults in dbt_project.yml, or wider): no filter then. -#}
{% macro window_is_unbounded() -%}
    {{ return((window_bound('min_date') | string) <= '1900-01-01' and (window_bound('max_date') | string) >= '9999-12-31') }}
{%- endmacro %}


{#- SQL condition keeping the run's window of `column`; `true` when the run has no window (all history). -#}
{% macro test_window_filter(column) -%}
    {%- if window_is_unbounded() -%}
        true
    {%- else -%}
        {{ in_window(column) }}
    {%- endif -%}
{%- endmacro %}


{#- The partition column the tested resource declares (config.meta.nightjar.partition_column), or none.
    `model` here is the test node being compiled: a test on a model names it in `attached_node`; a test on a
    source has none, so the source is found by the relation the test reads. -#}
{% macro tested_partition_column(relation) -%}
    {%- set tested = [] -%}
    {%- set attached = model.get('attached_node') if model is mapping else model.attached_node -%}
    {%- if attached and attached in graph.nodes -%}
        {%- do tested.append(graph.nodes[attached]) -%}
    {%- else -%}
        {%- for source in graph.sources.values() if source.relation_name == relation.render() -%}
            {%- do tested.append(source) -%}
        {%- endfor -%}
    {%- endif -%}
    {%- if not tested -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set meta = tested[0].get('config', {}).get('meta', {}) or tested[0].get('meta', {}) -%}
    {{ return((meta.get('nightjar') or {}).get('partition_column')) }}
{%- endmacro %}


{% macro get_where_subquery(relation) -%}
    {%- if not execute -%}
        {#- Parse time: dbt renders the test only to collect its refs; there is no graph yet. -#}
        {{ return(relation) }}
    {%- endif -%}
    {%- set conditions = [] -%}
    {%- set where = config.get('where', '') -%}
    {%- if where -%}
        {%- do conditions.append('(' ~ where ~ ')') -%}
    {%- endif -%}
    {%- set column = tested_partition_column(relation) -%}
    {%- if column and not window_is_unbounded() -%}
        {%- do conditions.append('(' ~ in_window(column) | trim ~ ')') -%}
    {%- endif -%}
    {%- if conditions -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ conditions | join(' and ') }}) dbt_subquery
        {%- endset -%}
        {{ return(filtered) }}
    {%- else -%}
        {{ return(relation) }}
    {%- endif -%}
{%- endmacro %}
