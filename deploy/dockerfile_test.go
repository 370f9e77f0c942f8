package deploy_test

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// instruction is one Dockerfile instruction, continuation lines joined.
type instruction struct {
	cmd, args string
	stage     int
}

// stage is one FROM … [AS name] section.
type stage struct {
	image, name string
}

func parseDockerfile(t *testing.T, path string) ([]stage, []instruction) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var stages []stage
	var ins []instruction
	var cur strings.Builder
	flush := func() {
		line := strings.TrimSpace(cur.String())
		cur.Reset()
		if line == "" {
			return
		}
		cmd, args, _ := strings.Cut(line, " ")
		cmd = strings.ToUpper(cmd)
		args = strings.TrimSpace(args)
		if cmd == "FROM" {
			f := strings.Fields(args)
			st := stage{image: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			stages = append(stages, st)
		}
		ins = append(ins, instruction{cmd: cmd, args: args, stage: len(stages) - 1})
	}
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") && cur.Len() == 0 {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		flush()
	}
	flush()
	return stages, ins
}

// TestDockerfile checks deploy/Dockerfile: a Go build stage and a small
// non-root final stage with the binary and the default rules, and builds
// the binary with the Dockerfile's own command line to check it is static.
func TestDockerfile(t *testing.T) {
	stages, ins := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}
	final := len(stages) - 1
	args := map[string]string{}
	for _, in := range ins {
		if in.cmd == "ARG" {
			k, v, _ := strings.Cut(in.args, "=")
			args[k] = v
		}
	}
	expand := func(s string) string {
		return regexp.MustCompile(`\$\{?([A-Z_]+)\}?`).ReplaceAllStringFunc(s, func(m string) string {
			return args[strings.Trim(m, "${}")]
		})
	}

	// The builder's Go matches go.mod.
	builder := expand(stages[0].image)
	gomod, err := os.ReadFile(filepath.Join(repoRoot, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVer := regexp.MustCompile(`(?m)^go (\d+\.\d+)`).FindSubmatch(gomod)
	if !strings.HasPrefix(builder, "golang:"+string(goVer[1])) {
		t.Errorf("builder image %s does not match go.mod's go %s", builder, goVer[1])
	}

	if img := stages[final].image; img != "scratch" && !strings.HasPrefix(img, "gcr.io/distroless/static") {
		t.Errorf("final image %s: want scratch or distroless/static", img)
	}
	var user, entrypoint, binDest string
	var build string
	rulesCopied := false
	for _, in := range ins {
		switch {
		case in.stage == final && in.cmd == "USER":
			user = in.args
		case in.stage == final && in.cmd == "ENTRYPOINT":
			entrypoint = in.args
		case in.stage == final && in.cmd == "COPY" && strings.HasPrefix(in.args, "--from="):
			f := strings.Fields(in.args)
			binDest = f[len(f)-1]
			if from := strings.TrimPrefix(f[0], "--from="); from != stages[0].name {
				t.Errorf("final stage copies from %q, the build stage is %q", from, stages[0].name)
			}
		case in.stage == final && in.cmd == "COPY":
			f := strings.Fields(in.args)
			if f[0] == "deploy/rules.yaml" {
				rulesCopied = true
			}
		case in.stage == final && in.cmd == "ENV":
			if strings.Contains(in.args, "CDRGUARD_") {
				t.Errorf("final stage sets %s: CDRGUARD_ variables override every config file", in.args)
			}
		case in.stage < final && in.cmd == "RUN" && strings.Contains(in.args, "go build"):
			build = in.args
		}
	}
	uid, _, _ := strings.Cut(user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		t.Errorf("final stage USER %q: want a numeric non-root UID (kubelet's runAsNonRoot cannot check names)", user)
	}
	if !rulesCopied {
		t.Error("final stage does not copy deploy/rules.yaml (the default rules)")
	}
	if !strings.Contains(entrypoint, binDest) || binDest == "" {
		t.Errorf("ENTRYPOINT %s does not run the copied binary %s", entrypoint, binDest)
	}

	// The build line, run here: static, trimmed, versioned.
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-X main.version="} {
		if !strings.Contains(build, want) {
			t.Errorf("build %q lacks %s", build, want)
		}
	}
	out := regexp.MustCompile(`-o (\S+)`).FindStringSubmatch(build)
	if out == nil {
		t.Fatalf("build %q has no -o", build)
	}
	bin := filepath.Join(t.TempDir(), "cdrguard")
	args["VERSION"] = "deploy-test"
	line := strings.Replace(expand(build), out[1], bin, 1)
	cmd := exec.Command("sh", "-c", line)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", line, err, b)
	}
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("the binary built by the Dockerfile's command is not static: it has %v", p.Type)
		}
	}
	if v, _ := exec.Command(bin, "version").CombinedOutput(); !strings.Contains(string(v), "deploy-test") {
		t.Errorf("cdrguard version says %q, want the build's VERSION", v)
	}
	for _, st := range stages {
		if st.name == "" && st != stages[final] {
			t.Errorf("stage %s has no name; compose builds stages by name", st.image)
		}
	}
}
