package build

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"syscall"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"golang.org/x/sys/unix"

	"github.com/lading-dev/lading/internal/errdefs"
)

// dispatch runs one instruction of the stage. Words are expanded first,
// with the stage's variables, as BuildKit does (ARG expands its own
// default).
func (st *stage) dispatch(ctx context.Context, c instructions.Command, onbuild bool) error {
	bd := st.bd
	if _, isArg := c.(*instructions.ArgCommand); !isArg {
		if ex, ok := c.(instructions.SupportsSingleWordExpansion); ok {
			err := ex.Expand(func(w string) (string, error) {
				v, _, err := bd.lex.ProcessWord(w, st.env)
				return v, err
			})
			if err != nil {
				return err
			}
		}
	}
	if ex, ok := c.(instructions.SupportsSingleWordExpansionRaw); ok {
		err := ex.ExpandRaw(func(w string) (string, error) {
			lex := *bd.lex
			lex.SkipProcessQuotes = true
			v, _, err := lex.ProcessWord(w, st.env)
			return v, err
		})
		if err != nil {
			return err
		}
	}
	switch c := c.(type) {
	case *instructions.EnvCommand:
		return st.envCmd(ctx, c)
	case *instructions.ArgCommand:
		return st.argCmd(ctx, c)
	case *instructions.LabelCommand:
		return st.labelCmd(ctx, c)
	case *instructions.MaintainerCommand:
		st.img.Author = c.Maintainer
		return st.record(ctx, "MAINTAINER "+c.Maintainer, nil, nil)
	case *instructions.WorkdirCommand:
		return st.workdirCmd(ctx, c)
	case *instructions.UserCommand:
		st.img.Config.User = c.User
		return st.record(ctx, "USER "+c.User, nil, nil)
	case *instructions.ExposeCommand:
		return st.exposeCmd(ctx, c)
	case *instructions.VolumeCommand:
		return st.volumeCmd(ctx, c)
	case *instructions.StopSignalCommand:
		if err := checkSignal(c.Signal); err != nil {
			return err
		}
		st.img.Config.StopSignal = c.Signal
		return st.record(ctx, "STOPSIGNAL "+c.Signal, nil, nil)
	case *instructions.ShellCommand:
		st.img.Config.Shell = c.Shell
		return st.record(ctx, fmt.Sprintf("SHELL %v", c.Shell), nil, nil)
	case *instructions.CmdCommand:
		args := c.CmdLine
		if c.PrependShell {
			args = st.withShell(args)
		}
		st.img.Config.Cmd = args
		st.img.Config.ArgsEscaped = true //nolint:staticcheck // Docker's images carry it
		st.cmdSet = true
		return st.record(ctx, fmt.Sprintf("CMD %q", args), nil, nil)
	case *instructions.EntrypointCommand:
		args := c.CmdLine
		if c.PrependShell {
			args = st.withShell(args)
		}
		st.img.Config.Entrypoint = args
		if !st.cmdSet {
			st.img.Config.Cmd = nil
		}
		return st.record(ctx, fmt.Sprintf("ENTRYPOINT %q", args), nil, nil)
	case *instructions.HealthCheckCommand:
		hc := *c.Health
		st.img.Config.Healthcheck = &hc
		return st.record(ctx, fmt.Sprintf("HEALTHCHECK %+v", hc), nil, nil)
	case *instructions.OnbuildCommand:
		if onbuild {
			return errdefs.InvalidArgument(errors.New("ONBUILD isn't allowed as an ONBUILD trigger"))
		}
		st.img.Config.OnBuild = append(st.img.Config.OnBuild, c.Expression)
		return nil
	case *instructions.CopyCommand:
		return st.copyCmd(ctx, copyArgs{
			params: c.SourcesAndDest, from: c.From, chown: c.Chown, chmod: c.Chmod,
			link: c.Link, excludes: c.ExcludePatterns, parents: c.Parents,
		})
	case *instructions.AddCommand:
		return st.copyCmd(ctx, copyArgs{
			params: c.SourcesAndDest, chown: c.Chown, chmod: c.Chmod, link: c.Link,
			excludes: c.ExcludePatterns, add: true, checksum: c.Checksum, unpack: c.Unpack,
		})
	case *instructions.RunCommand:
		return st.runCmd(ctx, c)
	}
	return errdefs.InvalidArgument(fmt.Errorf("%s: instruction not supported", strings.ToUpper(c.Name())))
}

// withShell prepends the stage's SHELL (default /bin/sh -c) to a shell-form
// command line.
func (st *stage) withShell(args []string) []string {
	sh := st.img.Config.Shell
	if len(sh) == 0 {
		sh = []string{"/bin/sh", "-c"}
		if st.img.OS == "windows" {
			sh = []string{"cmd", "/S", "/C"}
		}
	}
	return append(append([]string(nil), sh...), strings.Join(args, " "))
}

func (st *stage) envCmd(ctx context.Context, c *instructions.EnvCommand) error {
	msg := "ENV"
	for _, e := range c.Env {
		msg += " " + e.String()
		st.env.Set(e.Key, e.Value)
		st.img.Config.Env = setEnv(st.img.Config.Env, e.Key, e.Value)
	}
	return st.record(ctx, msg, nil, nil)
}

// argCmd declares args in the stage: a --build-arg value wins, then the
// default (expanded), then the global ARG of that name.
func (st *stage) argCmd(ctx context.Context, c *instructions.ArgCommand) error {
	bd := st.bd
	var strs []string
	for _, a := range c.Args {
		bd.usedArgs[a.Key] = true
		if v, ok := bd.o.buildArgs[a.Key]; ok {
			a.Value = &v
		} else if a.Value != nil {
			v, _, err := bd.lex.ProcessWord(*a.Value, st.env)
			if err != nil {
				return err
			}
			a.Value = &v
		} else if v, ok := bd.global.Get(a.Key); ok && (bd.metaSet[a.Key] || isPlatformArg(a.Key)) {
			a.Value = &v
		}
		if a.Value != nil {
			st.env.Set(a.Key, *a.Value)
		}
		st.args = append(st.args, a)
		s := a.Key
		if a.Value != nil {
			s += "=" + *a.Value
		}
		strs = append(strs, s)
	}
	return st.record(ctx, "ARG "+strings.Join(strs, " "), nil, nil)
}

func isPlatformArg(k string) bool {
	switch k {
	case "BUILDPLATFORM", "BUILDOS", "BUILDOSVERSION", "BUILDARCH", "BUILDVARIANT",
		"TARGETPLATFORM", "TARGETOS", "TARGETOSVERSION", "TARGETARCH", "TARGETVARIANT", "TARGETSTAGE":
		return true
	}
	return false
}

func (st *stage) labelCmd(ctx context.Context, c *instructions.LabelCommand) error {
	if st.img.Config.Labels == nil {
		st.img.Config.Labels = map[string]string{}
	}
	msg := "LABEL"
	for _, l := range c.Labels {
		st.img.Config.Labels[l.Key] = l.Value
		msg += " " + l.String()
	}
	return st.record(ctx, msg, nil, nil)
}

func (st *stage) exposeCmd(ctx context.Context, c *instructions.ExposeCommand) error {
	var ports []string
	for _, p := range c.Ports {
		ws, err := st.bd.lex.ProcessWords(p, st.env)
		if err != nil {
			return err
		}
		for _, w := range ws {
			ps, err := parsePort(w)
			if err != nil {
				return err
			}
			ports = append(ports, ps...)
		}
	}
	if st.img.Config.ExposedPorts == nil {
		st.img.Config.ExposedPorts = map[string]struct{}{}
	}
	for _, p := range ports {
		st.img.Config.ExposedPorts[p] = struct{}{}
	}
	return st.record(ctx, "EXPOSE "+strings.Join(ports, " "), nil, nil)
}

// parsePort parses an EXPOSE word, [ip:][hostport:]port[-end][/proto], into
// "port/proto" strings, as BuildKit does.
func parsePort(raw string) ([]string, error) {
	p := raw
	if i := strings.LastIndex(p, ":"); i >= 0 {
		p = p[i+1:]
	}
	port, proto, _ := strings.Cut(p, "/")
	if proto == "" {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	switch proto {
	case "tcp", "udp", "sctp":
	default:
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid port: %q: invalid proto: %s", raw, proto))
	}
	start, end, isRange := strings.Cut(port, "-")
	s, err := strconv.ParseUint(start, 10, 16)
	if err != nil {
		return nil, errdefs.InvalidArgument(fmt.Errorf("invalid containerPort: %s", port))
	}
	e := s
	if isRange && end != start {
		if e, err = strconv.ParseUint(end, 10, 16); err != nil || e < s {
			return nil, errdefs.InvalidArgument(fmt.Errorf("invalid containerPort: %s", port))
		}
	}
	var out []string
	for i := s; i <= e; i++ {
		out = append(out, strconv.FormatUint(i, 10)+"/"+proto)
	}
	return out, nil
}

func (st *stage) volumeCmd(ctx context.Context, c *instructions.VolumeCommand) error {
	for _, v := range c.Volumes {
		if v == "" {
			return errdefs.InvalidArgument(errors.New("VOLUME specified can not be an empty string"))
		}
	}
	if st.img.Config.Volumes == nil {
		st.img.Config.Volumes = map[string]struct{}{}
	}
	for _, v := range c.Volumes {
		st.img.Config.Volumes[v] = struct{}{}
	}
	return st.record(ctx, fmt.Sprintf("VOLUME %v", c.Volumes), nil, nil)
}

// checkSignal accepts a signal name (with or without SIG) or number, as
// Docker's signal.ParseSignal.
func checkSignal(s string) error {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > 64 {
			return errdefs.InvalidArgument(fmt.Errorf("invalid signal: %s", s))
		}
		return nil
	}
	name := strings.TrimPrefix(strings.ToUpper(s), "SIG")
	if strings.HasPrefix(name, "RTMIN") || strings.HasPrefix(name, "RTMAX") {
		return nil
	}
	for i := syscall.Signal(1); i < 32; i++ {
		if strings.EqualFold(strings.TrimPrefix(unix.SignalName(i), "SIG"), name) {
			return nil
		}
	}
	return errdefs.InvalidArgument(fmt.Errorf("invalid signal: %s", s))
}

var _ = dockerspec.HealthcheckConfig{}
