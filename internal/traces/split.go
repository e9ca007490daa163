package traces

import (
	"hash/fnv"
)

// HoldoutFraction is the share of containers held out from training for
// evaluation.
const HoldoutFraction = 0.5

// holdoutSalt fixes the split; changing it reshuffles which containers are
// held out, so models trained before no longer have an untouched test set.
const holdoutSalt = "recommendation-api/holdout/v1\x00"

// HeldOut reports whether the container named id belongs to the held-out
// (test) set: the FNV-1a 64-bit hash of a fixed salt and the id, as a
// fraction of 2^64, is below HoldoutFraction. It depends on the id alone,
// so a container is on the same side whichever files, in whichever order,
// it is read with, and training data (Dataset) and evaluation (Evaluate)
// agree without sharing state.
func HeldOut(id string) bool {
	h := fnv.New64a()
	h.Write([]byte(holdoutSalt))
	h.Write([]byte(id))
	return float64(h.Sum64()) < HoldoutFraction*(1<<64)
}

// SplitByContainer partitions series by container into the training set
// and the held-out set (HeldOut), keeping their order. No container ID is
// in both, and together they are all of series.
func SplitByContainer(series []*Series) (train, test []*Series) {
	for _, s := range series {
		if HeldOut(s.ID) {
			test = append(test, s)
		} else {
			train = append(train, s)
		}
	}
	return train, test
}
