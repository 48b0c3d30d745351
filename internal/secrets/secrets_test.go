package secrets_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/secrets"
	"github.com/lading-dev/lading/internal/sqldb"
	"github.com/lading-dev/lading/internal/sqldb/sqldbtest"
)

func key(t *testing.T) []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}

func TestSealOpen(t *testing.T) {
	k, err := secrets.New(key(t))
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := k.Seal("registry:1", "s3cret-pass")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "s3cret") || !strings.HasPrefix(sealed, "lading:v1:"+k.SealingKeyID()+":") {
		t.Fatalf("sealed = %q", sealed)
	}
	again, _ := k.Seal("registry:1", "s3cret-pass")
	if again == sealed {
		t.Error("two seals of one secret are equal: the nonce is not fresh")
	}
	got, err := k.Open("registry:1", sealed)
	if err != nil || got != "s3cret-pass" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if e, _ := k.Seal("registry:1", ""); e != "" {
		t.Errorf("the empty secret sealed to %q", e)
	}
	if got, err := k.Open("registry:1", ""); got != "" || err != nil {
		t.Errorf("Open(\"\") = %q, %v", got, err)
	}
	// Hostile or mistaken inputs: a clear error of class corrupt or
	// precondition, never a panic.
	b64 := sealed[strings.LastIndexByte(sealed, ':')+1:]
	raw, _ := base64.RawStdEncoding.DecodeString(b64)
	raw[len(raw)-1] ^= 1
	tampered := strings.TrimSuffix(sealed, b64) + base64.RawStdEncoding.EncodeToString(raw)
	other, _ := secrets.New(key(t))
	otherSealed, _ := other.Seal("registry:1", "x")
	for name, tc := range map[string]struct {
		purpose, sealed string
		class           error
	}{
		"another row":      {"registry:2", sealed, errdefs.ErrCorrupt},
		"tampered":         {"registry:1", tampered, errdefs.ErrCorrupt},
		"not sealed":       {"registry:1", "plaintext", errdefs.ErrCorrupt},
		"truncated":        {"registry:1", sealed[:len("lading:v1:")+17] + "AAAA", errdefs.ErrCorrupt},
		"no key id":        {"registry:1", "lading:v1:abc", errdefs.ErrCorrupt},
		"bad base64":       {"registry:1", "lading:v1:" + k.SealingKeyID() + ":!!!", errdefs.ErrCorrupt},
		"unknown key":      {"registry:1", otherSealed, errdefs.ErrFailedPrecondition},
		"empty ciphertext": {"registry:1", "lading:v1:" + k.SealingKeyID() + ":", errdefs.ErrCorrupt},
	} {
		_, err := k.Open(tc.purpose, tc.sealed)
		if !errors.Is(err, tc.class) {
			t.Errorf("%s: %v, want class %v", name, err, tc.class)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error names the secret: %v", name, err)
		}
	}
}

func writeKey(t *testing.T, dir, name string, b []byte, mode os.FileMode) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestReadKeyFile(t *testing.T) {
	dir := t.TempDir()
	k := key(t)
	for name, tc := range map[string]struct {
		content []byte
		mode    os.FileMode
		ok      bool
	}{
		"raw":            {k, 0o600, true},
		"base64":         {[]byte(base64.StdEncoding.EncodeToString(k) + "\n"), 0o600, true},
		"base64url raw":  {[]byte(base64.RawURLEncoding.EncodeToString(k)), 0o400, true},
		"world readable": {k, 0o644, false},
		"too short":      {k[:16], 0o600, false},
		"garbage":        {[]byte("not a key at all, really not"), 0o600, false},
	} {
		p := writeKey(t, dir, strings.ReplaceAll(name, " ", "-"), tc.content, tc.mode)
		got, err := secrets.ReadKeyFile(p)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v, want ok %v", name, err, tc.ok)
		}
		if err == nil && !bytes.Equal(got, k) {
			t.Errorf("%s: read another key", name)
		}
	}
	if _, err := secrets.ReadKeyFile(filepath.Join(dir, "absent")); err == nil {
		t.Error("an absent key file was read")
	}
}

// TestDatabaseKeyAndRotation: without a key file every opening of the
// database gets the same key; with one, the file's key seals and the
// database's still opens what it sealed, and a later rotation opens both.
func TestDatabaseKeyAndRotation(t *testing.T) {
	sqldbtest.Each(t, secrets.Migrations, func(t *testing.T, db *sqldb.DB) {
		ctx := context.Background()
		a, err := secrets.Open(ctx, db, secrets.Options{})
		if err != nil {
			t.Fatal(err)
		}
		b, err := secrets.Open(ctx, db, secrets.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if a.SealingKeyID() != b.SealingKeyID() || a.FromFile() {
			t.Fatalf("two openings: keys %s and %s (from file %v)", a.SealingKeyID(), b.SealingKeyID(), a.FromFile())
		}
		old, _ := a.Seal("registry:7", "first")

		dir := t.TempDir()
		f1 := writeKey(t, dir, "k1", key(t), 0o600)
		withFile, err := secrets.Open(ctx, db, secrets.Options{KeyFile: f1})
		if err != nil {
			t.Fatal(err)
		}
		if !withFile.FromFile() || withFile.SealingKeyID() == a.SealingKeyID() {
			t.Fatal("the key file does not seal")
		}
		if !withFile.Stale(old) {
			t.Error("a secret sealed by the database's key is not stale once a key file is set")
		}
		moved, err := withFile.Reseal("registry:7", old)
		if err != nil || withFile.Stale(moved) {
			t.Fatalf("Reseal: %v (stale %v)", err, withFile.Stale(moved))
		}
		if got, err := withFile.Open("registry:7", moved); err != nil || got != "first" {
			t.Fatalf("Open after reseal = %q, %v", got, err)
		}
		// Rotation: a new file seals, the old one only opens.
		f2 := writeKey(t, dir, "k2", key(t), 0o600)
		rotated, err := secrets.Open(ctx, db, secrets.Options{KeyFile: f2, PreviousKeyFiles: []string{f1}})
		if err != nil {
			t.Fatal(err)
		}
		if got, err := rotated.Open("registry:7", moved); err != nil || got != "first" {
			t.Fatalf("Open with the previous key = %q, %v", got, err)
		}
		// Without the old file, its secrets are named as unopenable.
		forgot, err := secrets.Open(ctx, db, secrets.Options{KeyFile: f2})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := forgot.Open("registry:7", moved); !errors.Is(err, errdefs.ErrFailedPrecondition) || !strings.Contains(err.Error(), "previous_key_files") {
			t.Errorf("Open without the key = %v", err)
		}
	})
}
