package registry

import (
	"bytes"
	"errors"
	"fmt"

	"go.etcd.io/bbolt"
)

// Records are small values of later features (training jobs, ...) kept in
// the same file as the versions: record bucket b is a nested bucket of the
// top-level "records" bucket, so its name never collides with the
// registry's own buckets.

// PutRecord stores value under key in record bucket bucket, creating the
// bucket if needed and replacing any previous value. bucket and key must not
// be empty. value is copied by the write; the caller may reuse it afterwards.
// A write the file system refuses (no space, read-only) wraps
// model.ErrStorageFull or model.ErrStorageReadOnly naming the directory, as
// Register's does.
func (s *Store) PutRecord(bucket, key string, value []byte) error {
	if bucket == "" || key == "" {
		return fmt.Errorf("registry: put record %q/%q: bucket and key must not be empty", bucket, key)
	}
	err := s.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.Bucket(bucketRecords).CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			return err
		}
		return b.Put([]byte(key), value)
	})
	if err != nil {
		return fmt.Errorf("registry: put record %s/%s: %w", bucket, key, storageError(s.path, err))
	}
	return nil
}

// GetRecord returns a copy of the value under key in record bucket bucket,
// or an error wrapping ErrRecordNotFound naming both when there is none.
func (s *Store) GetRecord(bucket, key string) ([]byte, error) {
	var value []byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		var v []byte
		if b := tx.Bucket(bucketRecords).Bucket([]byte(bucket)); b != nil && key != "" {
			v = b.Get([]byte(key))
		}
		if v == nil {
			return ErrRecordNotFound
		}
		value = bytes.Clone(v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("registry: get record %s/%s: %w", bucket, key, err)
	}
	return value, nil
}

// ListRecords returns copies of every value in record bucket bucket in key
// (byte) order; none when the bucket does not exist.
func (s *Store) ListRecords(bucket string) ([][]byte, error) {
	var values [][]byte
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketRecords).Bucket([]byte(bucket))
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, v []byte) error {
			if v == nil {
				return errors.New("nested bucket where a record was expected")
			}
			values = append(values, bytes.Clone(v))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("registry: list records %s: %w", bucket, err)
	}
	return values, nil
}
