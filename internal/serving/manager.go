package serving

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"recommendation-api/internal/model"
	"recommendation-api/internal/onnxfile"
)

// StepError says which step of loading or activating a version failed.
// It is a model.Publicer: a client reads "load v1.9.0: golden rows: " and
// the public message of Err (or only its class, when Err has none), while
// Error, for the log, has the whole chain.
type StepError struct {
	Step    string // "check manifest", "verify checksum", "check graph", "check version", "check architecture", "golden rows", "create session", "check signature", "compare runtime"
	Version model.Version
	Err     error
}

func (e *StepError) Error() string {
	return fmt.Sprintf("load %s: %s: %v", e.Version, e.Step, e.Err)
}
func (e *StepError) Unwrap() error { return e.Err }

// PublicMessage is the step and version with Err's public message, or, for
// an Err without one, the sentinel it wraps.
func (e *StepError) PublicMessage() string {
	return fmt.Sprintf("load %s: %s: %s", e.Version, e.Step, model.PublicOr(e.Err, classOf(e.Err)))
}

// classOf is the text of the first domain sentinel err wraps, for a
// message that must not say more.
func classOf(err error) string {
	for _, s := range []error{model.ErrChecksumMismatch, model.ErrSignatureMismatch, model.ErrGoldenMismatch,
		model.ErrInvalidModel, model.ErrVersionExists, model.ErrInvalidVersion} {
		if errors.Is(err, s) {
			return s.Error()
		}
	}
	return "internal error"
}

// loaded is one version with an ONNX Runtime session. refs counts the
// manager's own reference plus one per in-flight call; the session is
// destroyed when it drops to zero and is never revived after that.
type loaded struct {
	manifest *model.Manifest
	version  string
	sess     *Session
	refs     atomic.Int64
	live     *atomic.Int64 // the manager's count of undestroyed sessions
	stats    *Stats
}

func (l *loaded) tryAcquire() bool {
	for {
		r := l.refs.Load()
		if r <= 0 {
			return false
		}
		if l.refs.CompareAndSwap(r, r+1) {
			return true
		}
	}
}

func (l *loaded) release() {
	if l.refs.Add(-1) == 0 {
		l.sess.Close()
		l.live.Add(-1)
	}
}

// Options configure a Manager.
type Options struct {
	Session SessionOptions
}

// Manager owns the loaded versions and publishes one active version per
// major (I/O format): agents still sending one format are answered by that
// major's active version while others move to the next. Predict calls take
// a lease with an atomic load and a reference count, no lock.
type Manager struct {
	opts Options
	// actives is a copy-on-write map from major to its active version.
	actives atomic.Pointer[map[int]*loaded]
	// manifests is actives' manifests ascending by major, published with
	// it, so routing reads them without building a list per call.
	manifests atomic.Pointer[[]*model.Manifest]
	// byVersion is a copy-on-write map of loaded versions, read lock-free by
	// Acquire for pinned versions.
	byVersion atomic.Pointer[map[string]*loaded]
	live      atomic.Int64

	// mu serializes Load, Activate and Unload: each reads and replaces
	// byVersion and actives together.
	mu sync.Mutex
}

// NewManager returns a Manager serving nothing until Activate.
func NewManager(opts Options) *Manager {
	m := &Manager{opts: opts}
	empty := map[string]*loaded{}
	m.byVersion.Store(&empty)
	m.setActives(map[int]*loaded{})
	return m
}

// setActives publishes next as the active versions and their manifests.
// Callers hold mu (or own m).
func (m *Manager) setActives(next map[int]*loaded) {
	majors := make([]int, 0, len(next))
	for major := range next {
		majors = append(majors, major)
	}
	sort.Ints(majors)
	mans := make([]*model.Manifest, len(majors))
	for i, major := range majors {
		mans[i] = next[major].manifest
	}
	m.actives.Store(&next)
	m.manifests.Store(&mans)
}

// isActive reports whether l is the active version of its major.
func (m *Manager) isActive(l *loaded) bool {
	return (*m.actives.Load())[l.manifest.Version.Major] == l
}

// Load verifies a version and makes it available (not active). Nothing the
// bytes or the manifest say is trusted:
//
//   - check manifest: man.Validate (golden rows well formed, tolerance no
//     looser than model.GoldenTolerance);
//   - verify checksum: the bytes' sha256 and size are the manifest's;
//   - check graph: onnxfile.Check decodes the bytes and accepts only what
//     the project's encoder writes, before ONNX Runtime sees them;
//   - check version: the version the bytes carry is the manifest's;
//   - check architecture: the layer widths and parameter count the
//     manifest declares, if it does, are the decoded network's;
//   - golden rows: the manifest's golden outputs are what the server's own
//     pure-Go forward pass of the decoded weights gives, within
//     model.GoldenTolerance (the manifest's tolerance is not used);
//   - create session, check signature: ONNX Runtime loads the checked bytes
//     and sees the served I/O signature, which the manifest declares too;
//   - compare runtime: ONNX Runtime's answers to the golden rows and to the
//     server's probe rows agree with the pure-Go pass within
//     model.GoldenTolerance.
//
// Loading a version that is already loaded with the same checksum is a
// no-op. Errors are *StepError wrapping model.ErrChecksumMismatch,
// ErrInvalidModel, ErrSignatureMismatch, ErrGoldenMismatch or
// ErrVersionExists; their public message (model.PublicMessage) names the
// step and the reason and carries no value computed from the bytes.
func (m *Manager) Load(b []byte, man *model.Manifest) error {
	v := man.Version
	fail := func(step string, err error) error { return &StepError{Step: step, Version: v, Err: err} }
	if err := man.Validate(); err != nil {
		// Validate describes the manifest's own fields: safe to show.
		return fail("check manifest", model.Public(err, err.Error()))
	}
	if err := man.VerifyBytes(b); err != nil {
		return fail("verify checksum", model.Public(err, fmt.Sprintf("%v: the model bytes do not have the manifest's sha256 and size", model.ErrChecksumMismatch)))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if l, ok := (*m.byVersion.Load())[v.String()]; ok {
		if l.manifest.Model.SHA256 == man.Model.SHA256 {
			return nil
		}
		return fail("check manifest", fmt.Errorf("%w: %s is loaded with other bytes", model.ErrVersionExists, v))
	}
	c, err := onnxfile.Check(b)
	if err != nil {
		return fail("check graph", err)
	}
	if c.Version != v {
		err := fmt.Errorf("%w: the model bytes carry version %s; the manifest says %s", model.ErrInvalidModel, c.Version, v)
		return fail("check version", model.Public(err, err.Error()))
	}
	if err := man.Architecture.Describes(c.Model); err != nil {
		return fail("check architecture", err)
	}
	x, rows := man.GoldenInput(), len(man.Golden.Inputs)
	want := c.Model.Forward(x, rows)
	if err := man.CheckGolden(want); err != nil {
		return fail("golden rows", err)
	}
	sess, err := newCheckedSession(c, m.opts.Session, sessionConfig)
	if err != nil {
		return fail("create session", err)
	}
	// The served signature follows from the manifest's declared features.
	served := model.SignatureFor(len(man.Features))
	if sig := sess.Signature(); !sig.Equal(served) || !man.Signature.Equal(served) {
		sess.Close()
		err := fmt.Errorf("%w: model has inputs %v outputs %v, manifest declares %v -> %v; its %d features need %v -> %v",
			model.ErrSignatureMismatch, sig.Inputs, sig.Outputs, man.Signature.Inputs, man.Signature.Outputs,
			len(man.Features), served.Inputs, served.Outputs)
		return fail("check signature", model.Public(err, fmt.Sprintf("%v: the model's signature is not %s, which its %d declared features need",
			model.ErrSignatureMismatch, describeSignature(served), len(man.Features))))
	}
	if err := agrees(sess, c.Model, x, rows, len(man.Features)); err != nil {
		sess.Close()
		return fail("compare runtime", err)
	}
	l := &loaded{manifest: man, version: v.String(), sess: sess, live: &m.live, stats: &Stats{}}
	l.refs.Store(1)
	m.live.Add(1)
	m.setLoaded(l.version, l)
	return nil
}

// probeRowCount is how many of the server's own rows, besides a
// manifest's golden rows, ONNX Runtime must agree on with the pure-Go
// forward pass.
const probeRowCount = 16

// probeRows returns the probe rows for width features: the corners and a
// fixed spread of the normalized feature cube.
func probeRows(width int) []float32 {
	x := make([]float32, 0, probeRowCount*width)
	for j := 0; j < width; j++ {
		x = append(x, 0)
	}
	for j := 0; j < width; j++ {
		x = append(x, 1)
	}
	for r := 2; r < probeRowCount; r++ {
		for j := 0; j < width; j++ {
			x = append(x, float32((r*7+j*5)%17)/16)
		}
	}
	return x
}

// agrees runs the golden rows x and the probe rows in sess and compares
// them with q's pure-Go forward pass, within model.GoldenTolerance. An
// error wraps model.ErrGoldenMismatch; its public message has no value.
func agrees(sess *Session, q *model.QuantizedMLP, x []float32, rows, width int) error {
	probe := probeRows(width)
	x = append(append(make([]float32, 0, len(x)+len(probe)), x...), probe...)
	n := rows + probeRowCount
	got, err := sess.Run(x, n)
	if err != nil {
		return model.Public(fmt.Errorf("%w: ONNX Runtime run: %v", model.ErrGoldenMismatch, err), ortRefused+" to run the golden rows")
	}
	want := q.Forward(x, n)
	for i := range want {
		if d := math.Abs(float64(got[i] - want[i])); !(d <= model.GoldenTolerance) {
			err := fmt.Errorf("%w: row %d output %d: ONNX Runtime gives %v, the pure-Go forward pass %v (tolerance %g)",
				model.ErrGoldenMismatch, i/model.NumOutputs, i%model.NumOutputs, got[i], want[i], model.GoldenTolerance)
			return model.Public(err, fmt.Sprintf("%v: ONNX Runtime's answers differ from the server's forward pass of the model's weights by more than %g",
				model.ErrGoldenMismatch, model.GoldenTolerance))
		}
	}
	return nil
}

func describeSignature(s model.Signature) string {
	str := func(ts []model.TensorSpec) string {
		out := ""
		for i, t := range ts {
			if i > 0 {
				out += ", "
			}
			out += fmt.Sprintf("%s %s %v", t.Name, t.Type, t.Shape)
		}
		return out
	}
	return str(s.Inputs) + " → " + str(s.Outputs)
}

// setLoaded replaces byVersion with a copy where version maps to l (nil deletes). Callers hold mu.
func (m *Manager) setLoaded(version string, l *loaded) {
	old := *m.byVersion.Load()
	next := make(map[string]*loaded, len(old)+1)
	for k, v := range old {
		next[k] = v
	}
	if l == nil {
		delete(next, version)
	} else {
		next[version] = l
	}
	m.byVersion.Store(&next)
}

// Activate publishes a loaded version as the active one of its major and
// returns the version it replaced there (zero if none); other majors are
// untouched. The replaced version stays loaded (warm, for an instant
// rollback); call Unload to free it. Returns model.ErrVersionNotFound if
// the version is not loaded.
func (m *Manager) Activate(v model.Version) (model.Version, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := (*m.byVersion.Load())[v.String()]
	if !ok {
		return model.Version{}, fmt.Errorf("activate %s: %w: load it first", v, model.ErrVersionNotFound)
	}
	old := *m.actives.Load()
	next := make(map[int]*loaded, len(old)+1)
	for k, a := range old {
		next[k] = a
	}
	prev := next[v.Major]
	next[v.Major] = l
	m.setActives(next)
	if prev == nil {
		return model.Version{}, nil
	}
	return prev.manifest.Version, nil
}

// Unload drops a loaded version that is not active. Its session is
// destroyed when its last in-flight call ends. Unloading an active version
// or one that is not loaded is an error.
func (m *Manager) Unload(v model.Version) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	l, ok := (*m.byVersion.Load())[v.String()]
	if !ok {
		return fmt.Errorf("unload %s: %w", v, model.ErrVersionNotFound)
	}
	if m.isActive(l) {
		return fmt.Errorf("unload %s: it is the active version of major %d", v, v.Major)
	}
	m.setLoaded(l.version, nil)
	l.release()
	return nil
}

// KeepOnly unloads every loaded version except the active ones (of every
// major) and those listed.
func (m *Manager) KeepOnly(keep ...model.Version) {
	m.mu.Lock()
	want := map[string]bool{}
	for _, v := range keep {
		want[v.String()] = true
	}
	var drop []model.Version
	for k, l := range *m.byVersion.Load() {
		if !m.isActive(l) && !want[k] {
			drop = append(drop, l.manifest.Version)
		}
	}
	m.mu.Unlock()
	for _, v := range drop {
		_ = m.Unload(v)
	}
}

// Lease is one in-flight use of a loaded version. Release it exactly once.
type Lease struct {
	l        *loaded
	released atomic.Bool
}

// Manifest returns the leased version's manifest.
func (s *Lease) Manifest() *model.Manifest { return s.l.manifest }

// Run runs n normalized rows (n × the manifest's feature count) and returns n×5. Outputs that are NaN
// or outside [0,1] are an error (counted as a failure of that version).
func (s *Lease) Run(x []float32, n int) ([]float32, error) {
	out, err := s.l.sess.Run(x, n)
	if err == nil {
		for i, v := range out {
			if !(v >= 0 && v <= 1) {
				err = fmt.Errorf("model %s returned %v for row %d output %s; outputs must be in [0,1]",
					s.l.version, v, i/model.NumOutputs, s.l.manifest.Outputs[i%model.NumOutputs].Name)
				break
			}
		}
	}
	s.l.stats.record(err)
	return out, err
}

// Release ends the lease; later calls are no-ops.
func (s *Lease) Release() {
	if s.released.CompareAndSwap(false, true) {
		s.l.release()
	}
}

// Acquire leases a loaded pinned version ("v1.2.3"), or with version ""
// the active version of the lowest major that has one (v1 while it
// serves: what a client that names nothing has always got). Errors wrap
// model.ErrNoActiveVersion, model.ErrVersionNotFound or
// model.ErrInvalidVersion.
func (m *Manager) Acquire(version string) (*Lease, error) {
	return m.acquire(func() (*loaded, error) { return m.lookup(version) })
}

// AcquireMajor leases the active version of major. Errors wrap
// model.ErrNoActiveVersion naming the majors that are served.
func (m *Manager) AcquireMajor(major int) (*Lease, error) {
	return m.acquire(func() (*loaded, error) {
		l := (*m.actives.Load())[major]
		if l == nil {
			return nil, fmt.Errorf("%w of major %d; majors served: %v", model.ErrNoActiveVersion, major, m.Majors())
		}
		return l, nil
	})
}

func (m *Manager) acquire(find func() (*loaded, error)) (*Lease, error) {
	for {
		l, err := find()
		if err != nil {
			return nil, err
		}
		if l.tryAcquire() {
			return &Lease{l: l}, nil
		}
		// l was released between the load and the acquire: a swap happened,
		// look again (the new value is already published).
	}
}

func (m *Manager) lookup(version string) (*loaded, error) {
	if version == "" {
		actives := *m.actives.Load()
		var first *loaded
		for major, l := range actives {
			if first == nil || major < first.manifest.Version.Major {
				first = l
			}
		}
		if first == nil {
			return nil, model.ErrNoActiveVersion
		}
		return first, nil
	}
	if _, err := model.ParseVersion(version); err != nil {
		return nil, err
	}
	l, ok := (*m.byVersion.Load())[version]
	if !ok {
		return nil, fmt.Errorf("%w: %s is not loaded; loaded versions: %v", model.ErrVersionNotFound, version, m.LoadedVersions())
	}
	return l, nil
}

// Active returns the manifest of the version Acquire("") leases, or nil.
func (m *Manager) Active() *model.Manifest {
	if l, err := m.lookup(""); err == nil {
		return l.manifest
	}
	return nil
}

// ActiveOf returns the manifest of major's active version, or nil.
func (m *Manager) ActiveOf(major int) *model.Manifest {
	if l := (*m.actives.Load())[major]; l != nil {
		return l.manifest
	}
	return nil
}

// Majors lists the majors that have an active version, ascending.
func (m *Manager) Majors() []int {
	mans := *m.manifests.Load()
	out := make([]int, len(mans))
	for i, man := range mans {
		out[i] = man.Version.Major
	}
	return out
}

// ActiveManifests returns the active version of every major, ascending by
// major: what request routing chooses among. The slice is shared: callers
// must not modify it.
func (m *Manager) ActiveManifests() []*model.Manifest { return *m.manifests.Load() }

// Ready reports whether some major has an active version.
func (m *Manager) Ready() bool { return len(*m.actives.Load()) > 0 }

// LoadedVersions lists the loaded versions in semver order.
func (m *Manager) LoadedVersions() []string {
	var vs []model.Version
	for _, l := range *m.byVersion.Load() {
		vs = append(vs, l.manifest.Version)
	}
	sort.Slice(vs, func(i, j int) bool { return vs[i].Compare(vs[j]) < 0 })
	out := make([]string, len(vs))
	for i, v := range vs {
		out[i] = v.String()
	}
	return out
}

// LiveSessions is the number of ONNX Runtime sessions not yet destroyed
// (loaded versions plus unloaded ones still finishing calls).
func (m *Manager) LiveSessions() int { return int(m.live.Load()) }

// StatsOf returns the call counters of a loaded version.
func (m *Manager) StatsOf(v model.Version) (StatsSnapshot, bool) {
	l, ok := (*m.byVersion.Load())[v.String()]
	if !ok {
		return StatsSnapshot{}, false
	}
	return l.stats.snapshot(), true
}

// Close unloads everything, the active version included.
func (m *Manager) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.setActives(map[int]*loaded{})
	for k, l := range *m.byVersion.Load() {
		m.setLoaded(k, nil)
		l.release()
	}
}
