{#- True for rows whose date column falls in the run's window: [var('min_date'), var('max_date')). -#}
{% macro in_window(column) -%}
    {{ column }} >= cast('{{ var("min_date") }}' as date)
    and {{ column }} < cast('{{ var("max_date") }}' as date)
{%- endmacro %}
