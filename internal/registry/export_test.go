package registry

import (
	"go.etcd.io/bbolt"

	"recommendation-api/internal/model"
)

// Internals for the tests in package registry_test, which open the bbolt
// file directly to damage it.
var (
	VersionKey   = versionKey
	BucketModels = bucketModels
	StorageError = storageError
)

// SetUpgradeHook makes the layout upgrade call f just before it commits
// (nil removes it); a test uses it to abort the upgrade midway.
func SetUpgradeHook(f func() error) { upgradeHook = f }

// FillHistory appends n alternating activations of a and b (both
// registered) in one transaction, as SetActive would record them, so a
// benchmark can build a long history without n fsyncs.
func FillHistory(s *Store, n int, a, b string) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		for i := 0; i < n; i++ {
			from, to := a, b
			if i%2 == 1 {
				from, to = b, a
			}
			v := model.MustParseVersion(to)
			if err := tx.Bucket(bucketActive).Put(majorKey(v.Major), []byte(to)); err != nil {
				return err
			}
			l, err := lineageIn(tx, v.Major)
			if err != nil {
				return err
			}
			l.Record(model.ActionActivate, from, to)
			if err := putLineage(tx, v.Major, l); err != nil {
				return err
			}
			if err := s.appendEvent(tx, &Event{Action: model.ActionActivate, Major: v.Major, From: from, To: to, Actor: "bench"}); err != nil {
				return err
			}
		}
		return nil
	})
}
