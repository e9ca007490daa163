package etcdstore

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"recommendation-api/internal/model"
)

// Defaults and limits; see the package doc.
const (
	DefaultPrefix         = "/recommendation-api/registry"
	DefaultKeep           = 5
	DefaultHistoryKeep    = 10000
	DefaultDialTimeout    = 5 * time.Second
	DefaultRequestTimeout = 5 * time.Second

	// MaxModelBytes is the largest model the store accepts, well under
	// etcd's default request limit (--max-request-bytes, 1.5 MiB) so that
	// a registration with its manifest and events fits one transaction.
	MaxModelBytes = 512 << 10
	// MaxManifestBytes is the largest encoded manifest the store accepts.
	MaxManifestBytes = 256 << 10
	// MaxAttempts bounds how often a change is recomputed when another
	// replica changed what it read; then it fails with
	// model.ErrConcurrentChange.
	MaxAttempts = 16
)

// Layout is the version of the key layout this code writes, stored under
// <prefix>/meta/layout.
const Layout = 1

// Options tune a Store. Endpoints (or Client) is required; the zero value
// of the rest gives the defaults.
type Options struct {
	// Endpoints are the etcd client URLs, e.g. http://127.0.0.1:2379.
	Endpoints []string
	// Client, when set, is used instead of dialing Endpoints (for TLS or
	// authentication set up by the caller); Close leaves it open.
	Client *clientv3.Client
	// TLS, when set, is the client's TLS configuration (the cluster's CA,
	// and a client certificate for etcd's --client-cert-auth); the
	// endpoints are then https URLs.
	TLS *tls.Config
	// Username and Password authenticate to an etcd with auth enabled;
	// empty Username means none.
	Username, Password string
	// Prefix is where the registry's keys live; several registries can
	// share a cluster under different prefixes. "" means DefaultPrefix.
	Prefix string
	// Keep is how many versions of each major retention keeps; <= 0 means
	// DefaultKeep. Every replica must use the same value.
	Keep int
	// HistoryKeep is how many history events are kept; <= 0 means
	// DefaultHistoryKeep.
	HistoryKeep int
	// DialTimeout bounds Open's first contact; RequestTimeout every later
	// call. <= 0 means the defaults.
	DialTimeout, RequestTimeout time.Duration
	// Now stamps events; nil means time.Now.
	Now func() time.Time
}

// Store is a model.Registry kept in etcd. Create it with Open and release
// it with Close.
type Store struct {
	client      *clientv3.Client
	ownsClient  bool
	endpoints   string
	prefix      string
	keep        int
	historyKeep uint64
	timeout     time.Duration
	now         func() time.Time

	closeOnce sync.Once
	closeErr  error
}

var _ model.Registry = (*Store)(nil)

// Open connects to etcd and prepares the registry under opts.Prefix,
// writing its layout marker if the prefix is new. It fails, naming the
// endpoints, when no member answers within opts.DialTimeout or when the
// prefix holds a layout this code does not know.
func Open(opts Options) (*Store, error) {
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.HistoryKeep <= 0 {
		opts.HistoryKeep = DefaultHistoryKeep
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	prefix := strings.TrimRight(opts.Prefix, "/")
	if opts.Prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasPrefix(prefix, "/") {
		return nil, fmt.Errorf("etcdstore: open: prefix %q must start with /", opts.Prefix)
	}
	s := &Store{client: opts.Client, prefix: prefix, keep: opts.Keep, historyKeep: uint64(opts.HistoryKeep),
		timeout: opts.RequestTimeout, now: opts.Now}
	if s.client == nil {
		if len(opts.Endpoints) == 0 {
			return nil, errors.New("etcdstore: open: no endpoints; want etcd client URLs such as http://127.0.0.1:2379")
		}
		c, err := clientv3.New(clientv3.Config{
			Endpoints:   opts.Endpoints,
			DialTimeout: opts.DialTimeout,
			TLS:         opts.TLS,
			Username:    opts.Username,
			Password:    opts.Password,
			Logger:      zap.NewNop(),
			// Notice a dead member's connection without waiting for TCP.
			DialKeepAliveTime:    2 * time.Second,
			DialKeepAliveTimeout: 2 * time.Second,
		})
		if err != nil {
			return nil, fmt.Errorf("etcdstore: open %s: %w", strings.Join(opts.Endpoints, ","), err)
		}
		s.client, s.ownsClient = c, true
	}
	s.endpoints = strings.Join(s.client.Endpoints(), ",")

	ctx, cancel := context.WithTimeout(context.Background(), opts.DialTimeout)
	defer cancel()
	k := s.key("meta", "layout")
	resp, err := s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(k), "=", 0)).
		Then(clientv3.OpPut(k, strconv.Itoa(Layout))).
		Else(clientv3.OpGet(k)).Commit()
	if err == nil && !resp.Succeeded {
		if l := string(resp.Responses[0].GetResponseRange().Kvs[0].Value); l != strconv.Itoa(Layout) {
			err = fmt.Errorf("layout %q under %s is not this server's (%d); upgrade the server", l, prefix, Layout)
		}
	}
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("etcdstore: open %s%s: %w", s.endpoints, prefix, s.storageError(err))
	}
	return s, nil
}

// Close releases the client if Open dialed it. Closing twice is harmless;
// other methods fail after Close.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		if s.ownsClient {
			if err := s.client.Close(); err != nil && !errors.Is(err, context.Canceled) {
				s.closeErr = fmt.Errorf("etcdstore: close %s: %w", s.endpoints, err)
			}
		}
	})
	return s.closeErr
}

// Prefix returns the key prefix the registry lives under.
func (s *Store) Prefix() string { return s.prefix }

// Keys; see the package doc.

func (s *Store) key(parts ...string) string { return s.prefix + "/" + strings.Join(parts, "/") }

// versionKey is v's key segment: three zero-padded 10-digit numbers, so the
// byte order of keys is semver order and a major's versions share a prefix.
func versionKey(v model.Version) string {
	return fmt.Sprintf("%010d.%010d.%010d", v.Major, v.Minor, v.Patch)
}

func majorKey(major int) string { return fmt.Sprintf("%010d", major) }

func seqKey(seq uint64) string { return fmt.Sprintf("%020d", seq) }

// keyVersion decodes the version segment at the end of key.
func keyVersion(key string) (model.Version, error) {
	seg := key[strings.LastIndexByte(key, '/')+1:]
	parts := strings.Split(seg, ".")
	var n [3]int
	if len(parts) != 3 {
		return model.Version{}, fmt.Errorf("%w: version key %q is not major.minor.patch", model.ErrInvalidModel, key)
	}
	for i, p := range parts {
		x, err := strconv.ParseUint(p, 10, 32)
		if err != nil || len(p) != 10 {
			return model.Version{}, fmt.Errorf("%w: version key %q is not three 10-digit numbers", model.ErrInvalidModel, key)
		}
		n[i] = int(x)
	}
	return model.Version{Major: n[0], Minor: n[1], Patch: n[2]}, nil
}

// checkVersion refuses versions that have no key, as package registry does.
func checkVersion(v model.Version) error {
	for _, n := range [3]int{v.Major, v.Minor, v.Patch} {
		if n < 0 || int64(n) > math.MaxUint32 {
			return fmt.Errorf("%w %s: numbers must be in [0, %d]", model.ErrInvalidVersion, v, uint32(math.MaxUint32))
		}
	}
	return nil
}

// decodeManifest decodes a stored manifest and checks it is the version its
// key says.
func decodeManifest(kv *mvccpb.KeyValue) (*model.Manifest, error) {
	kver, err := keyVersion(string(kv.Key))
	if err != nil {
		return nil, err
	}
	var m model.Manifest
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		return nil, fmt.Errorf("%w: stored manifest of %s does not decode: %v", model.ErrInvalidModel, kver, err)
	}
	if m.Version != kver {
		return nil, fmt.Errorf("%w: stored manifest under key %s says version %s", model.ErrInvalidModel, kver, m.Version)
	}
	return &m, nil
}

// ctx returns the context of one call.
func (s *Store) ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), s.timeout)
}

// read runs ops in one read-only transaction: every response is of the
// same revision, which it returns with them.
func (s *Store) read(ops ...clientv3.Op) ([]*clientv3.GetResponse, int64, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.client.Txn(ctx).Then(ops...).Commit()
	if err != nil {
		return nil, 0, s.storageError(err)
	}
	out := make([]*clientv3.GetResponse, len(resp.Responses))
	for i, r := range resp.Responses {
		out[i] = (*clientv3.GetResponse)(r.GetResponseRange())
	}
	return out, resp.Header.Revision, nil
}

// snapshot is what a change read, at one revision, and the comparisons
// that hold while nobody changed it.
type snapshot struct {
	rev    int64
	keys   map[string]*mvccpb.KeyValue   // single keys read; nil value: absent
	ranges map[string][]*mvccpb.KeyValue // prefixes read, ascending by key
	guards []clientv3.Cmp
}

// value returns the value of key (read as a single key), nil when absent.
func (sn *snapshot) value(key string) []byte {
	if kv := sn.keys[key]; kv != nil {
		return kv.Value
	}
	return nil
}

// take reads keys and prefixes in one transaction and builds the guards:
// each key's ModRevision as read (or still absent), and no key under each
// prefix modified or created after the read. Deletions under a prefix are
// not seen by such a guard; every deletion of the registry appends an event
// and so changes meta/history_seq, which every change reads as a key.
func (s *Store) take(keys, prefixes []string) (*snapshot, error) {
	var ops []clientv3.Op
	for _, k := range keys {
		ops = append(ops, clientv3.OpGet(k))
	}
	for _, p := range prefixes {
		ops = append(ops, clientv3.OpGet(p, clientv3.WithPrefix()))
	}
	resps, rev, err := s.read(ops...)
	if err != nil {
		return nil, err
	}
	sn := &snapshot{rev: rev, keys: map[string]*mvccpb.KeyValue{}, ranges: map[string][]*mvccpb.KeyValue{}}
	for i, k := range keys {
		var kv *mvccpb.KeyValue
		if len(resps[i].Kvs) > 0 {
			kv = resps[i].Kvs[0]
			sn.guards = append(sn.guards, clientv3.Compare(clientv3.ModRevision(k), "=", kv.ModRevision))
		} else {
			sn.guards = append(sn.guards, clientv3.Compare(clientv3.CreateRevision(k), "=", 0))
		}
		sn.keys[k] = kv
	}
	for i, p := range prefixes {
		sn.ranges[p] = resps[len(keys)+i].Kvs
		sn.guards = append(sn.guards, clientv3.Compare(clientv3.ModRevision(p), "<", rev+1).WithPrefix())
	}
	return sn, nil
}

// plan computes a change's writes from what it read; an error ends the
// change without a retry.
type plan func(sn *snapshot) ([]clientv3.Op, error)

// change reads keys and prefixes, lets compute decide the writes, and
// commits them in one transaction guarded by the snapshot: when another
// replica changed anything read in between, nothing is written and the
// change is recomputed from a fresh read, at most MaxAttempts times. An
// error of compute ends it at once.
func (s *Store) change(keys, prefixes []string, compute plan) error {
	for attempt := 1; ; attempt++ {
		sn, err := s.take(keys, prefixes)
		if err != nil {
			return err
		}
		ops, err := compute(sn)
		if err != nil {
			return err
		}
		ctx, cancel := s.ctx()
		resp, err := s.client.Txn(ctx).If(sn.guards...).Then(ops...).Commit()
		cancel()
		if err != nil {
			return s.storageError(err)
		}
		if resp.Succeeded {
			return nil
		}
		if attempt == MaxAttempts {
			return fmt.Errorf("%w: other replicas changed the registry during each of %d attempts; nothing changed, retry", model.ErrConcurrentChange, MaxAttempts)
		}
		// Back off a little, with jitter, so racing replicas spread out.
		time.Sleep(time.Duration(attempt) * time.Duration(1+rand.IntN(4)) * time.Millisecond)
	}
}

// appendEvents gives evs the sequence numbers after the snapshot's
// meta/history_seq and returns the writes that store them, advance the
// sequence and delete the events beyond the newest s.historyKeep.
func (s *Store) appendEvents(sn *snapshot, evs ...*model.Event) ([]clientv3.Op, error) {
	seqK := s.key("meta", "history_seq")
	var seq uint64
	if b := sn.value(seqK); b != nil {
		n, err := strconv.ParseUint(string(b), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("stored history sequence %q does not decode", b)
		}
		seq = n
	}
	var ops []clientv3.Op
	for _, ev := range evs {
		seq++
		ev.Seq = seq
		b, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		ops = append(ops, clientv3.OpPut(s.key("history", seqKey(seq)), string(b)))
	}
	ops = append(ops, clientv3.OpPut(seqK, strconv.FormatUint(seq, 10)))
	if seq > s.historyKeep {
		// Events are numbered without gaps: one range delete trims.
		from := s.key("history") + "/"
		ops = append(ops, clientv3.OpDelete(from, clientv3.WithRange(s.key("history", seqKey(seq-s.historyKeep+1)))))
	}
	return ops, nil
}

// storageError maps etcd's out-of-space alarm to model.ErrStorageFull and
// names the endpoints of errors that say a member could not be reached.
func (s *Store) storageError(err error) error {
	switch {
	case errors.Is(err, rpctypes.ErrNoSpace):
		return fmt.Errorf("%w: etcd at %s is out of space (alarm NOSPACE): compact and defragment it, or raise --quota-backend-bytes: %w", model.ErrStorageFull, s.endpoints, err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("etcd at %s did not answer within %s: %w", s.endpoints, s.timeout, err)
	}
	return err
}

// Check verifies the registry's invariants at one revision: every version
// has both bytes and a decodable manifest of the same version, each active
// version is stored under its major and registered, each rollback index
// names registered versions only, every event decodes under its sequence
// number and none is beyond meta/history_seq; and that the cluster raises
// no alarm (NOSPACE, CORRUPT). It does not hash model bytes (Load does).
func (s *Store) Check() error {
	resps, _, err := s.read(
		clientv3.OpGet(s.key("models")+"/", clientv3.WithPrefix(), clientv3.WithKeysOnly()),
		clientv3.OpGet(s.key("manifests")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(s.key("active")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(s.key("lineage")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(s.key("history")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(s.key("meta", "layout")),
		clientv3.OpGet(s.key("meta", "history_seq")),
	)
	if err != nil {
		return fmt.Errorf("etcdstore: check %s%s: %w", s.endpoints, s.prefix, err)
	}
	models, manifests, active, lineages, history, layout, seqKV := resps[0], resps[1], resps[2], resps[3], resps[4], resps[5], resps[6]
	var errs []error
	registered := map[string]bool{}
	for _, kv := range models.Kvs {
		if v, err := keyVersion(string(kv.Key)); err != nil {
			errs = append(errs, err)
		} else {
			registered[v.String()] = true
		}
	}
	described := map[string]bool{}
	for _, kv := range manifests.Kvs {
		m, err := decodeManifest(kv)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		described[m.Version.String()] = true
		if !registered[m.Version.String()] {
			errs = append(errs, fmt.Errorf("manifest of %s has no model bytes", m.Version))
		}
	}
	for v := range registered {
		if !described[v] {
			errs = append(errs, fmt.Errorf("model bytes of %s have no manifest", v))
		}
	}
	if len(layout.Kvs) == 0 || string(layout.Kvs[0].Value) != strconv.Itoa(Layout) {
		errs = append(errs, fmt.Errorf("layout marker missing or not %d", Layout))
	}
	for _, kv := range active.Kvs {
		major := string(kv.Key)[strings.LastIndexByte(string(kv.Key), '/')+1:]
		v, err := model.ParseVersion(string(kv.Value))
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("active version of major %s: %w", major, err))
		case majorKey(v.Major) != major:
			errs = append(errs, fmt.Errorf("active version %s stored under major %s", v, major))
		case !registered[v.String()]:
			errs = append(errs, fmt.Errorf("active version %s is not registered", v))
		}
	}
	for _, kv := range lineages.Kvs {
		var l model.Lineage
		if err := json.Unmarshal(kv.Value, &l); err != nil {
			errs = append(errs, fmt.Errorf("rollback index %s does not decode: %w", kv.Key, err))
			continue
		}
		for _, v := range l.Stack {
			if !registered[v] {
				errs = append(errs, fmt.Errorf("rollback index %s names %s, which is not registered", kv.Key, v))
			}
		}
	}
	var last uint64
	if len(seqKV.Kvs) > 0 {
		if last, err = strconv.ParseUint(string(seqKV.Kvs[0].Value), 10, 64); err != nil {
			errs = append(errs, fmt.Errorf("history sequence %q does not decode", seqKV.Kvs[0].Value))
		}
	}
	for _, kv := range history.Kvs {
		var ev model.Event
		if err := json.Unmarshal(kv.Value, &ev); err != nil || string(kv.Key) != s.key("history", seqKey(ev.Seq)) || ev.Seq > last {
			errs = append(errs, fmt.Errorf("history key %s: undecodable, mismatched or beyond the sequence %d", kv.Key, last))
		}
	}
	ctx, cancel := s.ctx()
	defer cancel()
	alarms, err := s.client.AlarmList(ctx)
	if err != nil {
		errs = append(errs, fmt.Errorf("alarm list: %w", err))
	} else {
		for _, a := range alarms.Alarms {
			errs = append(errs, fmt.Errorf("member %x raises alarm %s", a.MemberID, a.Alarm))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("etcdstore: check %s%s: %w", s.endpoints, s.prefix, errors.Join(errs...))
	}
	return nil
}
