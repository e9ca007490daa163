package registry

import "recommendation-api/internal/model"

// ErrRecordNotFound is returned (wrapped, naming the bucket and key) by
// GetRecord when no record has that key. The version operations return the
// sentinels of package model instead (model.ErrVersionNotFound, ...).
var ErrRecordNotFound = model.ErrRecordNotFound
