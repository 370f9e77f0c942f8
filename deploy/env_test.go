package deploy_test

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// Every name `services.sh env` exports is one the binary or a test reads
// (it once exported names nothing read).
func TestServicesEnvExportsWhatIsRead(t *testing.T) {
	out, err := exec.Command(filepath.Join(repoRoot, "deploy/local/services.sh"), "env").Output()
	if err != nil {
		t.Fatalf("services.sh env: %v", err)
	}
	names := regexp.MustCompile(`(?m)^export ([A-Z_]+)=`).FindAllStringSubmatch(string(out), -1)
	if len(names) == 0 {
		t.Fatalf("services.sh env exported nothing:\n%s", out)
	}
	var src strings.Builder
	err = filepath.WalkDir(repoRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == ".run") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".go") {
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			src.Write(b)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	all := src.String()
	for _, m := range names {
		if !strings.Contains(all, `"`+m[1]+`"`) {
			t.Errorf("services.sh env exports %s, which no Go code reads", m[1])
		}
	}
}
