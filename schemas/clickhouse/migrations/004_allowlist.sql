-- allowlist: the rules file's allowlist (numbers, prefixes, sources),
-- replaced at every run start, so analysts can review alerts on
-- allowlisted entries. kind is 'number', 'prefix' or 'source'. Every node
-- of a cluster holds the whole list.

CREATE TABLE IF NOT EXISTS {{.Database}}.allowlist{{onCluster}}
(
    entry       String,
    kind        {{lc}},
    source_file String,
    loaded_at   DateTime('UTC')
)
ENGINE = {{sharedEngine "ReplacingMergeTree" "allowlist" "loaded_at"}}
ORDER BY (kind, entry);
