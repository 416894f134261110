{#- True for rows whose date column falls in the run's window: [min_date, max_date). -#}
{% macro in_window(column) -%}
    {{ column }} >= cast('{{ window_bound("min_date") }}' as date)
    and {{ column }} < cast('{{ window_bound("max_date") }}' as date)
{%- endmacro %}


{#- One bound of the run's window. Dagster hands the window over as dbt's event-time flags (`dbt build
    --event-time-start 2026-01-02 --event-time-end 2026-01-03`, meant for microbatch models, which this project
    has none of), read only when executing: dbt re-parses the whole project (seconds) whenever --vars change, but
    these flags leave its parse state intact. A plain `dbt build` may pass the same flags, or --vars
    '{"min_date": ..., "max_date": ...}' (commands without event-time flags, such as `dbt test`, take only vars);
    with neither, the defaults in dbt_project.yml select all history. -#}
{% macro window_bound(name) -%}
    {%- set given = invocation_args_dict.get('event_time_start' if name == 'min_date' else 'event_time_end') if execute else none -%}
    {%- if given -%}
        {{- given.strftime('%Y-%m-%d') -}}
    {%- else -%}
        {{- var(name) -}}
    {%- endif -%}
{%- endmacro %}


{#- Pre-hook of the incremental marts: delete the run's window before it is rebuilt, so rows whose raw rows
    were removed do not survive a re-run (delete+insert on the unique key alone would keep them). -#}
{% macro clear_window(column) -%}
    {% if is_incremental() %}delete from {{ this }} where {{ in_window(column) }}{% endif %}
{%- endmacro %}
