package mcpserver

// Flags that environment variables can also set, and errors that name both.

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// envName is the environment variable of a flag: MCP_ and the flag name in
// capitals, dashes as underscores ("base-url" is MCP_BASE_URL).
func envName(flagName string) string {
	return "MCP_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// flagSet is a flag.FlagSet whose flags named in env may also be set from
// the environment, and whose errors name the flag and its variable.
type flagSet struct {
	*flag.FlagSet
	env     map[string]bool // flags that have an environment variable
	failed  *valueError     // the last value a flag refused
	defined []string        // flags defined through fs's methods, in order
}

// The methods below define flags like flag.FlagSet's and remember the
// order: the usage lists these flags first, in the order they were
// defined, then the others (defined on the FlagSet by Options.Flags) by
// name.

func (fs *flagSet) Var(v flag.Value, name, usage string) {
	fs.FlagSet.Var(v, name, usage)
	fs.defined = append(fs.defined, name)
}

func (fs *flagSet) StringVar(p *string, name, value, usage string) {
	fs.FlagSet.StringVar(p, name, value, usage)
	fs.defined = append(fs.defined, name)
}

func (fs *flagSet) String(name, value, usage string) *string {
	defer func() { fs.defined = append(fs.defined, name) }()
	return fs.FlagSet.String(name, value, usage)
}

func (fs *flagSet) Bool(name string, value bool, usage string) *bool {
	defer func() { fs.defined = append(fs.defined, name) }()
	return fs.FlagSet.Bool(name, value, usage)
}

// flags returns every flag in usage order.
func (fs *flagSet) flags() []*flag.Flag {
	var out []*flag.Flag
	for _, name := range fs.defined {
		out = append(out, fs.Lookup(name))
	}
	fs.VisitAll(func(f *flag.Flag) {
		if !slices.Contains(fs.defined, f.Name) {
			out = append(out, f)
		}
	})
	return out
}

// valueError is a value a flag refused: from the command line (env == "")
// or from an environment variable.
type valueError struct {
	flag, env, value string
	err              error
}

func (e *valueError) Error() string {
	if e.env != "" {
		return fmt.Sprintf("invalid value %q in %s (flag --%s): %v", e.value, e.env, e.flag, e.err)
	}
	return fmt.Sprintf("invalid value %q for --%s (env %s): %v", e.value, e.flag, envName(e.flag), e.err)
}

func (e *valueError) Unwrap() error { return e.err }

func newFlagSet(name string) *flagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors are returned, usage printed by printUsage
	return &flagSet{FlagSet: fs, env: map[string]bool{}, failed: new(valueError)}
}

// bindEnv gives the named flags (all flags, with no names) an environment
// variable, envName(name).
func (fs *flagSet) bindEnv(names ...string) {
	fs.VisitAll(func(f *flag.Flag) {
		if len(names) == 0 || slices.Contains(names, f.Name) {
			fs.env[f.Name] = true
		}
	})
}

// parse parses args, then the environment variables of the flags args did
// not set. Flags may follow positional arguments ("user add alice
// --password-stdin"), and everything after "--" is positional; exactly
// npos positional arguments are required (any number with npos < 0), and
// fs.Args() returns them.
func (fs *flagSet) parse(args []string, npos int, getenv func(string) string) error {
	var rest []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, rest = args[:i], args[i+1:]
	}
	fs.VisitAll(func(f *flag.Flag) {
		if _, ok := f.Value.(recorded); !ok {
			f.Value = recorded{Value: f.Value, name: f.Name, failed: fs.failed}
		}
	})
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return fs.parseError(err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	pos = append(pos, rest...)
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	for _, name := range slices.Sorted(maps.Keys(fs.env)) {
		if set[name] {
			continue
		}
		key := envName(name)
		v := getenv(key)
		if v == "" {
			continue
		}
		if err := fs.Set(name, v); err != nil {
			return &UsageError{&valueError{flag: name, env: key, value: v, err: unwrapRecorded(err)}}
		}
	}
	if npos >= 0 && len(pos) != npos {
		switch npos {
		case 0:
			return usageErrorf("%s takes no arguments, got %q", fs.Name(), pos)
		case 1:
			return usageErrorf("%s takes one argument, NAME, got %q", fs.Name(), pos)
		}
		return usageErrorf("%s takes %d arguments, got %q", fs.Name(), npos, pos)
	}
	// Let fs.Args see the positional arguments, as they are.
	return fs.Parse(append([]string{"--"}, pos...))
}

// parseError rewrites the flag package's messages, which name flags with one
// dash and never mention environment variables.
func (fs *flagSet) parseError(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	if fs.failed.flag != "" {
		e := *fs.failed
		return &UsageError{&e}
	}
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "flag provided but not defined: -"); ok {
		return usageErrorf("%s: unknown flag --%s", fs.Name(), strings.TrimPrefix(name, "-"))
	}
	if name, ok := strings.CutPrefix(msg, "flag needs an argument: -"); ok {
		return usageErrorf("%s: --%s needs a value", fs.Name(), strings.TrimPrefix(name, "-"))
	}
	return &UsageError{fmt.Errorf("%s: %w", fs.Name(), err)}
}

// recorded wraps a flag's Value to remember what it refused, so that the
// error can name the flag and its variable.
type recorded struct {
	flag.Value
	name   string
	failed *valueError
}

func (r recorded) Set(s string) error {
	if err := r.Value.Set(s); err != nil {
		*r.failed = valueError{flag: r.name, value: s, err: err}
		return recordedError{err}
	}
	return nil
}

func (r recorded) String() string {
	if r.Value == nil { // the flag package calls String on a zero Value
		return ""
	}
	return r.Value.String()
}

func (r recorded) IsBoolFlag() bool {
	b, ok := r.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

type recordedError struct{ error }

func unwrapRecorded(err error) error {
	if r, ok := err.(recordedError); ok {
		return r.error
	}
	return err
}

// printUsage writes the usage of a command and its flags: each with its
// value name, environment variable and default.
func (fs *flagSet) printUsage(w io.Writer, synopsis string) {
	fmt.Fprintf(w, "Usage: %s\n", synopsis)
	first := true
	for _, f := range fs.flags() {
		arg, usage := flag.UnquoteUsage(f)
		line := "  --" + f.Name
		if arg != "" {
			line += " " + arg
		}
		var notes []string
		if fs.env[f.Name] {
			notes = append(notes, "env "+envName(f.Name))
		}
		if f.DefValue != "" && !(arg == "" && f.DefValue == "false") {
			notes = append(notes, "default "+f.DefValue)
		}
		if len(notes) > 0 {
			line += "    (" + strings.Join(notes, ", ") + ")"
		}
		if first {
			fmt.Fprintf(w, "\nFlags:\n")
			first = false
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, strings.ReplaceAll(usage, "\n", "\n        "))
	}
}

// durationFlag is a duration within [min, max].
type durationFlag struct {
	d        *time.Duration
	min, max time.Duration
}

func (f durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return formatDuration(*f.d)
}

func (f durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("want a duration such as 90s, 15m or 720h")
	}
	if d < f.min || d > f.max {
		return fmt.Errorf("want a duration from %s to %s", formatDuration(f.min), formatDuration(f.max))
	}
	*f.d = d
	return nil
}

// formatDuration writes d the short way: 1h, not 1h0m0s.
func formatDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// intFlag is a whole number within [min, max].
type intFlag struct {
	n        *int
	min, max int
}

func (f intFlag) String() string {
	if f.n == nil {
		return ""
	}
	return strconv.Itoa(*f.n)
}

func (f intFlag) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil || n < f.min || n > f.max {
		return fmt.Errorf("want a whole number from %d to %d", f.min, f.max)
	}
	*f.n = n
	return nil
}

// choiceFlag is one of a few words.
type choiceFlag struct {
	s       *string
	choices []string
}

func (f choiceFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f choiceFlag) Set(s string) error {
	if !slices.Contains(f.choices, s) {
		return fmt.Errorf("want %s", strings.Join(f.choices, " or "))
	}
	*f.s = s
	return nil
}

// hostPortFlag is a TCP listen address, host:port. With defaultHost set, a
// bare port ("9090" or ":9090") listens on defaultHost. An optional one may
// be empty (off).
type hostPortFlag struct {
	s           *string
	defaultHost string
	optional    bool
}

func (f hostPortFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}

func (f hostPortFlag) Set(s string) error {
	if s == "" && f.optional {
		*f.s = ""
		return nil
	}
	if f.defaultHost != "" {
		if _, err := strconv.Atoi(s); err == nil {
			s = ":" + s
		}
		if strings.HasPrefix(s, ":") {
			s = net.JoinHostPort(f.defaultHost, s[1:])
		}
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return errors.New("want host:port, e.g. 127.0.0.1:8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q: want a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, "/ ") {
		return fmt.Errorf("host %q: want a name or an IP address", host)
	}
	*f.s = s
	return nil
}

// listFlag is a comma-separated list; each item passes check.
type listFlag struct {
	items *[]string
	check func(string) error
}

func (f listFlag) String() string {
	if f.items == nil {
		return ""
	}
	return strings.Join(*f.items, ",")
}

func (f listFlag) Set(s string) error {
	var items []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item == "" {
			continue
		}
		if f.check != nil {
			if err := f.check(item); err != nil {
				return fmt.Errorf("%q: %w", item, err)
			}
		}
		items = append(items, item)
	}
	*f.items = items
	return nil
}

// parsePrefix reads a network in CIDR notation; a bare address is the
// network of that one address.
func parsePrefix(s string) (netip.Prefix, error) {
	if p, err := netip.ParsePrefix(s); err == nil {
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, errors.New("want a network such as 10.0.0.0/8 or an address such as 127.0.0.1")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
