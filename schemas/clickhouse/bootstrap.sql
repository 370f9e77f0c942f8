-- Creates the database and the table that records applied migrations.
-- Rendered and run before every migration; safe to run any number of times.

CREATE DATABASE IF NOT EXISTS {{.Database}}{{onCluster}};

CREATE TABLE IF NOT EXISTS {{.Database}}.cdrguard_migrations{{onCluster}}
(
    version        UInt32,
    name           String,
    applied_at     DateTime('UTC'),
    server_version String
)
ENGINE = {{sharedEngine "ReplacingMergeTree" "cdrguard_migrations" ""}}
ORDER BY version;
