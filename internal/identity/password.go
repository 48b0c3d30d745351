package identity

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"

	"github.com/lading-dev/lading/internal/errdefs"
)

// Passwords are stored as PHC strings. New hashes are argon2id with
// OWASP's parameters (19 MiB, two passes, one lane):
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt, base64>$<hash, base64>
//
// bcrypt hashes ($2a$, $2b$, $2y$, as htpasswd -B writes them) are
// verified too, so imported htpasswd users keep their passwords; they are
// rehashed with argon2id at their next login.
const (
	argonMemory  = 19 * 1024
	argonTime    = 2
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword returns the argon2id hash of password.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$%s$%s", argonMemory, argonTime, argonThreads, enc.EncodeToString(salt), enc.EncodeToString(key))
}

// CheckPassword reports whether password matches hash.
func CheckPassword(hash, password string) bool {
	switch {
	case strings.HasPrefix(hash, "$argon2id$"):
		var v, m, t, p int
		parts := strings.Split(hash, "$")
		if len(parts) != 6 {
			return false
		}
		if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
			return false
		}
		if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m <= 0 || m > 1<<20 || t <= 0 || t > 16 || p <= 0 || p > 16 {
			return false
		}
		enc := base64.RawStdEncoding
		salt, err1 := enc.DecodeString(parts[4])
		key, err2 := enc.DecodeString(parts[5])
		if err1 != nil || err2 != nil || len(key) == 0 || len(key) > 128 {
			return false
		}
		got := argon2.IDKey([]byte(password), salt, uint32(t), uint32(m), uint8(p), uint32(len(key)))
		return subtle.ConstantTimeCompare(got, key) == 1
	case isBcrypt(hash):
		return bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) == nil
	}
	return false
}

func isBcrypt(hash string) bool {
	return strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")
}

// dummyHash is checked against when a user does not exist, so a probe
// cannot tell existing users by the time an answer takes. It is made on
// first use: an argon2id hash costs tens of milliseconds, which every
// lading command would otherwise pay at start.
var dummyHash = sync.OnceValue(func() string { return HashPassword("lading-no-such-user") })

// CheckPasswordRule applies Harbor's password rule: 8 to 128 characters
// with at least one uppercase letter, one lowercase letter and one digit.
func CheckPasswordRule(p string) error {
	var upper, lower, digit bool
	for _, r := range p {
		switch {
		case r >= 'A' && r <= 'Z':
			upper = true
		case r >= 'a' && r <= 'z':
			lower = true
		case r >= '0' && r <= '9':
			digit = true
		}
	}
	if len(p) < 8 || len(p) > 128 || !upper || !lower || !digit {
		return errdefs.InvalidArgument(errors.New("the password or secret must be 8-128, inclusively, characters long with at least 1 uppercase letter, 1 lowercase letter and 1 number"))
	}
	return nil
}

// RandomSecret returns a random secret that passes the password rule.
func RandomSecret(n int) string {
	const lower, upper, digits = "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789"
	all := lower + upper + digits
	for {
		b := make([]byte, 0, n)
		var r [64]byte
		for len(b) < n {
			rand.Read(r[:])
			for _, c := range r {
				// 248 = 4*62: no modulo bias.
				if c < 248 && len(b) < n {
					b = append(b, all[int(c)%len(all)])
				}
			}
		}
		if CheckPasswordRule(string(b)) == nil {
			return string(b)
		}
	}
}
