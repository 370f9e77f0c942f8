package clickhouse

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/cdrguard/cdrguard/schemas"
)

func TestPseudonymize(t *testing.T) {
	key := []byte("0123456789abcdef")
	m := hmac.New(sha256.New, key)
	m.Write([]byte("+15550200042"))
	want := hex.EncodeToString(m.Sum(nil))[:32]
	got := Pseudonymize(key, "+15550200042")
	if got != want || len(got) != PseudonymLen {
		t.Errorf("Pseudonymize = %q, want %q", got, want)
	}
	// RFC 4231 test case 2: HMAC-SHA-256("Jefe", "what do ya want for nothing?").
	if got := Pseudonymize([]byte("Jefe"), "what do ya want for nothing?"); got != "5bdcc146bf60754e6a042426089575c7" {
		t.Errorf("RFC 4231 case 2: %q", got)
	}
	if Pseudonymize(key, "+15550200042") == Pseudonymize([]byte("fedcba9876543210"), "+15550200042") {
		t.Error("two keys give the same pseudonym")
	}
	if Pseudonymize(key, "+15550200042") == Pseudonymize(key, "+15550200043") {
		t.Error("two numbers give the same pseudonym")
	}
}

func TestSyntheticCallID(t *testing.T) {
	c := schemas.CDR{Caller: "+15550100001", Callee: "+15550200042", StartMS: 1795000000000, Disposition: schemas.Busy, CauseCode: 17, Trunk: "t1"}
	id := SyntheticCallID(&c)
	if !strings.HasPrefix(id, SyntheticCallIDPrefix) || len(id) != len(SyntheticCallIDPrefix)+32 {
		t.Fatalf("SyntheticCallID = %q", id)
	}
	clone := c.Clone()
	if SyntheticCallID(&clone) != id {
		t.Error("a copy of the record gets another ID")
	}
	for name, mutate := range map[string]func(*schemas.CDR){
		"caller":      func(c *schemas.CDR) { c.Caller = "+15550100002" },
		"callee":      func(c *schemas.CDR) { c.Callee = "+15550200043" },
		"start":       func(c *schemas.CDR) { c.StartMS++ },
		"disposition": func(c *schemas.CDR) { c.Disposition = schemas.Rejected },
		"cause":       func(c *schemas.CDR) { c.CauseCode = 21 },
		"trunk":       func(c *schemas.CDR) { c.Trunk = "t2" },
		"boundary":    func(c *schemas.CDR) { c.Trunk, c.SourceIP = "t", "1" }, // "t1"+"" vs "t"+"1"
		"cell":        func(c *schemas.CDR) { c.CellID = "cell-9" },
	} {
		d := c.Clone()
		mutate(&d)
		if SyntheticCallID(&d) == id {
			t.Errorf("changing %s keeps the synthetic ID", name)
		}
	}
}
