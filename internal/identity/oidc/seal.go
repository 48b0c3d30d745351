package oidc

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

	"github.com/lading-dev/lading/internal/sqldb"
)

// sealingKey returns the AES-256 key, making it at first use; replicas
// starting together agree on the first one written.
func (s *Service) sealingKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if s.key != nil {
		return s.key, nil
	}
	fresh := make([]byte, 32)
	rand.Read(fresh)
	var key []byte
	err := s.db.Tx(ctx, "oidc sealing key", func(tx *sqldb.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO oidc_keys (id, key, created) VALUES (1, ?, ?) ON CONFLICT (id) DO NOTHING`, fresh, sqldb.Nanos(s.db.Now())); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT key FROM oidc_keys WHERE id = 1`).Scan(&key)
	})
	if err != nil {
		return nil, err
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("oidc_keys: the sealing key has %d bytes, want 32", len(key))
	}
	s.key = key
	return key, nil
}

func (s *Service) aead(ctx context.Context) (cipher.AEAD, error) {
	key, err := s.sealingKey(ctx)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// seal encrypts plain; what names the use, bound in as associated data,
// so that a sealed value cannot stand in for another kind.
func (s *Service) seal(ctx context.Context, what string, plain []byte) (string, error) {
	g, err := s.aead(ctx)
	if err != nil {
		return "", err
	}
	nonce := make([]byte, g.NonceSize())
	rand.Read(nonce)
	return base64.RawStdEncoding.EncodeToString(g.Seal(nonce, nonce, plain, []byte(what))), nil
}

func (s *Service) open(ctx context.Context, what, sealed string) ([]byte, error) {
	g, err := s.aead(ctx)
	if err != nil {
		return nil, err
	}
	b, err := base64.RawStdEncoding.DecodeString(sealed)
	if err != nil || len(b) < g.NonceSize() {
		return nil, errors.New("a sealed " + what + " is damaged")
	}
	plain, err := g.Open(nil, b[:g.NonceSize()], b[g.NonceSize():], []byte(what))
	if err != nil {
		return nil, errors.New("a sealed " + what + " does not open with the sealing key")
	}
	return plain, nil
}

// random returns n random bytes, hex-encoded.
func random(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func hashID(cookie string) string {
	h := sha256.Sum256([]byte(cookie))
	return hex.EncodeToString(h[:])
}
