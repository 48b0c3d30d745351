package container

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/lading-dev/lading/internal/errdefs"
)

// ApplyChanges applies Dockerfile instructions to cfg, as `docker commit
// --change` does. The instructions it takes are Docker's list: CMD,
// ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME and
// WORKDIR. Arguments are read as the Dockerfile reads them: the JSON
// (exec) form or the shell form (run by the config's Shell, default
// /bin/sh -c) for CMD and ENTRYPOINT (an ENTRYPOINT drops the Cmd unless a
// CMD came before it), KEY=VALUE words with quotes and backslash escapes
// for ENV and LABEL (or the legacy "KEY VALUE"), and $VAR, ${VAR},
// ${VAR:-word} and ${VAR:+word} replaced from the environment built so far
// in ENV, LABEL, EXPOSE, STOPSIGNAL, USER, VOLUME and WORKDIR.
func ApplyChanges(cfg *v1.Config, changes []string) error {
	cmdSet := false
	for _, ch := range changes {
		if err := applyChange(cfg, strings.TrimSpace(ch), &cmdSet); err != nil {
			return errdefs.InvalidArgument(fmt.Errorf("--change %q: %w", ch, err))
		}
	}
	return nil
}

func applyChange(cfg *v1.Config, ch string, cmdSet *bool) error {
	kw, rest := ch, ""
	if i := strings.IndexAny(ch, " \t"); i >= 0 {
		kw, rest = ch[:i], ch[i+1:]
	}
	rest = strings.TrimSpace(rest)
	kw = strings.ToUpper(kw)
	env := func(s string) (string, error) { return expand(s, cfg.Env) }
	switch kw {
	case "CMD":
		args, err := command(rest, cfg.Shell)
		if err != nil {
			return err
		}
		cfg.Cmd, *cmdSet = args, true
	case "ENTRYPOINT":
		args, err := command(rest, cfg.Shell)
		if err != nil {
			return err
		}
		cfg.Entrypoint = args
		if !*cmdSet {
			cfg.Cmd = nil
		}
	case "ENV":
		kvs, err := pairs(rest, cfg.Env)
		if err != nil {
			return err
		}
		for _, kv := range kvs {
			cfg.Env = mergeEnv(cfg.Env, []string{kv[0] + "=" + kv[1]})
		}
	case "LABEL":
		kvs, err := pairs(rest, cfg.Env)
		if err != nil {
			return err
		}
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		for _, kv := range kvs {
			cfg.Labels[kv[0]] = kv[1]
		}
	case "EXPOSE":
		ws, err := words(rest, cfg.Env)
		if err != nil {
			return err
		}
		if len(ws) == 0 {
			return errors.New("EXPOSE requires at least one argument")
		}
		for _, w := range ws {
			ports, err := parsePorts(w)
			if err != nil {
				return err
			}
			if cfg.ExposedPorts == nil {
				cfg.ExposedPorts = map[string]struct{}{}
			}
			for _, p := range ports {
				cfg.ExposedPorts[p] = struct{}{}
			}
		}
	case "ONBUILD":
		trig, _, _ := strings.Cut(rest, " ")
		switch strings.ToUpper(trig) {
		case "":
			return errors.New("ONBUILD requires an instruction")
		case "ONBUILD", "FROM", "MAINTAINER":
			return fmt.Errorf("%s isn't allowed as an ONBUILD trigger", strings.ToUpper(trig))
		}
		cfg.OnBuild = append(cfg.OnBuild, strings.ToUpper(trig)+rest[len(trig):])
	case "STOPSIGNAL":
		s, err := env(rest)
		if err != nil {
			return err
		}
		if err := checkSignal(s); err != nil {
			return err
		}
		cfg.StopSignal = s
	case "USER":
		u, err := env(rest)
		if err != nil {
			return err
		}
		if u == "" {
			return errors.New("USER requires an argument")
		}
		cfg.User = u
	case "VOLUME":
		var vols []string
		if strings.HasPrefix(rest, "[") {
			if err := json.Unmarshal([]byte(rest), &vols); err != nil {
				return fmt.Errorf("VOLUME: not a JSON array of strings: %w", err)
			}
		} else {
			var err error
			if vols, err = words(rest, cfg.Env); err != nil {
				return err
			}
		}
		if len(vols) == 0 {
			return errors.New("VOLUME requires at least one argument")
		}
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range vols {
			v = strings.TrimSpace(v)
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
	case "WORKDIR":
		w, err := env(rest)
		if err != nil {
			return err
		}
		if w == "" {
			return errors.New("WORKDIR requires an argument")
		}
		if !path.IsAbs(w) {
			base := cfg.WorkingDir
			if base == "" {
				base = "/"
			}
			w = path.Join(base, w)
		}
		cfg.WorkingDir = path.Clean(w)
	case "":
		return errors.New("empty instruction")
	default:
		return fmt.Errorf("%s is not a valid change command (want CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR)", kw)
	}
	return nil
}

// command reads the exec form (a JSON array of strings) or the shell form.
func command(rest string, shell []string) ([]string, error) {
	if strings.HasPrefix(rest, "[") {
		var args []string
		if err := json.Unmarshal([]byte(rest), &args); err == nil {
			return args, nil
		}
		// Docker runs a malformed JSON form as a shell command.
	}
	if len(shell) == 0 {
		shell = []string{"/bin/sh", "-c"}
	}
	if rest == "" {
		return nil, errors.New("requires at least one argument")
	}
	return append(append([]string(nil), shell...), rest), nil
}

// pairs reads KEY=VALUE words, or the legacy "KEY VALUE".
func pairs(rest string, env []string) ([][2]string, error) {
	if rest == "" {
		return nil, errors.New("requires at least one argument")
	}
	first, _, _ := strings.Cut(rest, " ")
	if !strings.Contains(first, "=") {
		k, v, ok := strings.Cut(rest, " ")
		if !ok {
			return nil, fmt.Errorf("%q: want KEY=VALUE or KEY VALUE", rest)
		}
		val, err := expand(strings.TrimSpace(v), env)
		if err != nil {
			return nil, err
		}
		return [][2]string{{k, val}}, nil
	}
	ws, err := words(rest, env)
	if err != nil {
		return nil, err
	}
	var out [][2]string
	for _, w := range ws {
		k, v, ok := strings.Cut(w, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q: want KEY=VALUE", w)
		}
		out = append(out, [2]string{k, v}) // all expanded with the environment before the instruction, as Docker does
	}
	return out, nil
}

// words splits s into words as the Dockerfile's shell-like lexer does:
// whitespace separates, "..." and '...' group, backslash escapes (not in
// single quotes), and variables are replaced (not in single quotes).
func words(s string, env []string) ([]string, error) {
	var out []string
	var b strings.Builder
	inWord := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				out = append(out, b.String())
				b.Reset()
				inWord = false
			}
		case c == '\'':
			j := strings.IndexByte(s[i+1:], '\'')
			if j < 0 {
				return nil, errors.New("unmatched single quote")
			}
			b.WriteString(s[i+1 : i+1+j])
			i += j + 1
			inWord = true
		case c == '"':
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
			}
			if j >= len(s) {
				return nil, errors.New("unmatched double quote")
			}
			v, err := expand(s[i+1:j], env)
			if err != nil {
				return nil, err
			}
			b.WriteString(v)
			i = j
			inWord = true
		case c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i++
			inWord = true
		case c == '$':
			v, n, err := variable(s[i:], env)
			if err != nil {
				return nil, err
			}
			b.WriteString(v)
			i += n - 1
			inWord = true
		default:
			b.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		out = append(out, b.String())
	}
	return out, nil
}

// expand replaces variables and backslash escapes in s (double-quoted
// context).
func expand(s string, env []string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\' && i+1 < len(s):
			b.WriteByte(s[i+1])
			i++
		case c == '$':
			v, n, err := variable(s[i:], env)
			if err != nil {
				return "", err
			}
			b.WriteString(v)
			i += n - 1
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

// variable reads the variable reference at the start of s ("$" first) and
// returns its value and how many bytes it took.
func variable(s string, env []string) (string, int, error) {
	lookup := func(k string) (string, bool) {
		for i := len(env) - 1; i >= 0; i-- {
			if ek, v, _ := strings.Cut(env[i], "="); ek == k {
				return v, true
			}
		}
		return "", false
	}
	if len(s) < 2 {
		return "$", 1, nil
	}
	if s[1] != '{' {
		n := 1
		for n < len(s) && (s[n] == '_' || 'a' <= s[n] && s[n] <= 'z' || 'A' <= s[n] && s[n] <= 'Z' || n > 1 && '0' <= s[n] && s[n] <= '9') {
			n++
		}
		if n == 1 {
			return "$", 1, nil
		}
		v, _ := lookup(s[1:n])
		return v, n, nil
	}
	end := strings.IndexByte(s, '}')
	if end < 0 {
		return "", 0, errors.New("missing '}' in a variable")
	}
	body := s[2:end]
	name, word, op := body, "", ""
	if i := strings.Index(body, ":"); i >= 0 {
		name, op, word = body[:i], body[i:min(i+2, len(body))], body[min(i+2, len(body)):]
	}
	if name == "" {
		return "", 0, fmt.Errorf("bad substitution ${%s}", body)
	}
	v, set := lookup(name)
	switch op {
	case "":
	case ":-":
		if !set || v == "" {
			v = word
		}
	case ":+":
		if set && v != "" {
			v = word
		} else {
			v = ""
		}
	default:
		return "", 0, fmt.Errorf("unsupported modifier in ${%s}", body)
	}
	return v, end + 1, nil
}

// parsePorts reads an EXPOSE argument: PORT[-PORT][/PROTO].
func parsePorts(w string) ([]string, error) {
	spec, proto, _ := strings.Cut(w, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("invalid proto %q in %q", proto, w)
	}
	lo, hi, isRange := strings.Cut(spec, "-")
	a, err := strconv.ParseUint(lo, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("invalid port %q", w)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 16); err != nil || b < a {
			return nil, fmt.Errorf("invalid port range %q", w)
		}
	}
	if b-a > 1<<12 {
		return nil, fmt.Errorf("port range %q too large", w)
	}
	var out []string
	for p := a; p <= b; p++ {
		out = append(out, fmt.Sprintf("%d/%s", p, proto))
	}
	return out, nil
}

var signals = map[string]bool{
	"HUP": true, "INT": true, "QUIT": true, "ILL": true, "TRAP": true, "ABRT": true, "BUS": true, "FPE": true,
	"KILL": true, "USR1": true, "SEGV": true, "USR2": true, "PIPE": true, "ALRM": true, "TERM": true,
	"STKFLT": true, "CHLD": true, "CONT": true, "STOP": true, "TSTP": true, "TTIN": true, "TTOU": true,
	"URG": true, "XCPU": true, "XFSZ": true, "VTALRM": true, "PROF": true, "WINCH": true, "IO": true,
	"PWR": true, "SYS": true,
}

func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 64 {
			return fmt.Errorf("invalid signal %q", s)
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if signals[name] || strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	return fmt.Errorf("invalid signal %q", s)
}
