package registry

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"recommendation-api/internal/model"
)

// Defaults for Options.
const (
	DefaultKeep        = 5
	DefaultTimeout     = 2 * time.Second
	DefaultHistoryKeep = 10000
)

// Layout is the version of the file's bucket layout this code writes.
// Layout 1 had one active pointer (meta/active); layout 2 keeps one per
// major and the rollback index. Open upgrades a layout-1 file in place.
const Layout = 2

// Options tune a Store. The zero value gives the defaults.
type Options struct {
	// Keep is how many versions of each major retention keeps, newest by
	// semver; protected versions (see package doc) are kept in addition.
	// <= 0 means DefaultKeep.
	Keep int
	// HistoryKeep is how many history events are kept, newest by sequence;
	// older ones are deleted as new ones are appended. Rollback targets
	// never need them (they come from the rollback index). <= 0 means
	// DefaultHistoryKeep.
	HistoryKeep int
	// Timeout is how long Open waits for the file lock held by another
	// process. <= 0 means DefaultTimeout.
	Timeout time.Duration
	// Now stamps events; nil means time.Now.
	Now func() time.Time
}

// Store is a registry of model versions kept in one bbolt file. Create it
// with Open and release the file with Close.
type Store struct {
	db          *bbolt.DB
	path        string
	keep        int
	historyKeep uint64
	now         func() time.Time
}

// Bucket and key names; see doc.go for the layout.
var (
	bucketModels    = []byte("models")
	bucketManifests = []byte("manifests")
	bucketMeta      = []byte("meta")
	bucketHistory   = []byte("history")
	bucketRecords   = []byte("records")
	bucketActive    = []byte("active")  // major (4-byte BE) → active version "v1.2.3"
	bucketLineage   = []byte("lineage") // major (4-byte BE) → rollback index (JSON)

	keyLayout      = []byte("layout")
	keyActiveV1    = []byte("active") // layout 1's single active pointer, in meta
	keyHistoryHead = []byte("history_first")

	allBuckets = [][]byte{bucketModels, bucketManifests, bucketMeta, bucketHistory, bucketRecords, bucketActive, bucketLineage}
)

// versionKeyLen is the length of a version key: three big-endian uint32.
const versionKeyLen = 12

// mmapSize is the size of the file's memory map from the start (address
// space, not memory: only the pages the file holds are ever touched). bbolt
// otherwise maps the file at its size and, when a write needs more, unmaps
// and maps it again before writing. On a file system that has turned
// read-only that new map can be refused (an ext4 that remounted itself
// read-only after an error refuses to map a file open for writing, as
// bbolt's is), and bbolt is then left with no map at all: the write fails,
// and so does every read after it until the process restarts. Mapped once,
// large enough for any registry, a failed write leaves the store readable.
var mmapSize = func() int {
	if strconv.IntSize == 32 {
		return 256 << 20
	}
	return 1 << 30
}()

// allocSize is how much bbolt grows the file by at a time once the map is
// larger than its default step (16 MiB, which with mmapSize would be every
// growth): the file stays close to the size of what it holds.
const allocSize = 1 << 20

// Open opens the registry file at path, creating it and its buckets if
// needed. It waits at most opts.Timeout for the exclusive file lock; the
// error then names the path and wraps bbolt's ErrTimeout. Every error names
// the path.
func Open(path string, opts Options) (*Store, error) {
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.HistoryKeep <= 0 {
		opts.HistoryKeep = DefaultHistoryKeep
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: opts.Timeout, InitialMmapSize: mmapSize})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("registry: open %s: file is locked by another process (waited %s): %w", path, opts.Timeout, err)
	}
	if err != nil {
		return nil, fmt.Errorf("registry: open %s: %w", path, storageError(path, err))
	}
	db.AllocSize = allocSize
	s := &Store{db: db, path: path, keep: opts.Keep, historyKeep: uint64(opts.HistoryKeep), now: opts.Now}
	if err := db.Update(s.init); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("registry: open %s: %w", path, storageError(path, err))
	}
	return s, nil
}

// init creates missing buckets and upgrades a layout-1 file, in the one
// transaction Open runs: a crash leaves the file as it was.
func (s *Store) init(tx *bbolt.Tx) error {
	fresh := tx.Bucket(bucketMeta) == nil
	for _, name := range allBuckets {
		if _, err := tx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("bucket %s: %w", name, err)
		}
	}
	meta := tx.Bucket(bucketMeta)
	switch l := string(meta.Get(keyLayout)); {
	case fresh:
		return meta.Put(keyLayout, []byte(strconv.Itoa(Layout)))
	case l == strconv.Itoa(Layout):
		return nil
	case l == "" || l == "1":
		return s.upgradeFrom1(tx)
	default:
		return fmt.Errorf("file layout %q is newer than this server's (%d); upgrade the server", l, Layout)
	}
}

// upgradeFrom1 moves layout 1's single active pointer to its major's slot,
// builds each major's rollback index by replaying the history once, and
// records an "upgrade" event. upgradeHook, set by tests, fails it midway.
func (s *Store) upgradeFrom1(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if av := meta.Get(keyActiveV1); av != nil {
		v, err := model.ParseVersion(string(av))
		if err != nil {
			return fmt.Errorf("upgrade: layout-1 active version: %w", err)
		}
		if err := tx.Bucket(bucketActive).Put(majorKey(v.Major), []byte(v.String())); err != nil {
			return err
		}
	}
	evs, err := historyIn(tx)
	if err != nil {
		return fmt.Errorf("upgrade: %w", err)
	}
	stacks := map[int]*lineage{}
	for _, ev := range evs {
		v, err := model.ParseVersion(ev.To)
		if !model.IsActivation(ev.Action) || err != nil {
			continue
		}
		l := stacks[v.Major]
		if l == nil {
			l = &lineage{}
			stacks[v.Major] = l
		}
		l.Record(ev.Action, ev.From, ev.To)
	}
	for major, l := range stacks {
		l.Drop(func(v string) bool { return !registeredIn(tx, v) })
		if err := putLineage(tx, major, l); err != nil {
			return err
		}
	}
	if upgradeHook != nil {
		if err := upgradeHook(); err != nil {
			return err
		}
	}
	if err := meta.Delete(keyActiveV1); err != nil {
		return err
	}
	if err := meta.Put(keyLayout, []byte(strconv.Itoa(Layout))); err != nil {
		return err
	}
	return s.appendEvent(tx, &Event{Time: s.now().UTC().Round(0), Action: model.ActionUpgrade, Actor: "system",
		Reason: fmt.Sprintf("registry layout 1 (one active version) upgraded to %d (one active version per major)", Layout)})
}

// upgradeHook, when set (tests only), runs inside the upgrade transaction
// just before it commits; an error aborts the upgrade.
var upgradeHook func() error

// Close waits for running transactions to finish and releases the file and
// its lock. Closing twice is harmless; any other method fails after Close.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("registry: close %s: %w", s.path, err)
	}
	return nil
}

// Check runs bbolt's consistency check of the whole file (page structure,
// free list, key order) and the registry's own invariants: every version has
// both bytes and a decodable manifest of the same version, the active
// version is registered, and every event decodes. It does not hash model
// bytes (Load does). It returns nil when the file is clean, otherwise all
// problems joined. Check holds the write lock while it runs.
func (s *Store) Check() error {
	// A writable transaction, rolled back: bbolt's check reads the free
	// list, which only a writer may do safely while others write.
	tx, err := s.db.Begin(true)
	if err != nil {
		return fmt.Errorf("registry: check %s: %w", s.path, err)
	}
	defer func() { _ = tx.Rollback() }()

	var errs []error
	const maxErrs = 20
	for err := range tx.Check() {
		if len(errs) < maxErrs {
			errs = append(errs, err)
		}
	}
	if len(errs) == 0 {
		errs = checkInvariants(tx)
	}
	if len(errs) > 0 {
		return fmt.Errorf("registry: check %s: %w", s.path, errors.Join(errs...))
	}
	return nil
}

// checkInvariants verifies the registry's own structure inside tx.
func checkInvariants(tx *bbolt.Tx) []error {
	var errs []error
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			errs = append(errs, fmt.Errorf("bucket %s missing", name))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	models, manifests := tx.Bucket(bucketModels), tx.Bucket(bucketManifests)
	_ = models.ForEach(func(k, _ []byte) error {
		if manifests.Get(k) == nil {
			errs = append(errs, fmt.Errorf("model key %x has no manifest", k))
		}
		return nil
	})
	_ = manifests.ForEach(func(k, v []byte) error {
		if models.Get(k) == nil {
			errs = append(errs, fmt.Errorf("manifest key %x has no model bytes", k))
		}
		if _, err := decodeManifest(k, v); err != nil {
			errs = append(errs, err)
		}
		return nil
	})
	if l := string(tx.Bucket(bucketMeta).Get(keyLayout)); l != strconv.Itoa(Layout) {
		errs = append(errs, fmt.Errorf("layout %q; want %d", l, Layout))
	}
	_ = tx.Bucket(bucketActive).ForEach(func(k, av []byte) error {
		v, err := model.ParseVersion(string(av))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("active version of major key %x: %w", k, err))
		case len(k) != 4 || int(binary.BigEndian.Uint32(k)) != v.Major:
			errs = append(errs, fmt.Errorf("active version %s stored under major key %x", v, k))
		case models.Get(versionKey(v)) == nil:
			errs = append(errs, fmt.Errorf("active version %s is not registered", v))
		}
		return nil
	})
	_ = tx.Bucket(bucketLineage).ForEach(func(k, _ []byte) error {
		if len(k) != 4 {
			errs = append(errs, fmt.Errorf("rollback index key %x is not a major", k))
			return nil
		}
		l, err := lineageIn(tx, int(binary.BigEndian.Uint32(k)))
		if err != nil {
			errs = append(errs, err)
			return nil
		}
		for _, v := range l.Stack {
			if !registeredIn(tx, v) {
				errs = append(errs, fmt.Errorf("rollback index of major %d names %s, which is not registered", binary.BigEndian.Uint32(k), v))
			}
		}
		return nil
	})
	_ = tx.Bucket(bucketHistory).ForEach(func(k, v []byte) error {
		var ev Event
		if err := json.Unmarshal(v, &ev); err != nil || len(k) != 8 || ev.Seq != binary.BigEndian.Uint64(k) {
			errs = append(errs, fmt.Errorf("history key %x: undecodable or mismatched event", k))
		}
		return nil
	})
	return errs
}

// checkVersion refuses versions that have no key (negative numbers, or
// beyond uint32) with an error wrapping model.ErrInvalidVersion.
func checkVersion(v model.Version) error {
	for _, n := range [3]int{v.Major, v.Minor, v.Patch} {
		if n < 0 || int64(n) > math.MaxUint32 {
			return fmt.Errorf("%w %s: numbers must be in [0, %d]", model.ErrInvalidVersion, v, uint32(math.MaxUint32))
		}
	}
	return nil
}

// versionKey returns v's 12-byte sortable key; v must pass checkVersion.
func versionKey(v model.Version) []byte {
	k := make([]byte, versionKeyLen)
	binary.BigEndian.PutUint32(k[0:], uint32(v.Major))
	binary.BigEndian.PutUint32(k[4:], uint32(v.Minor))
	binary.BigEndian.PutUint32(k[8:], uint32(v.Patch))
	return k
}

// keyVersion decodes a version key.
func keyVersion(k []byte) (model.Version, error) {
	if len(k) != versionKeyLen {
		return model.Version{}, fmt.Errorf("%w: version key %x has %d bytes; want %d", model.ErrInvalidModel, k, len(k), versionKeyLen)
	}
	return model.Version{
		Major: int(binary.BigEndian.Uint32(k[0:])),
		Minor: int(binary.BigEndian.Uint32(k[4:])),
		Patch: int(binary.BigEndian.Uint32(k[8:])),
	}, nil
}

// decodeManifest decodes a stored manifest and checks it is the version its
// key says. The result does not alias v.
func decodeManifest(k, v []byte) (*model.Manifest, error) {
	kv, err := keyVersion(k)
	if err != nil {
		return nil, err
	}
	var m model.Manifest
	if err := json.Unmarshal(v, &m); err != nil {
		return nil, fmt.Errorf("%w: stored manifest of %s does not decode: %v", model.ErrInvalidModel, kv, err)
	}
	if m.Version != kv {
		return nil, fmt.Errorf("%w: stored manifest under key %s says version %s", model.ErrInvalidModel, kv, m.Version)
	}
	return &m, nil
}

// majorKey is the 4-byte key of a major in the active and lineage buckets.
func majorKey(major int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(major)) }

// activeIn returns the active version of major recorded in tx, and false if
// none.
func activeIn(tx *bbolt.Tx, major int) (model.Version, bool, error) {
	b := tx.Bucket(bucketActive).Get(majorKey(major))
	if b == nil {
		return model.Version{}, false, nil
	}
	v, err := model.ParseVersion(string(b))
	if err != nil {
		return model.Version{}, false, fmt.Errorf("stored active version of major %d: %w", major, err)
	}
	return v, true, nil
}

// registeredIn reports whether version string v is registered in tx.
func registeredIn(tx *bbolt.Tx, v string) bool {
	pv, err := model.ParseVersion(v)
	return err == nil && checkVersion(pv) == nil && tx.Bucket(bucketModels).Get(versionKey(pv)) != nil
}

// storageError wraps a write failure caused by the file system (no space,
// over quota, read-only) in the sentinel that says so, naming the
// directory; other errors are returned as they are.
func storageError(path string, err error) error {
	dir := filepath.Dir(path)
	switch {
	case isErrno(err, syscall.ENOSPC), isErrno(err, syscall.EDQUOT):
		msg := fmt.Sprintf("no space left in the data directory %s; nothing was stored, and the active versions keep serving", dir)
		return model.Public(fmt.Errorf("%w: %s: %w", model.ErrStorageFull, msg, err), msg)
	case isErrno(err, syscall.EROFS):
		msg := fmt.Sprintf("the data directory %s is on a read-only file system; nothing was stored", dir)
		return model.Public(fmt.Errorf("%w: %s: %w", model.ErrStorageReadOnly, msg, err), msg)
	}
	return err
}

// isErrno reports whether err is errno e. bbolt formats the errors of
// growing the file with %s ("file resize error: read-only file system",
// "file sync error: ..."), which drops the errno from the chain, so its
// text counts too.
func isErrno(err error, e syscall.Errno) bool {
	return errors.Is(err, e) || strings.Contains(err.Error(), e.Error())
}
