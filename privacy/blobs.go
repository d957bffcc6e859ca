package privacy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
)

// ErrBlobNotFound is matched when a BlobOpener has no blob of the name.
var ErrBlobNotFound = errors.New("privacy: blob not found")

// MemoryBlobs keeps queued exports in memory, for tests and examples. It
// is a BlobWriter, BlobDeleter and BlobOpener, safe for concurrent use. A
// blob becomes visible when its writer is closed.
type MemoryBlobs struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

var (
	_ BlobWriter  = (*MemoryBlobs)(nil)
	_ BlobDeleter = (*MemoryBlobs)(nil)
	_ BlobOpener  = (*MemoryBlobs)(nil)
)

// NewMemoryBlobs returns an empty MemoryBlobs.
func NewMemoryBlobs() *MemoryBlobs { return &MemoryBlobs{blobs: map[string][]byte{}} }

// Create implements BlobWriter.
func (m *MemoryBlobs) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return &memBlob{m: m, name: name}, nil
}

type memBlob struct {
	m    *MemoryBlobs
	name string
	buf  bytes.Buffer
}

func (b *memBlob) Write(p []byte) (int, error) { return b.buf.Write(p) }

func (b *memBlob) Close() error {
	b.m.mu.Lock()
	defer b.m.mu.Unlock()
	if b.m.blobs == nil {
		b.m.blobs = map[string][]byte{}
	}
	b.m.blobs[b.name] = slices.Clone(b.buf.Bytes())
	return nil
}

// Delete implements BlobDeleter.
func (m *MemoryBlobs) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.blobs, name)
	return nil
}

// Open implements BlobOpener.
func (m *MemoryBlobs) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.blobs[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrBlobNotFound, name)
	}
	return io.NopCloser(bytes.NewReader(b)), nil
}

// Names returns the names of the blobs held, sorted.
func (m *MemoryBlobs) Names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]string, 0, len(m.blobs))
	for n := range m.blobs {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// DirBlobs keeps queued exports as files in one directory, written to a
// temporary file and renamed into place when closed, so a reader never
// sees half an export. It is a BlobWriter, BlobDeleter and BlobOpener,
// safe for concurrent use by several processes sharing the directory.
// Files are created readable by their owner only.
type DirBlobs struct {
	dir string
}

var (
	_ BlobWriter  = (*DirBlobs)(nil)
	_ BlobDeleter = (*DirBlobs)(nil)
	_ BlobOpener  = (*DirBlobs)(nil)
)

// NewDirBlobs returns a DirBlobs over dir, creating it (mode 0700) when
// missing.
func NewDirBlobs(dir string) (*DirBlobs, error) {
	if dir == "" {
		return nil, fmt.Errorf("%w: NewDirBlobs: empty directory", ErrInvalidConfig)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("privacy: blobs: %w", err)
	}
	return &DirBlobs{dir: dir}, nil
}

// path returns the file of blob name, refusing names that are not a
// single plain file name.
func (d *DirBlobs) path(name string) (string, error) {
	if name == "" || name != filepath.Base(name) || name == "." || name == ".." || !fs.ValidPath(name) {
		return "", fmt.Errorf("privacy: blobs: %q is not a plain file name", name)
	}
	return filepath.Join(d.dir, name), nil
}

// Create implements BlobWriter.
func (d *DirBlobs) Create(ctx context.Context, name string) (io.WriteCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(d.dir, "."+name+".*")
	if err != nil {
		return nil, fmt.Errorf("privacy: blobs: %w", err)
	}
	return &dirBlob{f: f, to: p}, nil
}

type dirBlob struct {
	f  *os.File
	to string
}

func (b *dirBlob) Write(p []byte) (int, error) { return b.f.Write(p) }

func (b *dirBlob) Close() error {
	err := errors.Join(b.f.Sync(), b.f.Close())
	if err == nil {
		err = os.Rename(b.f.Name(), b.to)
	}
	if err != nil {
		_ = os.Remove(b.f.Name())
		return fmt.Errorf("privacy: blobs: %w", err)
	}
	return nil
}

// Delete implements BlobDeleter.
func (d *DirBlobs) Delete(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := d.path(name)
	if err != nil {
		return err
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("privacy: blobs: %w", err)
	}
	return nil
}

// Open implements BlobOpener.
func (d *DirBlobs) Open(ctx context.Context, name string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := d.path(name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %q", ErrBlobNotFound, name)
	}
	if err != nil {
		return nil, fmt.Errorf("privacy: blobs: %w", err)
	}
	return f, nil
}
