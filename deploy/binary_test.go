// Package deploy_test checks the packaging in deploy/ (Dockerfile, compose
// file, Kubernetes manifests, Grafana dashboards) against the cdrguard
// binary: subcommands, flags and environment variables are read from the
// binary's --help, config files are loaded by the binary itself, and the
// dashboards' SQL runs on generated data. deploy/ holds no product Go code.
package deploy_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// repoRoot is the repository, seen from this package's directory.
const repoRoot = ".."

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// binary builds cdrguard once for the package's tests.
func binary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cdrguard-deploy-")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "cdrguard")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/cdrguard")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// help is what a subcommand's --help says.
type help struct {
	flags map[string]bool // without the dash
	env   map[string]bool // CDRGUARD_… variables the flags read
}

var (
	helpMu    sync.Mutex
	helpCache = map[string]*help{}
	cmdsCache map[string]bool
)

var (
	flagLine = regexp.MustCompile(`^\s+-{1,2}([A-Za-z0-9][A-Za-z0-9._-]*)`)
	envName  = regexp.MustCompile(`\[\$(CDRGUARD_[A-Z0-9_]+)\]`)
	cmdLine  = regexp.MustCompile(`^\s{2}([a-z][a-z0-9-]*)\s{2,}\S`)
)

// commands lists the subcommands `cdrguard --help` names.
func commands(t *testing.T) map[string]bool {
	t.Helper()
	helpMu.Lock()
	defer helpMu.Unlock()
	if cmdsCache != nil {
		return cmdsCache
	}
	out, _ := exec.Command(binary(t), "--help").CombinedOutput()
	cmds := map[string]bool{}
	inCommands := false
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "Commands:"):
			inCommands = true
		case inCommands && strings.TrimSpace(line) == "":
			inCommands = false
		case inCommands:
			if m := cmdLine.FindStringSubmatch(line); m != nil {
				cmds[m[1]] = true
			}
		}
	}
	if !cmds["run"] || !cmds["gen"] {
		t.Fatalf("cannot read the subcommands from cdrguard --help:\n%s", out)
	}
	cmdsCache = cmds
	return cmds
}

// helpOf reads a subcommand's flags and environment variables from its
// --help; nil when the binary has no such subcommand.
func helpOf(t *testing.T, sub string) *help {
	t.Helper()
	if !commands(t)[sub] {
		return nil
	}
	helpMu.Lock()
	defer helpMu.Unlock()
	if h, ok := helpCache[sub]; ok {
		return h
	}
	out, _ := exec.Command(binary(t), sub, "--help").CombinedOutput()
	h := &help{flags: map[string]bool{}, env: map[string]bool{}}
	for _, line := range strings.Split(string(out), "\n") {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			h.flags[m[1]] = true
		}
		for _, m := range envName.FindAllStringSubmatch(line, -1) {
			h.env[m[1]] = true
		}
	}
	if len(h.flags) == 0 && sub != "schema" && sub != "version" {
		t.Fatalf("no flags read from cdrguard %s --help:\n%s", sub, out)
	}
	helpCache[sub] = h
	return h
}

// pending are subcommands the design names that are being built: a
// manifest may run them before the binary has them, and their flags are
// checked from the moment `cdrguard --help` lists them.
var pending = map[string]bool{"console": true, "hooks": true}

// checkInvocation checks a cdrguard command line (subcommand first) and
// the CDRGUARD_ variables of its environment against the binary. It
// returns the subcommand's help, nil when the binary does not have it yet.
func checkInvocation(t *testing.T, where string, args []string, env map[string]string) *help {
	t.Helper()
	if len(args) == 0 {
		t.Errorf("%s: no cdrguard subcommand", where)
		return nil
	}
	sub := args[0]
	h := helpOf(t, sub)
	if h == nil {
		if !pending[sub] {
			t.Errorf("%s: cdrguard has no subcommand %q (cdrguard --help lists %v)", where, sub, keys(commands(t)))
		} else {
			t.Logf("%s: cdrguard %s is not in this binary yet; its flags and environment are not checked", where, sub)
		}
		return nil
	}
	for _, a := range args[1:] {
		if !strings.HasPrefix(a, "-") || a == "-" {
			continue // a flag's value
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !h.flags[name] {
			t.Errorf("%s: cdrguard %s has no flag -%s (it has %v)", where, sub, name, keys(h.flags))
		}
	}
	for k := range env {
		if strings.HasPrefix(k, "CDRGUARD_") && !h.env[k] {
			t.Errorf("%s: cdrguard %s reads no %s (it reads %v)", where, sub, k, keys(h.env))
		}
	}
	return h
}

// checkRunConfig has the binary load a config file the way a deployment
// does: files the deployment mounts are put in place by rewriting their
// paths (mounts maps a path in the container to a file here), the
// environment is the deployment's, and the broker is unreachable. The
// binary validates the whole config (strict YAML, values, rules) before it
// logs "cdrguard run" and connects; the test passes once that line shows.
func checkRunConfig(t *testing.T, where, config string, mounts map[string]string, env map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for container, here := range mounts {
		abs, err := filepath.Abs(here)
		if err != nil {
			t.Fatal(err)
		}
		config = strings.ReplaceAll(config, container, abs)
	}
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary(t), "run", "--config", path,
		"--kafka-brokers", "127.0.0.1:1", "--metrics-listen", "off", "--log-level", "info")
	cmd.Dir = repoRoot // the image's working directory holds deploy/rules.yaml too
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range env {
		if k == "CDRGUARD_METRICS_LISTEN" || k == "CDRGUARD_KAFKA_BROKERS" {
			continue // overridden by the flags above
		}
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	out, _ := cmd.CombinedOutput()
	if !strings.Contains(string(out), `"msg":"cdrguard run"`) && !strings.Contains(string(out), "\tcdrguard run\t") {
		t.Errorf("%s: cdrguard run does not accept the config:\n%s\n--- config:\n%s", where, out, config)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// missing says whether a missing service fails (CDRGUARD_INTEGRATION=1)
// or skips the test.
func missing(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("CDRGUARD_INTEGRATION") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format+" (CDRGUARD_INTEGRATION=1 makes this a failure)", args...)
}
