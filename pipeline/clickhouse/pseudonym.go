package clickhouse

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"

	"github.com/cdrguard/cdrguard/schemas"
)

// PseudonymLen is the length of a pseudonym: 32 hex digits (128 bits).
const PseudonymLen = 32

// Pseudonymize returns hex(HMAC-SHA256(key, number))[:32]: the pseudonym
// stored instead of a callee number when Options.PseudonymizeCallees is
// on. The same key gives a number the same pseudonym everywhere, so
// distinct counts, repeat-victim queries and joins on callee still work;
// without the key a pseudonym cannot be turned back into the number (an
// analyst with the key can compute a number's pseudonym to look it up).
func Pseudonymize(key []byte, number string) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(number))
	var sum [sha256.Size]byte
	var out [2 * sha256.Size]byte
	hex.Encode(out[:], m.Sum(sum[:0]))
	return string(out[:PseudonymLen])
}

// SyntheticCallIDPrefix starts every synthetic call ID.
const SyntheticCallIDPrefix = "syn:"

// SyntheticCallID is the call ID stored for a CDR that has none: "syn:"
// and the first 128 bits of a SHA-256 over all its canonical fields (with
// the callee as received, before any pseudonymisation), in hex. The same
// record always gets the same ID, so a replayed or re-delivered record
// replaces its first copy in the cdrs table; records that differ in any
// field get different IDs.
func SyntheticCallID(c *schemas.CDR) string {
	h := sha256.New()
	var buf [8]byte
	str := func(s string) {
		binary.BigEndian.PutUint32(buf[:4], uint32(len(s)))
		h.Write(buf[:4])
		h.Write([]byte(s))
	}
	num := func(v uint64) {
		binary.BigEndian.PutUint64(buf[:], v)
		h.Write(buf[:])
	}
	str(c.Caller)
	str(c.Callee)
	num(uint64(c.StartMS))
	num(uint64(c.AnswerMS))
	num(uint64(c.EndMS))
	num(uint64(uint32(c.DurationS)))
	num(uint64(c.Disposition)<<24 | uint64(c.Attestation)<<16 | uint64(c.CauseCode))
	str(c.Trunk)
	str(c.SourceIP)
	str(c.IMSI)
	str(c.IMEI)
	str(c.CellID)
	var sum [sha256.Size]byte
	return SyntheticCallIDPrefix + hex.EncodeToString(h.Sum(sum[:0])[:16])
}
