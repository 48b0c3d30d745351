// Package secrets seals the secrets lading must keep to act on a user's
// behalf elsewhere (the passwords and tokens of remote registries) so
// that the database holds ciphertext only: AES-256-GCM, with a nonce per
// seal and the secret's purpose ("registry:42") as additional data, so a
// sealed value copied onto another row does not open there.
//
// # Keys
//
// A Keyring holds one key that seals and any number that only open:
//
//   - Without a key file, the sealing key is generated on first start and
//     kept in the database (table secret_keys), so that every replica
//     shares it. This keeps secrets out of API answers, logs, job
//     arguments and dumps of single tables, but anyone with the whole
//     database has the key too.
//   - With a key file (lading serve: secrets.key_file; 32 random bytes,
//     raw or base64, mode 0600, the same file on every replica), that key
//     seals and the database holds no key able to open new secrets. The
//     database's key stays for opening what it sealed before; Reseal
//     (run at start) moves those secrets to the file's key.
//   - Rotation: name the new file in key_file and the old ones in
//     previous_key_files; after a start has resealed everything the old
//     files may go.
//
// A sealed value reads "lading:v1:KEYID:BASE64" where KEYID is the first
// 8 bytes of the key's SHA-256, in hex: a value sealed by a key that is
// no longer configured is reported with the id it needs.
package secrets

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/lading-dev/lading/internal/errdefs"
	"github.com/lading-dev/lading/internal/sqldb"
)

// Migrations create the table of the database's key.
var Migrations = []sqldb.Migration{{Owner: "secrets", Name: "secret sealing key", SQL: []string{
	`CREATE TABLE secret_keys (
		id {{int}} PRIMARY KEY,
		key {{bytes}} NOT NULL,
		created {{int}} NOT NULL)`,
}}}

const prefix = "lading:v1:"

// key is one AES-256 key.
type key struct {
	id   string
	aead cipher.AEAD
}

func newKey(raw []byte) (key, error) {
	if len(raw) != 32 {
		return key{}, errdefs.InvalidArgument(fmt.Errorf("a sealing key has 32 bytes, not %d", len(raw)))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return key{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return key{}, err
	}
	sum := sha256.Sum256(raw)
	return key{id: hex.EncodeToString(sum[:8]), aead: aead}, nil
}

// Keyring seals with one key and opens with any of its keys.
type Keyring struct {
	seal key
	all  map[string]key
	// fromFile tells whether the sealing key came from a file.
	fromFile bool
}

// New returns a keyring that seals with the first of raw keys (32 bytes
// each) and opens with all of them.
func New(raw ...[]byte) (*Keyring, error) {
	if len(raw) == 0 {
		return nil, errdefs.InvalidArgument(errors.New("a keyring needs a key"))
	}
	k := &Keyring{all: map[string]key{}}
	for i, r := range raw {
		kk, err := newKey(r)
		if err != nil {
			return nil, err
		}
		if i == 0 {
			k.seal = kk
		}
		k.all[kk.id] = kk
	}
	return k, nil
}

// Options say where the keys are.
type Options struct {
	// KeyFile holds the sealing key (32 bytes, raw or base64); empty:
	// the database's key seals.
	KeyFile string
	// PreviousKeyFiles hold keys that only open (rotation).
	PreviousKeyFiles []string
}

// Open returns the keyring of db and the configured files, creating the
// database's key on first use.
func Open(ctx context.Context, db *sqldb.DB, o Options) (*Keyring, error) {
	dbKey, err := databaseKey(ctx, db)
	if err != nil {
		return nil, err
	}
	var raw [][]byte
	if o.KeyFile != "" {
		b, err := ReadKeyFile(o.KeyFile)
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
	}
	raw = append(raw, dbKey)
	for _, f := range o.PreviousKeyFiles {
		b, err := ReadKeyFile(f)
		if err != nil {
			return nil, err
		}
		raw = append(raw, b)
	}
	k, err := New(raw...)
	if err != nil {
		return nil, err
	}
	k.fromFile = o.KeyFile != ""
	return k, nil
}

// databaseKey returns the database's key, creating it on first use (every
// replica racing to create it ends up with the same one).
func databaseKey(ctx context.Context, db *sqldb.DB) ([]byte, error) {
	fresh := make([]byte, 32)
	rand.Read(fresh)
	var out []byte
	err := db.Tx(ctx, "secret key", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO secret_keys (id, key, created) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, fresh, sqldb.Nanos(db.Now())); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT key FROM secret_keys WHERE id = 1`).Scan(&out)
	})
	return out, err
}

// ReadKeyFile reads a key file: 32 raw bytes, or their base64 (standard
// or URL alphabet, padded or not) on one line. A file others may read is
// refused.
func ReadKeyFile(name string) ([]byte, error) {
	st, err := os.Stat(name)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, errdefs.InvalidArgument(fmt.Errorf("secrets key file %s: mode %o lets others read it; chmod 600 it", name, st.Mode().Perm()))
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	if len(b) == 32 {
		return b, nil
	}
	s := strings.TrimSpace(string(b))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if d, err := enc.DecodeString(s); err == nil && len(d) == 32 {
			return d, nil
		}
	}
	return nil, errdefs.InvalidArgument(fmt.Errorf("secrets key file %s: want 32 bytes, raw or base64 (head -c 32 /dev/urandom | base64 > FILE)", name))
}

// SealingKeyID names the key that seals (for the log at start).
func (k *Keyring) SealingKeyID() string { return k.seal.id }

// FromFile reports whether the sealing key came from a key file.
func (k *Keyring) FromFile() bool { return k.fromFile }

// Seal encrypts plaintext for purpose; the empty secret seals to "".
func (k *Keyring) Seal(purpose, plaintext string) (string, error) {
	if plaintext == "" {
		return "", nil
	}
	nonce := make([]byte, k.seal.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	ct := k.seal.aead.Seal(nonce, nonce, []byte(plaintext), []byte(purpose))
	return prefix + k.seal.id + ":" + base64.RawStdEncoding.EncodeToString(ct), nil
}

// Open decrypts a sealed value of purpose; "" opens to "".
func (k *Keyring) Open(purpose, sealed string) (string, error) {
	if sealed == "" {
		return "", nil
	}
	id, ct, err := split(sealed)
	if err != nil {
		return "", err
	}
	kk, ok := k.all[id]
	if !ok {
		return "", errdefs.FailedPrecondition(fmt.Errorf("a secret of %s was sealed with key %s, which is not configured (secrets.key_file, secrets.previous_key_files)", purpose, id))
	}
	ns := kk.aead.NonceSize()
	if len(ct) < ns {
		return "", errdefs.Corrupt(fmt.Errorf("the sealed secret of %s is truncated", purpose))
	}
	pt, err := kk.aead.Open(nil, ct[:ns], ct[ns:], []byte(purpose))
	if err != nil {
		return "", errdefs.Corrupt(fmt.Errorf("the sealed secret of %s does not open with key %s (altered, or sealed for another purpose)", purpose, id))
	}
	return string(pt), nil
}

// Stale reports whether a sealed value was sealed by a key other than the
// sealing key (Reseal moves it).
func (k *Keyring) Stale(sealed string) bool {
	if sealed == "" {
		return false
	}
	id, _, err := split(sealed)
	return err == nil && id != k.seal.id
}

// Reseal opens a stale sealed value and seals it again with the sealing
// key; a current one is returned as it is.
func (k *Keyring) Reseal(purpose, sealed string) (string, error) {
	if !k.Stale(sealed) {
		return sealed, nil
	}
	pt, err := k.Open(purpose, sealed)
	if err != nil {
		return "", err
	}
	return k.Seal(purpose, pt)
}

func split(sealed string) (string, []byte, error) {
	rest, ok := strings.CutPrefix(sealed, prefix)
	if !ok {
		return "", nil, errdefs.Corrupt(errors.New("not a sealed secret (no lading:v1: prefix)"))
	}
	id, b64, ok := strings.Cut(rest, ":")
	if !ok || len(id) != 16 {
		return "", nil, errdefs.Corrupt(errors.New("a sealed secret without its key id"))
	}
	ct, err := base64.RawStdEncoding.DecodeString(b64)
	if err != nil {
		return "", nil, errdefs.Corrupt(fmt.Errorf("a sealed secret that is not base64: %v", err))
	}
	return id, ct, nil
}
