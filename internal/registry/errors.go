package registry

import "errors"

// ErrRecordNotFound is returned (wrapped, naming the bucket and key) by
// GetRecord when no record has that key. The version operations return the
// sentinels of package model instead (model.ErrVersionNotFound, ...).
var ErrRecordNotFound = errors.New("record not found")
