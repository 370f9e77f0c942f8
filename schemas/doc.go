// Package schemas holds what crosses cdrguard's process boundaries: the
// canonical call-detail record (CDR), alerts and the suspension webhook
// body (HookBody), their published JSON Schemas (CDRSchemaJSON,
// AlertSchemaJSON, HookSchemaJSON), the alert decoder ParseAlertJSON, the decoders that read CDRs
// from switches and files (NewDecoder: canonical JSON lines, CSV, Asterisk
// Master.csv, FreeSWITCH mod_json_cdr), the allocation-free JSONParser used
// for one Kafka message at a time, and the canonical encoder AppendJSON.
//
// The package uses the standard library only.
package schemas
