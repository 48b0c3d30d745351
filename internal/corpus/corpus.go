// Package corpus finds the shared corpus of real images and advisory feeds
// that lading's tests and `lading bench` read. The corpus lives outside the
// repository: where $LADING_CORPUS points, else at ../shared/corpus beside
// the module root (the directory with go.mod, found from the working
// directory up). A directory is a corpus when it has an images/ directory.
//
// Tests reach it through internal/corpustest, which skips (or fails under
// LADING_CI=1) when it is absent; this package only looks.
package corpus

import (
	"os"
	"path/filepath"
)

// Find returns the corpus directory, or "" when there is none, and the
// places it tried, for messages.
func Find() (dir string, tried []string) {
	if env := os.Getenv("LADING_CORPUS"); env != "" {
		tried = append(tried, env)
		if isCorpus(env) {
			return env, tried
		}
	}
	wd, err := os.Getwd()
	if err != nil {
		return "", tried
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			c := filepath.Join(filepath.Dir(d), "shared", "corpus")
			tried = append(tried, c)
			if isCorpus(c) {
				return c, tried
			}
			return "", tried
		}
		if filepath.Dir(d) == d {
			return "", tried
		}
	}
}

func isCorpus(d string) bool {
	st, err := os.Stat(filepath.Join(d, "images"))
	return err == nil && st.IsDir()
}
