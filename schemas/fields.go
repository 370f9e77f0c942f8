package schemas

import (
	"unsafe"
)

// Indexes of the canonical CDR fields in cdrFields.
const (
	fCallID = iota
	fCaller
	fCallee
	fStartTime
	fAnswerTime
	fEndTime
	fDurationS
	fDisposition
	fCauseCode
	fTrunk
	fSourceIP
	fIMSI
	fIMEI
	fCellID
	fAttestation
	numFields
)

// cdrFields is the one list of canonical field names: the JSON parser, the
// CSV header mapping and the encoder all use it, and the schema test
// compares it with cdr.schema.json.
var cdrFields = [numFields]string{
	fCallID:      "call_id",
	fCaller:      "caller",
	fCallee:      "callee",
	fStartTime:   "start_time",
	fAnswerTime:  "answer_time",
	fEndTime:     "end_time",
	fDurationS:   "duration_s",
	fDisposition: "disposition",
	fCauseCode:   "cause_code",
	fTrunk:       "trunk",
	fSourceIP:    "source_ip",
	fIMSI:        "imsi",
	fIMEI:        "imei",
	fCellID:      "cell_id",
	fAttestation: "attestation",
}

// CDRFields returns the canonical CDR field names that the JSON and CSV
// decoders recognise, in the order AppendJSON writes them.
func CDRFields() []string { return append([]string(nil), cdrFields[:]...) }

// fieldIndex returns the index in cdrFields of the field called name, or -1.
// It does not allocate.
func fieldIndex(name []byte) int {
	switch string(name) {
	case "call_id":
		return fCallID
	case "caller":
		return fCaller
	case "callee":
		return fCallee
	case "start_time":
		return fStartTime
	case "answer_time":
		return fAnswerTime
	case "end_time":
		return fEndTime
	case "duration_s":
		return fDurationS
	case "disposition":
		return fDisposition
	case "cause_code":
		return fCauseCode
	case "trunk":
		return fTrunk
	case "source_ip":
		return fSourceIP
	case "imsi":
		return fIMSI
	case "imei":
		return fIMEI
	case "cell_id":
		return fCellID
	case "attestation":
		return fAttestation
	}
	return -1
}

// stringField returns a pointer to the plain string field idx of c (those
// stored as given), or nil for the other fields.
func stringField(c *CDR, idx int) *string {
	switch idx {
	case fCallID:
		return &c.CallID
	case fTrunk:
		return &c.Trunk
	case fSourceIP:
		return &c.SourceIP
	case fIMSI:
		return &c.IMSI
	case fIMEI:
		return &c.IMEI
	case fCellID:
		return &c.CellID
	}
	return nil
}

// MaxCauseCode is the largest Q.850 cause value.
const MaxCauseCode = 127

// parseAttestation reads a STIR/SHAKEN attestation level, "A", "B" or "C"
// (lower case accepted), into its canonical upper-case byte.
func parseAttestation(b []byte) (byte, bool) {
	if len(b) == 1 {
		switch b[0] {
		case 'A', 'B', 'C':
			return b[0], true
		case 'a', 'b', 'c':
			return b[0] - ('a' - 'A'), true
		}
	}
	return 0, false
}

// b2s returns a string that shares b's memory. b must not change while the
// string is in use.
func b2s(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// normalizeNumber normalises the phone number raw with plan. When
// normalisation changes nothing (an E.164 number, an opaque identifier) the
// result aliases raw; otherwise it is appended to *arena and aliases that.
func normalizeNumber(plan *NumberPlan, arena *[]byte, raw []byte) string {
	if IsE164(b2s(raw)) {
		return b2s(raw)
	}
	start := len(*arena)
	out, isNumber := plan.AppendNormalized(*arena, raw)
	if !isNumber || string(out[start:]) == b2s(raw) {
		*arena = out[:start]
		return b2s(raw)
	}
	*arena = out
	return b2s(out[start:])
}

// trimSpace trims ASCII spaces and tabs from both ends of b.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}
