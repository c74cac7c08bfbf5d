package channel

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Store keeps topics' history outside their actors, so that it outlives
// them: a topic that stops (idle, a restart, the process's end) and starts
// again loads its epoch, offsets and kept events, and clients recover
// across it. Without a Store (Options.Store nil) history lives in the
// topic's memory only, and a new topic starts a new epoch.
//
// A topic calls its Store from its own goroutine: Load once when it
// starts, Append for every kept event (before the event is sent), Reset
// when it starts a new epoch. Calls for different topics may come
// concurrently.
type Store interface {
	// Load returns topic's stream: its epoch, the offset of its newest
	// event, and its newest events (at most keep), oldest first. A topic
	// never stored returns an empty epoch.
	Load(topic string, keep int) (epoch string, last uint64, events []StoredEvent, err error)
	// Append records e as the newest event of topic's stream epoch. keep is
	// how many events the topic keeps: older ones may be dropped.
	Append(topic, epoch string, e StoredEvent, keep int) error
	// Reset starts topic's stream anew with epoch and no events.
	Reset(topic, epoch string) error
}

// StoredEvent is one kept event as a Store holds it.
type StoredEvent struct {
	Offset uint64          `json:"offset"`
	Event  string          `json:"event"`
	Data   json.RawMessage `json:"data,omitempty"`
	Bin    []byte          `json:"data_b64,omitempty"` // a bytes payload
	Time   time.Time       `json:"time"`
}

// FileStore is a Store in a directory: one append-only file of JSON lines
// per topic, rewritten with only the events kept once it holds twice as
// many. Appends are written to the file (not synced): they survive the
// process's end or crash, not the machine's. It is for a single process; a
// cluster replicates history instead.
type FileStore struct {
	dir string

	mu    sync.Mutex
	files map[string]*topicFile
}

type topicFile struct {
	mu    sync.Mutex
	f     *os.File
	lines int // events in the file
}

// fileHeader is a topic file's first line.
type fileHeader struct {
	Epoch string `json:"epoch"`
}

// NewFileStore returns a FileStore in dir, making it if needed.
func NewFileStore(dir string) (*FileStore, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("channel: file store: %w", err)
	}
	return &FileStore{dir: dir, files: map[string]*topicFile{}}, nil
}

func (s *FileStore) path(topic string) string {
	return filepath.Join(s.dir, url.PathEscape(topic)+".jsonl")
}

func (s *FileStore) file(topic string) *topicFile {
	s.mu.Lock()
	defer s.mu.Unlock()
	tf := s.files[topic]
	if tf == nil {
		tf = &topicFile{}
		s.files[topic] = tf
	}
	return tf
}

// Load implements Store.
func (s *FileStore) Load(topic string, keep int) (string, uint64, []StoredEvent, error) {
	tf := s.file(topic)
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return s.read(tf, topic, keep)
}

// read reads topic's file; the caller holds tf.mu.
func (s *FileStore) read(tf *topicFile, topic string, keep int) (string, uint64, []StoredEvent, error) {
	f, err := os.Open(s.path(topic))
	if errors.Is(err, fs.ErrNotExist) {
		return "", 0, nil, nil
	}
	if err != nil {
		return "", 0, nil, fmt.Errorf("channel: file store: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	var h fileHeader
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &h) != nil || h.Epoch == "" {
		return "", 0, nil, fmt.Errorf("channel: file store: %s: no header", s.path(topic))
	}
	var (
		events []StoredEvent
		last   uint64
		n      int
	)
	for sc.Scan() {
		var e StoredEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Offset != last+1 && last != 0 {
			// A torn last line (a crash mid-write) ends the stream; a gap
			// or garbage elsewhere means the file cannot be trusted.
			if sc.Scan() {
				return "", 0, nil, fmt.Errorf("channel: file store: %s: bad event after offset %d", s.path(topic), last)
			}
			break
		}
		last = e.Offset
		n++
		events = append(events, e)
		if keep >= 0 && len(events) > 2*max(keep, 1) {
			events = append(events[:0], events[len(events)-keep:]...)
		}
	}
	if err := sc.Err(); err != nil {
		return "", 0, nil, fmt.Errorf("channel: file store: %w", err)
	}
	if keep >= 0 && len(events) > keep {
		events = events[len(events)-keep:]
	}
	tf.lines = n
	return h.Epoch, last, events, nil
}

// Append implements Store.
func (s *FileStore) Append(topic, epoch string, e StoredEvent, keep int) error {
	tf := s.file(topic)
	tf.mu.Lock()
	defer tf.mu.Unlock()
	if tf.f == nil {
		f, err := os.OpenFile(s.path(topic), os.O_WRONLY|os.O_APPEND, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			return s.rewriteLocked(tf, topic, epoch, []StoredEvent{e})
		}
		if err != nil {
			return fmt.Errorf("channel: file store: %w", err)
		}
		tf.f = f
	}
	line, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("channel: file store: %w", err)
	}
	if _, err := tf.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("channel: file store: %w", err)
	}
	tf.lines++
	if keep >= 0 && tf.lines > 2*max(keep, 16) {
		_, _, events, err := s.read(tf, topic, keep)
		if err != nil {
			return err
		}
		return s.rewriteLocked(tf, topic, epoch, events)
	}
	return nil
}

// Reset implements Store.
func (s *FileStore) Reset(topic, epoch string) error {
	tf := s.file(topic)
	tf.mu.Lock()
	defer tf.mu.Unlock()
	return s.rewriteLocked(tf, topic, epoch, nil)
}

// rewriteLocked replaces topic's file with a header and events, atomically
// (a new file renamed over the old one).
func (s *FileStore) rewriteLocked(tf *topicFile, topic, epoch string, events []StoredEvent) error {
	if tf.f != nil {
		_ = tf.f.Close()
		tf.f = nil
	}
	tmp, err := os.CreateTemp(s.dir, ".rewrite-*")
	if err != nil {
		return fmt.Errorf("channel: file store: %w", err)
	}
	w := bufio.NewWriter(tmp)
	enc := json.NewEncoder(w)
	err = enc.Encode(fileHeader{Epoch: epoch})
	for i := 0; err == nil && i < len(events); i++ {
		err = enc.Encode(events[i])
	}
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), s.path(topic))
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return fmt.Errorf("channel: file store: %w", err)
	}
	tf.lines = len(events)
	return nil
}

// Close closes the store's open files.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, tf := range s.files {
		tf.mu.Lock()
		if tf.f != nil {
			errs = append(errs, tf.f.Close())
			tf.f = nil
		}
		tf.mu.Unlock()
	}
	return errors.Join(errs...)
}
