package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

func exportCommand(a *app) *cobra.Command {
	var out string
	var force bool
	cmd := &cobra.Command{
		Use:   "export USER",
		Short: "Write everything kept about USER as one JSON document (GDPR Art. 15 and 20)",
		Long: `export writes the user's export document: the identity record, then the
records of every declared store, streamed as it is read, so memory stays
flat however much the user has. It writes a data_export audit event.

Without -o the document goes to standard output. With -o it is written to
a new file (mode 0600) next to FILE and renamed to FILE only once complete,
so a failed export leaves no partial file.`,
		Args: oneArg("USER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			user := args[0]
			svc, err := a.commandService(ctx, "export")
			if err != nil {
				return err
			}
			ctx = a.asActor(ctx)
			if out == "" {
				w := bufio.NewWriterSize(a.out, 64<<10)
				if err := svc.Export(ctx, user, w); err != nil {
					return err
				}
				return w.Flush()
			}
			m := a.progress("exporting", -1, progressbar.OptionShowBytes(true))
			n, err := writeFile(out, force, func(w io.Writer) error {
				return svc.Export(ctx, user, &countingWriter{w: w, m: m})
			})
			if err != nil {
				m.abort()
				return err
			}
			m.finish()
			if a.json {
				return a.printJSON(struct {
					User  string `json:"user"`
					File  string `json:"file"`
					Bytes int64  `json:"bytes"`
				}{user, out, n})
			}
			a.printf("exported %s to %s (%d bytes)", user, out, n)
			return nil
		},
	}
	cmd.Flags().StringVarP(&out, "output", "o", "", "write the document to `FILE` instead of standard output")
	cmd.Flags().BoolVar(&force, "force", false, "replace FILE if it exists")
	return cmd
}

// writeFile writes a new file at path through write: into a temporary
// file of mode 0600 beside it, renamed to path once write succeeded, so
// a failure leaves nothing behind. It refuses to replace a file unless
// force.
func writeFile(path string, force bool, write func(io.Writer) error) (int64, error) {
	if _, err := os.Stat(path); err == nil && !force {
		return 0, usageErrorf("%s exists: remove it, choose another -o, or pass --force", path)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name()) // after the rename, there is nothing to remove
	bw := bufio.NewWriterSize(f, 64<<10)
	cw := &countingWriter{w: bw}
	err = write(cw)
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return 0, err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return 0, fmt.Errorf("export written but not renamed to %s: %w", path, err)
	}
	return cw.n, nil
}

// countingWriter counts the bytes written through it and moves a meter.
type countingWriter struct {
	w io.Writer
	n int64
	m *meter
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	if c.m != nil {
		c.m.set(c.n, "")
	}
	return n, err
}
