package main

import (
	"io"
	"os"
	"time"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// newProgress returns a progress bar on stderr for long commands (gen,
// replay): rate and time left, redrawn at most ten times a second. When
// stderr is not a terminal (a pipe, a log, CI) it returns nil, and the
// command prints only its usual summary. A nil bar is safe to use
// through progressAdd and progressReader.
func newProgress(stderr io.Writer, total int64, desc string, bytes bool) *progressbar.ProgressBar {
	f, ok := stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	opts := []progressbar.Option{
		progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetWidth(30),
	}
	if bytes {
		opts = append(opts, progressbar.OptionShowBytes(true))
	} else {
		opts = append(opts, progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"))
	}
	return progressbar.NewOptions64(total, opts...)
}

func progressAdd(bar *progressbar.ProgressBar, n int) {
	if bar != nil {
		_ = bar.Add(n)
	}
}

func progressDone(bar *progressbar.ProgressBar) {
	if bar != nil {
		_ = bar.Finish()
	}
}

// progressReader counts what is read from r on bar (r itself if bar is
// nil).
func progressReader(r io.Reader, bar *progressbar.ProgressBar) io.Reader {
	if bar == nil {
		return r
	}
	pr := progressbar.NewReader(r, bar)
	return &pr
}
