package registry

// Internals for the tests in package registry_test, which open the bbolt
// file directly to damage it.
var (
	VersionKey   = versionKey
	BucketModels = bucketModels
)
