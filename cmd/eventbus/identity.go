package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"daemoneye.dev/eventbus"
	"daemoneye.dev/eventbus/acl"
)

// tokenFileName is the agent token's file name beside the socket, where
// `eventbus broker` creates it and `--as agent` looks for it unless told
// otherwise.
const tokenFileName = "agent.token"

// defaultTokenFile returns agent.token in socket's directory. A Windows
// named pipe has no directory, so there it returns
// %AppData%\eventbus\agent.token (os.UserConfigDir), the same file for
// every pipe: a broker and the clients that run as its user agree on it
// without configuration. It returns "" if there is no such place.
func defaultTokenFile(socket string) string {
	if runtime.GOOS == "windows" {
		dir, err := os.UserConfigDir()
		if err != nil {
			return ""
		}
		return filepath.Join(dir, "eventbus", tokenFileName)
	}
	if socket == "" {
		return ""
	}
	if abs, err := filepath.Abs(socket); err == nil {
		socket = abs
	}
	return filepath.Join(filepath.Dir(socket), tokenFileName)
}

// identityFlags are the client commands' --as, --token-file and
// --broker-uid: who the client claims to be, and who the broker must be.
type identityFlags struct {
	as        string
	tokenFile string
	brokerUID uint32
}

func (f *identityFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.as, "as", "", "claim to be `COMPONENT` (procmond, agent, ...); the broker checks the claim against its policy")
	fl.StringVar(&f.tokenFile, "token-file", "", "with --as agent: read the agent token from `PATH` (default agent.token beside the socket; on Windows %AppData%\\eventbus\\agent.token)")
	fl.Uint32Var(&f.brokerUID, "broker-uid", 0, "send nothing unless the broker runs as `UID` or root (default: your own uid or root; ignored on Windows)")
}

// options returns the client options that make the claim, reading the
// agent token when the claim is the agent, and that check the broker.
func (f *identityFlags) options(cmd *cobra.Command) ([]eventbus.ClientOption, error) {
	opts, err := f.claim(cmd)
	if err != nil {
		return nil, err
	}
	if cmd.Flags().Changed("broker-uid") {
		opts = append(opts, eventbus.WithBrokerUID(f.brokerUID))
	}
	return opts, nil
}

// claim returns the client options that make the claim.
func (f *identityFlags) claim(cmd *cobra.Command) ([]eventbus.ClientOption, error) {
	if f.as == "" {
		if cmd.Flags().Changed("token-file") {
			return nil, usageErrorf("--token-file is for --as %s", acl.AgentComponent)
		}
		return nil, nil
	}
	opts := []eventbus.ClientOption{eventbus.WithComponent(f.as)}
	if f.as != acl.AgentComponent {
		if cmd.Flags().Changed("token-file") {
			return nil, usageErrorf("--token-file is for --as %s, not --as %s", acl.AgentComponent, f.as)
		}
		return opts, nil
	}
	path := f.tokenFile
	if path == "" {
		path = defaultTokenFile(socketPath(cmd))
	}
	if path == "" {
		return nil, usageErrorf("--as %s needs --token-file on %s", acl.AgentComponent, runtime.GOOS)
	}
	token, err := acl.ReadTokenFile(path)
	if err != nil {
		return nil, fmt.Errorf("--as %s: %w", acl.AgentComponent, err)
	}
	return append(opts, eventbus.WithToken(token)), nil
}
