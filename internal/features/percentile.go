package features

import (
	"math"
	"math/bits"
	"slices"
)

// Rank returns the 0-based index, in an ascending series of n values, of its
// nearest-rank p-th percentile: ⌈p/100·n⌉ − 1, clamped to [0, n−1]. For
// n = 576, p = 95 that is 547 (the 548th smallest).
func Rank(n int, p float64) int {
	k := int(math.Ceil(p*float64(n)/100)) - 1
	return max(0, min(k, n-1))
}

// Percentile returns the nearest-rank p-th percentile of an ascending series
// (see Rank), or NaN if it is empty.
func Percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	return sorted[Rank(len(sorted), p)]
}

// Percentiles writes to out[i] the nearest-rank ps[i]-th percentile of
// series (see Rank), leaving series unchanged; out must be at least as long
// as ps. An empty series gives NaN. The answers equal Percentile's on a
// sorted copy, NaN and infinities included (NaN sorts first), but cost O(n)
// rather than a sort: see selectRanks. It allocates nothing once s has grown
// to the series length.
func (s *Scratch) Percentiles(series []float64, ps []float64, out []float64) {
	lo, hi, finite := math.Inf(1), math.Inf(-1), true
	for _, x := range series {
		if x < lo {
			lo = x
		}
		if x > hi {
			hi = x
		}
		finite = finite && x-x == 0 // false for NaN and ±Inf
	}
	s.selectRanks(series, lo, hi, finite, ps, out)
}

// selectBuckets is the number of value ranges selectRanks counts in.
const selectBuckets = 256

// selectRanks is Percentiles for a series whose minimum, maximum and
// finiteness are known.
//
// Percentiles are order statistics, found here by distribution: one pass
// counts the values into 256 equal ranges between the minimum and the
// maximum, a second copies only the values of the ranges holding the
// wanted ranks into the scratch buffer, and a quickselect finishes inside
// each of those (usually a few values). That reads the series three times
// without hard-to-predict branches; a quickselect over the whole series is
// about three times slower on usage data, a sort about ten times.
func (s *Scratch) selectRanks(series []float64, lo, hi float64, finite bool, ps []float64, out []float64) {
	n := len(series)
	if n == 0 {
		for i := range ps {
			out[i] = math.NaN()
		}
		return
	}
	if lo == hi && finite {
		for i := range ps {
			out[i] = lo
		}
		return
	}
	scale := selectBuckets / (hi - lo)
	if !finite || !(scale <= math.MaxFloat64) || n < 2*selectBuckets/8 {
		// Non-finite values, a range too narrow to divide, or too few
		// values to be worth counting.
		buf := s.grow(n)
		copy(buf, series)
		if !finite {
			slices.Sort(buf)
			for i, p := range ps {
				out[i] = Percentile(buf, p)
			}
			return
		}
		lo := 0 // buf[:lo] holds the lo smallest values
		for i, p := range ps {
			k := Rank(n, p)
			if k >= lo {
				selectKth(buf[lo:], k-lo)
				lo = k
			} else {
				selectKth(buf[:lo], k)
			}
			out[i] = buf[k]
		}
		return
	}

	var count [selectBuckets + 1]int32
	countBuckets(series, lo, scale, &count)

	// Which bucket holds each wanted rank. Each wanted bucket gets a region
	// of the scratch buffer to gather its values in (regions[0] is unused:
	// slot 0 means unwanted).
	type region struct{ bucket, before, start, fill int }
	var regions [9]region
	var slot [selectBuckets + 1]uint8 // region of each bucket, 0 = unwanted
	var where [16]uint8               // region of each of the first 16 ps
	nr := 1
	for i, p := range ps {
		k := Rank(n, p)
		b, before := bucketOf(&count, n, k)
		if i >= len(where) || (slot[b] == 0 && nr == len(regions)) {
			out[i] = s.rankDirect(series, k) // rare: out of regions
			continue
		}
		if slot[b] == 0 {
			regions[nr] = region{bucket: b, before: before}
			slot[b] = uint8(nr)
			nr++
		}
		where[i] = slot[b]
	}
	slot[selectBuckets] = slot[selectBuckets-1]
	size := 0
	for j := 1; j < nr; j++ {
		regions[j].start, regions[j].fill = size, size
		size += int(count[regions[j].bucket])
	}

	buf := s.grow(size)
	for _, x := range series {
		if j := slot[int((x-lo)*scale)]; j != 0 {
			r := &regions[j]
			buf[r.fill] = x
			r.fill++
		}
	}

	for i, p := range ps[:min(len(ps), len(where))] {
		if where[i] != 0 {
			r := regions[where[i]]
			out[i] = s.kth(buf[r.start:r.fill], Rank(n, p)-r.before)
		}
	}
}

// countBuckets counts x into 256 equal ranges of width 1/scale from lo.
// The maximum lands in bucket 256 (rounding puts a value at most a hair
// across a boundary); bucket 256 is then counted as part of 255.
func countBuckets(x []float64, lo, scale float64, count *[selectBuckets + 1]int32) {
	for _, v := range x {
		count[int((v-lo)*scale)]++
	}
	count[selectBuckets-1] += count[selectBuckets]
	count[selectBuckets] = 0
}

// bucketOf returns the bucket holding the k-th smallest of n counted values
// and the number of values in the buckets below it, searching from the
// nearer end.
func bucketOf(count *[selectBuckets + 1]int32, n, k int) (b, before int) {
	if k < n/2 {
		for before+int(count[b]) <= k {
			before += int(count[b])
			b++
		}
		return b, before
	}
	after := 0 // values in the buckets above b
	b = selectBuckets - 1
	for n-after-int(count[b]) > k {
		after += int(count[b])
		b--
	}
	return b, n - after - int(count[b])
}

// kth returns the k-th smallest of x (a region of s.buf), which it may
// reorder. A large region (a skewed series: an idle cron job's samples all
// in the lowest range) is narrowed by further rounds of counting, in a copy
// in s.aux so that other regions' ranks stay answerable.
func (s *Scratch) kth(x []float64, k int) float64 {
	const small = 128
	if len(x) > small {
		if cap(s.aux) < len(x) {
			s.aux = make([]float64, len(x))
		}
		aux := s.aux[:len(x)]
		copy(aux, x)
		x = aux
	}
	for len(x) > small {
		lo, hi := x[0], x[0]
		for _, v := range x {
			if v < lo {
				lo = v
			}
			if v > hi {
				hi = v
			}
		}
		if lo == hi {
			return lo
		}
		scale := selectBuckets / (hi - lo)
		if !(scale <= math.MaxFloat64) {
			break
		}
		var count [selectBuckets + 1]int32
		countBuckets(x, lo, scale, &count)
		b, before := bucketOf(&count, len(x), k)
		// Keep bucket b's values, filtering in place without branches:
		// every value is written at w, and w advances only for a keeper.
		w := 0
		for _, v := range x {
			i := int((v - lo) * scale)
			i -= i >> 8 // bucket 256 is part of 255
			d := uint(i ^ b)
			x[w] = v
			w += int(1 - (d|-d)>>(bits.UintSize-1)) // 1 if d == 0, else 0
		}
		x, k = x[:w], k-before
	}
	selectKth(x, k)
	return x[k]
}

// rankDirect returns the k-th smallest of series by quickselect on a copy
// (rarely used: only for more than 8 distinct buckets or 16 percentiles).
func (s *Scratch) rankDirect(series []float64, k int) float64 {
	n := len(series)
	if cap(s.aux) < n {
		s.aux = make([]float64, n)
	}
	aux := s.aux[:n]
	copy(aux, series)
	selectKth(aux, k)
	return aux[k]
}

// selectKth reorders a so that a[k] is the value a sorted copy would hold
// there, everything before it ≤ a[k] and everything after it ≥ a[k]. It is
// Hoare's quickselect; the pivot is the median of three samples at
// pseudo-random positions, since usage series are often periodic (a cron
// job every hour) and fixed positions would then keep picking bad pivots.
// Should the partitions still be unlucky it falls back to sorting, so the
// worst case is O(n log n). a must hold no NaN.
func selectKth(a []float64, k int) {
	lo, hi := 0, len(a)-1
	budget := 2*bits.Len(uint(len(a))) + 4
	state := uint64(len(a))*0x9e3779b97f4a7c15 | 1 // xorshift state: deterministic
	for hi > lo {
		if hi-lo < 16 || budget == 0 {
			slices.Sort(a[lo : hi+1])
			return
		}
		budget--
		state ^= state << 13
		state ^= state >> 7
		state ^= state << 17
		span := uint64(hi - lo + 1)
		at := func(shift uint) float64 { return a[lo+int((state>>shift&0xffff)*span>>16)] }
		p := median3(at(0), at(16), at(32))
		i, j := lo, hi
		for i <= j {
			for a[i] < p {
				i++
			}
			for a[j] > p {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		// Now a[lo..j] ≤ p, a[i..hi] ≥ p and anything between equals p.
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

func median3(a, b, c float64) float64 {
	if a > b {
		a, b = b, a
	}
	if b > c {
		b = c
	}
	if a > b {
		return a
	}
	return b
}
