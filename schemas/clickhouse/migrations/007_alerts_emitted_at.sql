-- emitted_at: the engine's event-time clock when the alert left the
-- engine (schemas.Alert.EmittedAt), so analysts can measure how soon an
-- alert could be acted on: emitted_at - detected_at. Rows written before
-- this column existed read 1970-01-01; use detected_at for them.

{{addColumn "alerts" "emitted_at DateTime('UTC')"}}
