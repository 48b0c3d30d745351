package build

import (
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// envList is an ordered set of variables: the environment a stage's
// instructions are expanded with and RUN steps get. It implements BuildKit's
// shell.EnvGetter.
type envList struct {
	keys []string
	vals map[string]string
}

func newEnvList() *envList { return &envList{vals: map[string]string{}} }

// envFromSlice reads K=V strings (an image config's Env).
func envFromSlice(env []string) *envList {
	e := newEnvList()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		e.Set(k, v)
	}
	return e
}

func (e *envList) Get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok
}

func (e *envList) Keys() []string { return append([]string(nil), e.keys...) }

// Set adds k or replaces its value, keeping its place.
func (e *envList) Set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

// Del removes k.
func (e *envList) Del(k string) {
	if _, ok := e.vals[k]; !ok {
		return
	}
	delete(e.vals, k)
	for i, x := range e.keys {
		if x == k {
			e.keys = append(e.keys[:i:i], e.keys[i+1:]...)
			break
		}
	}
}

// Slice returns K=V strings in order.
func (e *envList) Slice() []string {
	out := make([]string, 0, len(e.keys))
	for _, k := range e.keys {
		out = append(out, k+"="+e.vals[k])
	}
	return out
}

func (e *envList) clone() *envList {
	c := &envList{keys: append([]string(nil), e.keys...), vals: make(map[string]string, len(e.vals))}
	for k, v := range e.vals {
		c.vals[k] = v
	}
	return c
}

// setEnv sets k=v in an image config's Env, in place when present.
func setEnv(env []string, k, v string) []string {
	for i, kv := range env {
		if key, _, _ := strings.Cut(kv, "="); key == k {
			env[i] = k + "=" + v
			return env
		}
	}
	return append(env, k+"="+v)
}

// proxyArgs are the build args Docker predefines: usable without an ARG
// line, passed to RUN, kept out of the history and the cache key.
var proxyArgs = map[string]bool{
	"HTTP_PROXY": true, "http_proxy": true,
	"HTTPS_PROXY": true, "https_proxy": true,
	"FTP_PROXY": true, "ftp_proxy": true,
	"NO_PROXY": true, "no_proxy": true,
	"ALL_PROXY": true, "all_proxy": true,
}

// platformArgs are the automatic platform args, as BuildKit defines them:
// in the global scope always, in a stage after an ARG line names them.
func platformArgs(build, target v1.Platform, stage string) [][2]string {
	if stage == "" {
		stage = "default"
	}
	return [][2]string{
		{"BUILDPLATFORM", platformString(build)},
		{"BUILDOS", build.OS},
		{"BUILDOSVERSION", build.OSVersion},
		{"BUILDARCH", build.Architecture},
		{"BUILDVARIANT", build.Variant},
		{"TARGETPLATFORM", platformString(target)},
		{"TARGETOS", target.OS},
		{"TARGETOSVERSION", target.OSVersion},
		{"TARGETARCH", target.Architecture},
		{"TARGETVARIANT", target.Variant},
		{"TARGETSTAGE", stage},
	}
}

func platformString(p v1.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
