{#- True for rows whose date column falls in the run's window: [var('min_date'), var('max_date')). -#}
{% macro in_window(column) -%}
    {{ column }} >= cast('{{ var("min_date") }}' as date)
    and {{ column }} < cast('{{ var("max_date") }}' as date)
{%- endmacro %}


{#- Pre-hook of the incremental marts: delete the run's window before it is rebuilt, so rows whose raw rows
    were removed do not survive a re-run (delete+insert on the unique key alone would keep them). -#}
{% macro clear_window(column) -%}
    {% if is_incremental() %}delete from {{ this }} where {{ in_window(column) }}{% endif %}
{%- endmacro %}
