{#- True for rows whose date column falls in the run's window: [min_date, max_date). -#}
{% macro in_window(column) -%}
    {{ column }} >= cast('{{ window_bound("min_date") }}' as date)
    and {{ column }} < cast('{{ window_bound("max_date") }}' as date)
{%- endmacro %}


{#- One bound of the run's window. Dagster hands the window over in the environment (NIGHTJAR_DBT_MIN_DATE,
    NIGHTJAR_DBT_MAX_DATE), read only when executing: dbt re-parses the whole project (seconds) whenever --vars
    change, but an env_var() that parsing never calls leaves partial parsing intact. A plain `dbt build` may
    still pass --vars '{"min_date": ..., "max_date": ...}'; with neither, the defaults select all history. -#}
{% macro window_bound(name) -%}
    {%- if execute -%}
        {{- env_var('NIGHTJAR_DBT_' ~ (name | upper), var(name)) -}}
    {%- else -%}
        {{- var(name) -}}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of the incremental marts: delete the run's window before it is rebuilt, so rows whose raw rows
    were removed do not survive a re-run (delete+insert on the unique key alone would keep them). -#}
{% macro clear_window(column) -%}
    {% if is_incremental() %}delete from {{ this }} where {{ in_window(column) }}{% endif %}
{%- endmacro %}
