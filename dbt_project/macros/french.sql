{#-
  Texts published to French readers (alert details on the site and in alertes.csv) are
  written here, beside their English twins for analysts.
-#}

{#- A UTC timestamp as a French reader writes it, in Paris time: 30/11/2026 à 21 h 47. -#}
{% macro fr_datetime(utc_timestamp) -%}
    strftime(timezone('Europe/Paris', timezone('UTC', {{ utc_timestamp }})), '%d/%m/%Y à %H h %M')
{%- endmacro %}

{#- A snapshot status in French (the method's words: docs/methodologie.md). -#}
{% macro fr_snapshot_status(status) -%}
    case {{ status }}
        when 'not_found' then 'compte introuvable'
        when 'not_business' then 'compte devenu personnel (ni professionnel ni créateur)'
        when 'error' then 'erreur de l''API'
        else {{ status }}
    end
{%- endmacro %}
