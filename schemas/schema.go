package schemas

import _ "embed" // for the published JSON Schemas

// CDRSchemaJSON is the JSON Schema (draft 2020-12) of the canonical CDR
// that the jsonl decoder and JSONParser read and AppendJSON writes.
//
//go:embed cdr.schema.json
var CDRSchemaJSON []byte

// AlertSchemaJSON is the JSON Schema (draft 2020-12) of Alert as
// Alert.AppendJSON writes it.
//
//go:embed alert.schema.json
var AlertSchemaJSON []byte

// HookSchemaJSON is the JSON Schema (draft 2020-12) of HookBody, the body
// of the suspension webhooks.
//
//go:embed hook.schema.json
var HookSchemaJSON []byte
