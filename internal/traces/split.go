package traces

import (
	"crypto/sha256"
	"encoding/binary"
)

// HoldoutFraction is the share of containers held out from training for
// evaluation.
const HoldoutFraction = 0.5

// holdoutSalt fixes the split; changing it reshuffles which containers are
// held out, so models trained before no longer have an untouched test set.
const holdoutSalt = "recommendation-api/holdout/v1\x00"

// HeldOut reports whether the container named id belongs to the held-out
// (test) set: the first 8 bytes of the SHA-256 of a fixed salt and the id,
// as a fraction of 2^64, are below HoldoutFraction. (A cryptographic hash
// because IDs differ only in their last characters — "1" … "260",
// "web-7d9f-abc" — and a fast hash's high bits barely move with those.) It depends on the id alone,
// so a container is on the same side whichever files, in whichever order,
// it is read with, and training data (Dataset) and evaluation (Evaluate)
// agree without sharing state.
func HeldOut(id string) bool {
	return hashFraction(holdoutSalt, id) < HoldoutFraction
}

// hashFraction maps salt ‖ id to [0, 1): the first 8 bytes of its SHA-256
// as a fraction of 2^64.
func hashFraction(salt, id string) float64 {
	sum := sha256.Sum256([]byte(salt + id))
	return float64(binary.BigEndian.Uint64(sum[:8])) / (1 << 64)
}

// TuningFraction is the share of training containers (those HeldOut leaves
// for training) that Tuning sets aside for choosing training settings.
const TuningFraction = 0.3

// tuningSalt fixes which training containers Tuning sets aside,
// independently of the held-out split.
const tuningSalt = "recommendation-api/tuning/v1\x00"

// Tuning reports whether the container named id is a tuning container: a
// training container (not HeldOut) that generate-data --tuning-holdout
// leaves out of training data as well, so that a model trained without
// them can be scored on them (evaluate --containers tuning) while its
// settings are chosen, and the held-out containers are looked at only once
// they are. Like HeldOut it depends on the id alone, through a hash with
// its own salt: about TuningFraction of the training containers.
func Tuning(id string) bool {
	if HeldOut(id) {
		return false
	}
	return hashFraction(tuningSalt, id) < TuningFraction
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
