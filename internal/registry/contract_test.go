package registry_test

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
	"recommendation-api/internal/registry"
	"recommendation-api/internal/registry/registrytest"
)

// TestContract runs the contract every model.Registry keeps against a
// bbolt file in a temporary directory.
func TestContract(t *testing.T) {
	t.Parallel()
	var paths sync.Map // model.Registry → its file
	open := func(t *testing.T, o registrytest.Options) model.Registry {
		s, path := openStore(t, registry.Options{Keep: o.Keep, HistoryKeep: o.HistoryKeep, Now: o.Now})
		paths.Store(model.Registry(s), path)
		return s
	}
	registrytest.Run(t, registrytest.Subject{
		Open: open,
		Corrupt: func(t *testing.T, r model.Registry, v model.Version) model.Registry {
			p, _ := paths.Load(r)
			path := p.(string)
			if err := r.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				b := tx.Bucket(registry.BucketModels)
				k := registry.VersionKey(v)
				val := bytes.Clone(b.Get(k))
				val[len(val)/2] ^= 0x01
				return b.Put(k, val)
			})
			if cerr := db.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				t.Fatalf("tampering: %v", err)
			}
			s, err := registry.Open(path, registry.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	})
}
