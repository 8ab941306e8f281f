package main

import (
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/correlation"
)

// correlationFlags are pub's correlation metadata flags (docs/CORRELATION.md).
type correlationFlags struct {
	id     string
	parent string
	root   string
	stage  string
	source string
	tags   []string // key=value, as given
	final  bool
}

// correlationFlagNames are the flags that make pub send metadata.
var correlationFlagNames = []string{"correlation-id", "parent", "root", "stage", "tag", "source", "final"}

func (f *correlationFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.id, "correlation-id", "", "correlation `ID` (default: a new time-ordered id)")
	fl.StringVar(&f.parent, "parent", "", "parent correlation `ID` (default: none)")
	fl.StringVar(&f.root, "root", "", "root correlation `ID` of the workflow (default: the correlation id, a new root)")
	fl.StringVar(&f.stage, "stage", "", "workflow `STAGE`, e.g. enumeration")
	fl.StringVar(&f.source, "source", "", "source process `NAME` carried in the metadata")
	// StringArray, not StringSlice: a tag value may contain commas.
	fl.StringArrayVar(&f.tags, "tag", nil, "tag `key=value` (repeatable)")
	fl.BoolVar(&f.final, "final", false, "mark the messages as this publisher's final result for the correlation")
}

// options returns the publish options the flags ask for: nil when no
// correlation flag is given. Tag syntax and the metadata limits are
// checked here, before any connection, and a failure is a usage error.
func (f *correlationFlags) options(cmd *cobra.Command) (func() []eventbus.PublishOption, error) {
	fl := cmd.Flags()
	given := false
	for _, name := range correlationFlagNames {
		given = given || fl.Changed(name)
	}
	if !given {
		return nil, nil
	}
	m := correlation.New(correlation.WithStage(f.stage), correlation.WithSource(f.source))
	if fl.Changed("correlation-id") {
		m.CorrelationID = f.id
	}
	m.RootID = m.CorrelationID
	if fl.Changed("root") {
		m.RootID = f.root
	}
	m.ParentID = f.parent
	var err error
	if m.Tags, err = parseTags(f.tags); err != nil {
		return nil, err
	}
	if err := m.Validate(); err != nil {
		return nil, &exitStatus{code: exitUsage, err: err}
	}
	final := f.final
	// A fresh WithCorrelation per message: the client stamps the sequence
	// number into the option's copy of the metadata, so a reused option
	// would send the same number again.
	return func() []eventbus.PublishOption {
		opts := []eventbus.PublishOption{eventbus.WithCorrelation(m)}
		if final {
			opts = append(opts, eventbus.WithFinal())
		}
		return opts
	}, nil
}

// parseTags parses --tag key=value flags; nil when there are none. A
// missing '=', an empty key or a key given twice is a usage error.
func parseTags(kvs []string) (map[string]string, error) {
	var tags map[string]string
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		switch {
		case !ok || k == "":
			return nil, usageErrorf("--tag %q: want key=value with a non-empty key", kv)
		case hasKey(tags, k):
			return nil, usageErrorf("--tag %q: key %q given more than once", kv, k)
		}
		if tags == nil {
			tags = make(map[string]string, len(kvs))
		}
		tags[k] = v
	}
	return tags, nil
}

func hasKey(m map[string]string, k string) bool {
	_, ok := m[k]
	return ok
}
