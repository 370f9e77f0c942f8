package main

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

func TestConsoleHashPassword(t *testing.T) {
	var out bytes.Buffer
	if err := hashPassword(strings.NewReader("a-good-password\n"), &out); err != nil {
		t.Fatal(err)
	}
	h := strings.TrimSpace(out.String())
	if bcrypt.CompareHashAndPassword([]byte(h), []byte("a-good-password")) != nil {
		t.Errorf("hash %q does not verify", h)
	}
	if err := hashPassword(strings.NewReader("short\n"), &out); err == nil {
		t.Error("a 5-character password was hashed")
	}
}
