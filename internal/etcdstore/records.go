package etcdstore

import (
	"bytes"
	"fmt"
	"net/url"

	clientv3 "go.etcd.io/etcd/client/v3"

	"recommendation-api/internal/model"
)

// Records live under <prefix>/records/<bucket>/<key>, the bucket name path-
// escaped (so it holds no "/" and bucket "a/b" is not bucket "a" with a
// key "b/..."), the key as it is (so ListRecords gives byte order).

func (s *Store) recordPrefix(bucket string) string {
	return s.key("records", url.PathEscape(bucket)) + "/"
}

// PutRecord stores value under key in record bucket bucket, replacing any
// previous value. bucket and key must not be empty.
func (s *Store) PutRecord(bucket, key string, value []byte) error {
	if bucket == "" || key == "" {
		return fmt.Errorf("etcdstore: put record %q/%q: bucket and key must not be empty", bucket, key)
	}
	ctx, cancel := s.ctx()
	defer cancel()
	if _, err := s.client.Put(ctx, s.recordPrefix(bucket)+key, string(value)); err != nil {
		return fmt.Errorf("etcdstore: put record %s/%s: %w", bucket, key, s.storageError(err))
	}
	return nil
}

// GetRecord returns the value under key in record bucket bucket, or an
// error wrapping model.ErrRecordNotFound naming both when there is none.
func (s *Store) GetRecord(bucket, key string) ([]byte, error) {
	err := model.ErrRecordNotFound
	var value []byte
	if bucket != "" && key != "" {
		ctx, cancel := s.ctx()
		defer cancel()
		resp, gerr := s.client.Get(ctx, s.recordPrefix(bucket)+key)
		switch {
		case gerr != nil:
			err = s.storageError(gerr)
		case len(resp.Kvs) > 0:
			value, err = bytes.Clone(resp.Kvs[0].Value), nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("etcdstore: get record %s/%s: %w", bucket, key, err)
	}
	if value == nil {
		value = []byte{}
	}
	return value, nil
}

// ListRecords returns every value in record bucket bucket in key (byte)
// order; none when the bucket has none.
func (s *Store) ListRecords(bucket string) ([][]byte, error) {
	ctx, cancel := s.ctx()
	defer cancel()
	resp, err := s.client.Get(ctx, s.recordPrefix(bucket), clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("etcdstore: list records %s: %w", bucket, s.storageError(err))
	}
	var values [][]byte
	for _, kv := range resp.Kvs {
		values = append(values, bytes.Clone(kv.Value))
	}
	return values, nil
}
