package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/schollz/progressbar/v3"
)

// printJSON writes v as indented JSON on standard output.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes a line of text on standard output.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.out, format+"\n", args...)
}

// printTable writes rows under header, in aligned columns.
func (a *app) printTable(header []string, rows [][]string) {
	tw := tabwriter.NewWriter(a.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	tw.Flush()
}

// date formats a time as a day, "-" for the zero time.
func date(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.DateOnly)
}

// stamp formats a time to the minute, "-" for the zero time.
func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// errNotConfirmed ends a destructive command the operator did not confirm.
var errNotConfirmed = errors.New("not confirmed: nothing was done (pass --yes to skip the question)")

// confirm asks question on standard error and reads the answer from
// standard input; anything but y or yes ends the command with nothing
// done. yes skips the question.
func (a *app) confirm(question string, yes bool) error {
	if yes {
		return nil
	}
	fmt.Fprintf(a.err, "%s [y/N] ", question)
	if a.answers == nil {
		a.answers = &lineReader{r: bufio.NewReader(a.in)}
	}
	answer, err := a.answers.line()
	if err != nil {
		fmt.Fprintln(a.err)
		if errors.Is(err, io.EOF) {
			return fmt.Errorf("no answer on standard input: nothing was done (pass --yes to skip the question)")
		}
		return fmt.Errorf("reading the answer: %w", err)
	}
	switch strings.ToLower(strings.TrimSpace(answer)) {
	case "y", "yes":
		return nil
	}
	return errNotConfirmed
}

// lineReader reads answers line by line.
type lineReader struct{ r *bufio.Reader }

func (l *lineReader) line() (string, error) {
	s, err := l.r.ReadString('\n')
	if err != nil && (s == "" || !errors.Is(err, io.EOF)) {
		return "", err
	}
	return s, nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// meter shows the progress of one piece of work on standard error: a
// progress bar on a terminal, otherwise a plain line per step.
type meter struct {
	bar   *progressbar.ProgressBar // nil when not a terminal
	plain io.Writer
}

// progress starts a meter counting up to total (-1 when unknown), under
// desc; opts add to the bar's options. The bar is drawn at once: that
// starts its clock before the goroutine progressbar runs to turn the
// spinner of an unknown total, which reads the start time without a
// lock and would race with the first Set otherwise.
func (a *app) progress(desc string, total int64, opts ...progressbar.Option) *meter {
	if !isTerminal(a.err) {
		return &meter{plain: a.err}
	}
	bar := progressbar.NewOptions64(total, append([]progressbar.Option{
		progressbar.OptionSetWriter(a.err),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(),
		progressbar.OptionSetWidth(30),
		progressbar.OptionThrottle(100 * time.Millisecond),
		progressbar.OptionSetPredictTime(false),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { fmt.Fprintln(a.err) }),
	}, opts...)...)
	return &meter{bar: bar}
}

// set moves the meter to n; without a terminal it writes line instead,
// when not empty.
func (m *meter) set(n int64, line string) {
	if m.bar != nil {
		_ = m.bar.Set64(n)
		return
	}
	if line != "" {
		fmt.Fprintln(m.plain, line)
	}
}

// finish completes the meter.
func (m *meter) finish() {
	if m.bar != nil {
		_ = m.bar.Finish()
	}
}

// abort ends the meter where it stands, for work that failed.
func (m *meter) abort() {
	if m.bar != nil {
		_ = m.bar.Exit()
	}
}
