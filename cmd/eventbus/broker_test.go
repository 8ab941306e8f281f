//go:build unix

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"daemoneye.dev/eventbus/internal/testutil"
)

func TestBrokerSIGTERM(t *testing.T) {
	t.Parallel()
	b, sock := startBroker(t)
	want := "eventbus broker 0.1.0 listening on " + sock + " (pid " + strconv.Itoa(b.Pid()) + ")\n"
	if first, _, _ := strings.Cut(b.Stderr.String(), "\n"); first+"\n" != want {
		t.Errorf("broker's first line = %q; want %q", first, want)
	}
	b.Signal(t, syscall.SIGTERM)
	if code := b.Wait(t, waitLimit); code != 0 {
		t.Errorf("broker exited %d after SIGTERM; want 0; stderr:\n%s", code, b.Stderr.String())
	}
	if _, err := os.Lstat(sock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("socket file after shutdown: Lstat = %v; want not exist", err)
	}
}

func TestSecondBrokerRefused(t *testing.T) {
	t.Parallel()
	first, sock := startOpenBroker(t)
	r := runCLI(t, "", "broker", "--socket", sock)
	want := fmt.Sprintf("eventbus: transport: a broker (pid %d) is already listening at %s\n", first.Pid(), sock)
	if r.code != 1 || r.stderr != want {
		t.Errorf("second broker = %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
	if first.Exited() {
		t.Fatalf("first broker exited; stderr:\n%s", first.Stderr.String())
	}
	if r := runCLI(t, "", "pub", "--socket", sock, "events.a", "still here"); r.code != 0 {
		t.Errorf("pub to the first broker = %d, %q; want 0", r.code, r.stderr)
	}
	if _, err := os.Lstat(sock); err != nil {
		t.Errorf("first broker's socket: %v", err)
	}
}

func TestBrokerBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "max_connections: 10\nbogus_field: 3\n", []string{"line 2", "bogus_field"}},
		{"wrong type", "max_connections: 10\nmessage_buffer_size: lots\n", []string{"line 2", "lots"}},
		{"invalid value", "slow_subscriber_policy: never\n", []string{"line 1", "slow_subscriber_policy", "never"}},
		{"bad mode", "max_connections: 10\nsocket_mode: 999\n", []string{"line 2", "socket_mode"}},
	}
	dir := t.TempDir()
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			file := filepath.Join(dir, "bad"+strconv.Itoa(i)+".yaml")
			if err := os.WriteFile(file, []byte(tt.yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			sock := filepath.Join(testutil.SocketDir(t), "eb.sock")
			r := runCLI(t, "", "broker", "--socket", sock, "--config", file)
			if r.code != 1 || !strings.HasPrefix(r.stderr, "eventbus: config "+file) {
				t.Errorf("broker --config = %d, stderr %q; want 1 and the file named", r.code, r.stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("broker --config: stderr %q does not contain %q", r.stderr, w)
				}
			}
			if _, err := os.Lstat(sock); err == nil {
				t.Errorf("broker created %s despite a bad config", sock)
			}
		})
	}
}

// TestBrokerConfigAndFlags checks that the file's settings apply, that a
// flag the user gave overrides one, and that defaults of flags not given
// do not.
func TestBrokerConfigAndFlags(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(testutil.SocketDir(t), "fromfile.sock")
	file := filepath.Join(t.TempDir(), "eventbus.yaml")
	cfg := "socket_path: " + sock + "\nmax_connections: 7\nmessage_buffer_size: 50\n"
	if err := os.WriteFile(file, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// --socket is not given, so the file's socket_path is used; the
	// default of --socket points elsewhere.
	env := []string{"EVENTBUS_SOCKET=" + filepath.Join(testutil.SocketDir(t), "default.sock")}
	b := startCLIEnv(t, env, "broker", "--config", file, "--buffer", "20")
	waitForBroker(t, b, sock)
	if s := brokerStats(t, sock); s.MaxConnections != 7 {
		t.Errorf("max_connections = %d; want 7 from the file", s.MaxConnections)
	}
	b.Signal(t, syscall.SIGTERM)
	b.Wait(t, waitLimit)

	sock2 := filepath.Join(testutil.SocketDir(t), "flag.sock")
	b2 := startCLI(t, "broker", "--config", file, "--socket", sock2, "--max-connections", "9")
	waitForBroker(t, b2, sock2)
	if s := brokerStats(t, sock2); s.MaxConnections != 9 {
		t.Errorf("max_connections = %d; want 9 from --max-connections", s.MaxConnections)
	}
}

func TestBrokerNoStats(t *testing.T) {
	t.Parallel()
	_, sock := startBroker(t, "--no-stats")
	if s := brokerStats(t, sock); s.StatisticsEnabled {
		t.Errorf("statistics_enabled = true with --no-stats")
	}
	r := runCLI(t, "", "stats", "--socket", sock)
	if r.code != 0 || !strings.Contains(r.stdout, "enable_statistics: false") {
		t.Errorf("stats = %d, %q; want 0 and a note that statistics are off", r.code, r.stdout)
	}
}

func TestNoBroker(t *testing.T) {
	t.Parallel()
	sock := filepath.Join(testutil.SocketDir(t), "missing.sock")
	for _, args := range [][]string{
		{"pub", "--socket", sock, "events.a", "x"},
		{"sub", "--socket", sock, "events.#"},
		{"stats", "--socket", sock},
	} {
		r := runCLI(t, "", args...)
		want := "eventbus: transport: no broker is listening at " + sock + " (is `eventbus broker` running?)\n"
		if r.code != 1 || r.stderr != want {
			t.Errorf("eventbus %v = %d, stderr %q; want 1, %q", args, r.code, r.stderr, want)
		}
	}
}
