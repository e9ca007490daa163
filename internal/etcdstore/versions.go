package etcdstore

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"recommendation-api/internal/model"
)

// Register is RegisterWith with only an actor.
func (s *Store) Register(b []byte, m *model.Manifest, actor string) ([]model.Version, error) {
	return s.RegisterWith(b, m, model.RegisterOptions{Actor: actor})
}

// RegisterWith stores the model bytes b and their manifest m as a new
// version (see model.Registry). Beyond the checks of every registry, it
// refuses bytes above MaxModelBytes and manifests above MaxManifestBytes
// with model.ErrInvalidModel naming the limit.
//
// One transaction writes the bytes, the manifest, the "register" event and
// the retention of the version's major (deletions, "prune" events, the
// rollback index), guarded by the revisions of everything it read: of two
// replicas registering the same version at once, one stores it and the
// other gets model.ErrVersionExists.
func (s *Store) RegisterWith(b []byte, m *model.Manifest, opts model.RegisterOptions) (pruned []model.Version, err error) {
	if m == nil {
		return nil, fmt.Errorf("etcdstore: register: %w: nil manifest", model.ErrInvalidModel)
	}
	v := m.Version
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("etcdstore: register %s: %w", v, err)
	}
	if err := checkVersion(v); err != nil {
		return nil, fmt.Errorf("etcdstore: register: %w", err)
	}
	if len(b) > MaxModelBytes {
		return nil, fmt.Errorf("etcdstore: register %s: %w: model bytes exceed the etcd registry's limit of %d bytes (%d KiB)",
			v, model.ErrInvalidModel, MaxModelBytes, MaxModelBytes>>10)
	}
	if err := m.VerifyBytes(b); err != nil {
		return nil, fmt.Errorf("etcdstore: register %s: %w", v, err)
	}
	mj, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("etcdstore: register %s: %w: manifest does not encode: %v", v, model.ErrInvalidModel, err)
	}
	if len(mj) > MaxManifestBytes {
		return nil, fmt.Errorf("etcdstore: register %s: %w: manifest exceeds the etcd registry's limit of %d bytes (%d KiB)",
			v, model.ErrInvalidModel, MaxManifestBytes, MaxManifestBytes>>10)
	}
	now := s.now().UTC().Round(0)
	modelK, manifestK := s.key("models", versionKey(v)), s.key("manifests", versionKey(v))
	majorP := s.key("models", majorKey(v.Major)) + "."
	activeP, lineageP := s.key("active")+"/", s.key("lineage")+"/"
	lineageK := s.key("lineage", majorKey(v.Major))

	err = s.change([]string{modelK, manifestK, s.key("meta", "history_seq")}, []string{majorP, activeP, lineageP}, func(sn *snapshot) ([]clientv3.Op, error) {
		pruned = nil
		if sn.keys[modelK] != nil || sn.keys[manifestK] != nil {
			return nil, model.ErrVersionExists
		}
		var same []model.Version
		for _, kv := range sn.ranges[majorP] {
			if sv, err := keyVersion(string(kv.Key)); err == nil {
				same = append(same, sv)
			}
		}
		if len(same) >= s.keep && v.Compare(same[len(same)-s.keep]) < 0 {
			msg := fmt.Sprintf("register %s: retention keeps the newest %d versions of major %d (the oldest kept is %s), so %s would be deleted at once; register a newer version",
				v, s.keep, v.Major, same[len(same)-s.keep], v)
			return nil, model.Public(fmt.Errorf("%w: %s", model.ErrVersionTooOld, msg), msg)
		}
		all := append(slices.Clone(same), v)
		slices.SortFunc(all, model.Version.Compare)
		events := []*model.Event{{Time: now, Action: model.ActionRegister, Major: v.Major, To: v.String(), Actor: opts.Actor, Reason: opts.Reason}}
		ops := []clientv3.Op{clientv3.OpPut(modelK, string(b)), clientv3.OpPut(manifestK, string(mj))}
		if len(all) > s.keep {
			protected, lineages, err := protectedIn(sn, activeP, lineageP, opts.Protect)
			if err != nil {
				return nil, err
			}
			gone := map[string]bool{}
			for _, old := range all[:len(all)-s.keep] {
				if protected[old] {
					continue
				}
				ops = append(ops, clientv3.OpDelete(s.key("models", versionKey(old))), clientv3.OpDelete(s.key("manifests", versionKey(old))))
				events = append(events, &model.Event{Time: now, Action: model.ActionPrune, Major: v.Major, From: old.String(), Actor: opts.Actor,
					Reason: fmt.Sprintf("retention keeps the newest %d versions of each major, their active versions, rollback targets and loaded versions", s.keep)})
				gone[old.String()] = true
				pruned = append(pruned, old)
			}
			if l, ok := lineages[lineageK]; ok && len(gone) > 0 {
				l.Drop(func(v string) bool { return gone[v] })
				lb, err := json.Marshal(l)
				if err != nil {
					return nil, err
				}
				ops = append(ops, clientv3.OpPut(lineageK, string(lb)))
			}
		}
		evOps, err := s.appendEvents(sn, events...)
		if err != nil {
			return nil, err
		}
		return append(ops, evOps...), nil
	})
	if err != nil {
		return nil, fmt.Errorf("etcdstore: register %s: %w", v, err)
	}
	return pruned, nil
}

// protectedIn returns the versions retention must keep, from a snapshot of
// the active pointers and rollback indexes of every major: each active
// version and rollback target, plus extra. It also returns the decoded
// rollback indexes by key.
func protectedIn(sn *snapshot, activeP, lineageP string, extra []model.Version) (map[model.Version]bool, map[string]*model.Lineage, error) {
	p := map[model.Version]bool{}
	for _, v := range extra {
		p[v] = true
	}
	lineages := map[string]*model.Lineage{}
	for _, kv := range sn.ranges[lineageP] {
		l := &model.Lineage{}
		if err := json.Unmarshal(kv.Value, l); err != nil {
			return nil, nil, fmt.Errorf("rollback index %s does not decode: %w", kv.Key, err)
		}
		lineages[string(kv.Key)] = l
	}
	for _, kv := range sn.ranges[activeP] {
		cur, err := model.ParseVersion(string(kv.Value))
		if err != nil {
			return nil, nil, fmt.Errorf("stored active version %s: %w", kv.Key, err)
		}
		p[cur] = true
		l := lineages[lineageP+strings.TrimPrefix(string(kv.Key), activeP)]
		if l == nil {
			continue
		}
		if t := l.Target(cur.String()); t != "" {
			tv, err := model.ParseVersion(t)
			if err != nil {
				return nil, nil, fmt.Errorf("rollback index of %s: %w", kv.Key, err)
			}
			p[tv] = true
		}
	}
	return p, lineages, nil
}

// Manifest returns the manifest of version v, or an error wrapping
// model.ErrVersionNotFound naming v.
func (s *Store) Manifest(v model.Version) (*model.Manifest, error) {
	if err := checkVersion(v); err != nil {
		return nil, fmt.Errorf("etcdstore: manifest: %w", err)
	}
	resps, _, err := s.read(clientv3.OpGet(s.key("manifests", versionKey(v))))
	if err == nil && len(resps[0].Kvs) == 0 {
		err = model.ErrVersionNotFound
	}
	var m *model.Manifest
	if err == nil {
		m, err = decodeManifest(resps[0].Kvs[0])
	}
	if err != nil {
		return nil, fmt.Errorf("etcdstore: manifest %s: %w", v, err)
	}
	return m, nil
}

// Load returns the bytes of version v and its manifest, read at one
// revision. It hashes the bytes on every call: when they do not match the
// manifest's sha256 and size it returns an error wrapping
// model.ErrChecksumMismatch naming v (and no bytes).
func (s *Store) Load(v model.Version) ([]byte, *model.Manifest, error) {
	if err := checkVersion(v); err != nil {
		return nil, nil, fmt.Errorf("etcdstore: load: %w", err)
	}
	resps, _, err := s.read(clientv3.OpGet(s.key("manifests", versionKey(v))), clientv3.OpGet(s.key("models", versionKey(v))))
	var (
		m *model.Manifest
		b []byte
	)
	switch {
	case err != nil:
	case len(resps[0].Kvs) == 0:
		err = model.ErrVersionNotFound
	case len(resps[1].Kvs) == 0:
		err = fmt.Errorf("%w: a manifest but no bytes", model.ErrVersionNotFound)
	default:
		if m, err = decodeManifest(resps[0].Kvs[0]); err == nil {
			b = bytes.Clone(resps[1].Kvs[0].Value)
			err = m.VerifyBytes(b)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("etcdstore: load %s: %w", v, err)
	}
	return b, m, nil
}

// List returns every registered version, ascending by semver, marking the
// active one of each major, read at one revision.
func (s *Store) List() ([]model.Entry, error) {
	resps, _, err := s.read(
		clientv3.OpGet(s.key("manifests")+"/", clientv3.WithPrefix()),
		clientv3.OpGet(s.key("active")+"/", clientv3.WithPrefix()),
	)
	if err != nil {
		return nil, fmt.Errorf("etcdstore: list: %w", err)
	}
	actives, err := decodeActives(resps[1])
	if err != nil {
		return nil, fmt.Errorf("etcdstore: list: %w", err)
	}
	var list []model.Entry
	for _, kv := range resps[0].Kvs {
		m, err := decodeManifest(kv)
		if err != nil {
			return nil, fmt.Errorf("etcdstore: list: %w", err)
		}
		av, ok := actives[m.Version.Major]
		list = append(list, model.Entry{Manifest: m, Active: ok && av == m.Version})
	}
	return list, nil
}

// Newest returns the highest registered version, or an error wrapping
// model.ErrVersionNotFound when there is none.
func (s *Store) Newest() (model.Version, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.client.Get(ctx, s.key("manifests")+"/", append(clientv3.WithLastKey(), clientv3.WithKeysOnly())...)
	var v model.Version
	switch {
	case err != nil:
		err = s.storageError(err)
	case len(resp.Kvs) == 0:
		err = fmt.Errorf("%w: the registry is empty", model.ErrVersionNotFound)
	default:
		v, err = keyVersion(string(resp.Kvs[0].Key))
	}
	if err != nil {
		return model.Version{}, fmt.Errorf("etcdstore: newest: %w", err)
	}
	return v, nil
}
