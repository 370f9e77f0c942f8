package console

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"
)

// Role is what a user may do. Roles are ordered: each may do what the
// ones before it may.
type Role int

// Roles.
const (
	// RoleViewer reads every page.
	RoleViewer Role = iota + 1
	// RoleAnalyst also decides: confirm, false positive, release,
	// acknowledge.
	RoleAnalyst
	// RoleSupervisor also approves and rejects held suspensions and
	// redelivers parked requests.
	RoleSupervisor
)

// String is the role's name in the users file.
func (r Role) String() string {
	switch r {
	case RoleViewer:
		return "viewer"
	case RoleAnalyst:
		return "analyst"
	case RoleSupervisor:
		return "supervisor"
	}
	return fmt.Sprintf("role(%d)", int(r))
}

// ParseRole reads a role name.
func ParseRole(s string) (Role, error) {
	switch s {
	case "viewer":
		return RoleViewer, nil
	case "analyst":
		return RoleAnalyst, nil
	case "supervisor":
		return RoleSupervisor, nil
	}
	return 0, fmt.Errorf("role %q is not viewer, analyst or supervisor", s)
}

// User is one console user.
type User struct {
	Name string
	Role Role
	hash []byte
}

// Users is the users file: who may log in, with which role. It is
// immutable and safe for concurrent use.
type Users struct {
	byName map[string]User
}

type usersFile struct {
	Users []struct {
		Name         string `yaml:"name"`
		Role         string `yaml:"role"`
		PasswordHash string `yaml:"password_hash"`
	} `yaml:"users"`
}

// LoadUsers reads a users file (see ParseUsers).
func LoadUsers(path string) (*Users, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read users file: %w", err)
	}
	u, err := ParseUsers(data)
	if err != nil {
		return nil, fmt.Errorf("users file %s: %w", path, err)
	}
	return u, nil
}

// ParseUsers reads `users: [{name: ana, role: analyst, password_hash:
// ...}]` strictly: unknown keys, duplicate or empty names, unknown roles
// and hashes that are not bcrypt are errors. Messages never include a
// hash.
func ParseUsers(data []byte) (*Users, error) {
	var f usersFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	u := &Users{byName: map[string]User{}}
	for i, e := range f.Users {
		name := strings.TrimSpace(e.Name)
		if name == "" || name != e.Name || len(name) > 64 {
			return nil, fmt.Errorf("user %d: name %q must be 1 to 64 characters without surrounding spaces", i+1, e.Name)
		}
		if _, dup := u.byName[name]; dup {
			return nil, fmt.Errorf("user %q is listed twice", name)
		}
		role, err := ParseRole(e.Role)
		if err != nil {
			return nil, fmt.Errorf("user %q: %w", name, err)
		}
		if _, err := bcrypt.Cost([]byte(e.PasswordHash)); err != nil {
			return nil, fmt.Errorf("user %q: password_hash is not a bcrypt hash (make one with cdrguard console hash-password)", name)
		}
		u.byName[name] = User{Name: name, Role: role, hash: []byte(e.PasswordHash)}
	}
	if len(u.byName) == 0 {
		return nil, errors.New("no users")
	}
	return u, nil
}

// Len is the number of users.
func (u *Users) Len() int { return len(u.byName) }

// dummyHash is compared against for unknown users, so a login takes as
// long whether or not the name exists.
var dummyHash, _ = bcrypt.GenerateFromPassword([]byte("cdrguard-no-such-user"), bcrypt.DefaultCost)

// Authenticate checks a name and password. It takes a bcrypt comparison's
// time (tens of milliseconds) whether or not the user exists.
func (u *Users) Authenticate(name, password string) (User, bool) {
	user, ok := u.byName[name]
	hash := dummyHash
	if ok {
		hash = user.hash
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(password)) != nil || !ok {
		return User{}, false
	}
	return user, true
}

// HashPassword returns the bcrypt hash of a password for the users file.
// Passwords of fewer than 8 bytes are refused; bcrypt reads at most 72.
func HashPassword(password string) (string, error) {
	if len(password) < 8 {
		return "", errors.New("password is shorter than 8 characters")
	}
	if len(password) > 72 {
		return "", errors.New("password is longer than 72 bytes (bcrypt's limit)")
	}
	h, err := bcrypt.GenerateFromPassword([]byte(password), 12)
	if err != nil {
		return "", fmt.Errorf("cannot hash password: %w", err)
	}
	return string(h), nil
}

// session is what the signed session cookie holds.
type session struct {
	User    string `json:"u"`
	Role    Role   `json:"r"`
	Expires int64  `json:"e"` // Unix seconds
	Nonce   string `json:"n"` // binds the CSRF token to this session
}

// signer signs cookies and CSRF tokens with the session key.
type signer struct{ key []byte }

func (s signer) mac(parts ...string) []byte {
	m := hmac.New(sha256.New, s.key)
	for _, p := range parts {
		m.Write([]byte(p))
		m.Write([]byte{0})
	}
	return m.Sum(nil)
}

var b64 = base64.RawURLEncoding

// encode returns the cookie value of ss: payload.signature.
func (s signer) encode(ss session) string {
	payload, _ := json.Marshal(ss)
	p := b64.EncodeToString(payload)
	return p + "." + b64.EncodeToString(s.mac("session", p))
}

// decode verifies a cookie value and returns its session if it is signed
// by this key and not expired.
func (s signer) decode(v string, now time.Time) (session, bool) {
	p, sig, ok := strings.Cut(v, ".")
	if !ok {
		return session{}, false
	}
	want := s.mac("session", p)
	got, err := b64.DecodeString(sig)
	if err != nil || !hmac.Equal(got, want) {
		return session{}, false
	}
	payload, err := b64.DecodeString(p)
	if err != nil {
		return session{}, false
	}
	var ss session
	if err := json.Unmarshal(payload, &ss); err != nil || ss.User == "" || ss.Nonce == "" {
		return session{}, false
	}
	if now.Unix() >= ss.Expires {
		return session{}, false
	}
	return ss, true
}

// csrf is the form token for a session (or a login) nonce.
func (s signer) csrf(purpose, nonce string) string {
	return b64.EncodeToString(s.mac("csrf", purpose, nonce))
}

// checkCSRF compares a submitted token in constant time.
func (s signer) checkCSRF(purpose, nonce, token string) bool {
	got, err := b64.DecodeString(token)
	if err != nil || nonce == "" {
		return false
	}
	return hmac.Equal(got, s.mac("csrf", purpose, nonce))
}

func randomToken() string {
	var b [18]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return b64.EncodeToString(b[:])
}
