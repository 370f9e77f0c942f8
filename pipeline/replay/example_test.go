package replay_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/cdrguard/cdrguard/detectors"
	"github.com/cdrguard/cdrguard/pipeline/replay"
	"github.com/cdrguard/cdrguard/pipeline/rules"
	"github.com/cdrguard/cdrguard/schemas"
)

// A replay of a file of canonical JSON lines, alerts written to stdout.
func Example() {
	set, err := rules.Load("../../deploy/rules.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	eng, err := detectors.NewEngine(detectors.Config{}, set.Rules(), set.Allowlist)
	if err != nil {
		fmt.Println(err)
		return
	}
	in := `{"caller":"+15550100001","callee":"+15550100002","start_time":"2026-11-02T09:00:00Z","disposition":"answered","duration_s":30}
{"caller":"+15550100001",
`
	dec, err := schemas.NewDecoder("jsonl", strings.NewReader(in), schemas.DecodeOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	w := bufio.NewWriter(os.Stdout)
	r := replay.New(eng, replay.JSONLines(w), nil)
	if err := r.Decode(context.Background(), "calls.jsonl", dec); err != nil {
		fmt.Println(err)
		return
	}
	if err := r.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	if err := w.Flush(); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("replayed")
	// Output: replayed
}
