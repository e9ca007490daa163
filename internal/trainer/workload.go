package trainer

// The usage simulator: one container per sample, five workload types with
// their own dynamics. docs/data.md describes every parameter drawn here.

import (
	"math"
	"math/rand/v2"
	"time"
)

// NumWorkloads is the number of simulated workload types.
const NumWorkloads = 5

// WorkloadNames names the workload types; Dataset.Workload holds indexes into it.
var WorkloadNames = [NumWorkloads]string{"web", "batch", "compute", "database", "cron"}

// Workload type indexes, in WorkloadNames order.
const (
	genWeb = iota
	genBatch
	genCompute
	genDatabase
	genCron
)

const (
	genStep          = 5 * time.Minute
	genStepsPerDay   = int(24 * time.Hour / genStep) // 288
	genStepsPerHour  = int(time.Hour / genStep)      // 12
	genDefaultHist   = 2 * genStepsPerDay            // 48 h
	genDefaultFuture = genStepsPerDay                // 24 h
	genMinSteps      = genStepsPerHour               // 1 h, the shortest window accepted
	genMaxSteps      = 30 * genStepsPerDay           // 30 days
	genNodeCores     = 60.0                          // no container uses more cores than this
	genMiB           = 1 << 20
	genGiB           = 1 << 30
	genMinMem        = genMiB // no working set is smaller
	genMaxDBGrowth   = 3.0    // database memory stops growing at 3× its base
)

// genEpoch is the earliest simulated start time (a Monday); starts spread
// over the following year.
var genEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// genDiurnal[k] is the diurnal activity k steps after the daily peak: 1 at
// the peak, 0 twelve hours away, a raised cosine in between.
var genDiurnal = func() (t [genStepsPerDay]float64) {
	for k := range t {
		t[k] = 0.5 + 0.5*math.Cos(2*math.Pi*float64(k)/float64(genStepsPerDay))
	}
	return t
}()

// genContainer is one simulated container: what was drawn for it.
type genContainer struct {
	kind      int
	cpuBase   float64 // cores: the type's reference load (see docs/data.md)
	memBase   float64 // bytes
	cpuLimit  float64 // cores; 0 = no limit
	ageDays   float64 // age at the end of the history window
	startStep int     // 5-minute steps after genEpoch of the first sample
	tzSteps   int     // local time offset from UTC, in steps
}

// genDraw draws a container of a workload type picked by cum, the
// cumulative normalized Mix.
func genDraw(r *rand.Rand, cum *[NumWorkloads]float64) genContainer {
	var c genContainer
	u := r.Float64()
	c.kind = NumWorkloads - 1
	for k, v := range cum {
		if u < v {
			c.kind = k
			break
		}
	}
	c.cpuBase = genLogUniform(r, 0.005, 16)
	c.memBase = genLogUniform(r, 64*genMiB, 64*genGiB)
	c.ageDays = genLogUniform(r, 0.1, 365)
	c.startStep = r.IntN(365 * genStepsPerDay)
	c.tzSteps = (r.IntN(18) - 8) * genStepsPerHour // UTC-8 .. UTC+9
	switch u := r.Float64(); {
	case u < 0.25: // no limit
	case u < 0.4: // a tight limit: such containers run throttled
		c.cpuLimit = c.cpuBase * genUniform(r, 0.5, 1.2)
	default:
		c.cpuLimit = c.cpuBase * genUniform(r, 1.2, 4)
	}
	return c
}

// genSim simulates one container's CPU (cores) and memory (bytes) for
// len(cpu) steps of 5 minutes from c.startStep.
type genSim struct {
	r    *rand.Rand
	src  *rand.PCG // the same stream as r
	ns   uint64    // xorshift64* state for per-step noise, seeded from src
	c    *genContainer
	hist int // configured history steps: the workload is c.ageDays old at step hist-1
	cpu  []float64
	mem  []float64
	// peaks adds transient memory peaks (genPeaks) after the workload's own dynamics.
	peaks bool

	// Local time of the current step: step of day and weekday (0 = Sunday).
	tod, dow int
}

func (s *genSim) run() {
	s.ns = s.src.Uint64() | 1
	local := s.c.startStep + s.c.tzSteps + 7*genStepsPerDay // keep it positive; 7 days keep the weekday
	s.tod = local % genStepsPerDay
	s.dow = (1 + local/genStepsPerDay) % 7 // genEpoch is a Monday
	switch s.c.kind {
	case genWeb:
		s.web()
	case genBatch:
		s.batch()
	case genCompute:
		s.compute()
	case genDatabase:
		s.database()
	default:
		s.cron()
	}
	if s.peaks {
		genPeaks(s.r, s.mem)
	}
	// Throttling: CPU usage cannot exceed the limit, nor the node.
	ceiling := genNodeCores
	if s.c.cpuLimit > 0 {
		ceiling = min(ceiling, s.c.cpuLimit)
	}
	for i, v := range s.cpu {
		// Plain comparisons: min and max would also handle NaN and -0.
		if v < 0 {
			v = 0
		}
		if v > ceiling {
			v = ceiling
		}
		s.cpu[i] = v
		if s.mem[i] < genMinMem {
			s.mem[i] = genMinMem
		}
	}
}

// tick advances the local clock by one step.
func (s *genSim) tick() {
	if s.tod++; s.tod == genStepsPerDay {
		s.tod = 0
		if s.dow++; s.dow == 7 {
			s.dow = 0
		}
	}
}

// genNoise is AR(1) noise with a given stationary standard deviation:
// e ← φe + innovation, innovations uniform (cheap, and the AR filter makes
// the sum close to normal). Its |e| stays below 0.5·k/(1−φ).
type genNoise struct {
	e, phi, k float64
}

func newGenNoise(sigma, phi float64) genNoise {
	return genNoise{phi: phi, k: sigma * math.Sqrt((1-phi*phi)*12)}
}

// next advances the noise with u uniform in [0,1).
func (n *genNoise) next(u float64) float64 {
	n.e = n.phi*n.e + n.k*(u-0.5)
	return n.e
}

// uniforms returns two uniforms in [0,1) from one xorshift64* draw: noise
// is drawn twice per step, and PCG costs three times more.
func (s *genSim) uniforms() (float64, float64) {
	s.ns ^= s.ns >> 12
	s.ns ^= s.ns << 25
	s.ns ^= s.ns >> 27
	x := s.ns * 0x2545f4914f6cdd1d
	const scale = 1.0 / (1 << 32)
	return float64(x>>32) * scale, float64(uint32(x)) * scale
}

// genSpikes are bursts at exponential gaps: while one lasts, level returns
// its amplitude, otherwise 1.
type genSpikes struct {
	meanGap        float64 // steps
	durMin, durMax int     // steps
	ampMin, ampMax float64
	next, end      int
	amp            float64
}

func (p *genSpikes) start(r *rand.Rand) {
	p.next = int(r.ExpFloat64() * p.meanGap)
	p.end = -1
}

// level returns the spike multiplier at step i (called with i ascending).
func (p *genSpikes) level(r *rand.Rand, i int) float64 {
	if i == p.next {
		p.end = i + p.durMin + r.IntN(p.durMax-p.durMin+1)
		p.amp = genUniform(r, p.ampMin, p.ampMax)
		p.next = p.end + 1 + int(r.ExpFloat64()*p.meanGap)
	}
	if i < p.end {
		return p.amp
	}
	return 1
}

// genPeaks adds the transient memory peaks real containers show (a
// request that loads a large object, a report, a cache refill): in 90% of
// containers, peaks at exponential gaps (mean U(0.2, 1.5) days) that lift
// memory × U(1.05, 2.5) log-uniform for 1 to 6 steps (5–30 min). Each
// peak is one event, so a history's maximum is often a peak the next day
// does not repeat: over 7 days the next day's peak is then a median 0.78×
// the history's maximum and above it on 15% of days, against 0.78× and 13%
// on the real Bitbrains VMs (docs/data.md).
func genPeaks(r *rand.Rand, mem []float64) {
	if r.Float64() >= 0.9 {
		return
	}
	gap := genUniform(r, 0.2, 1.5) * float64(genStepsPerDay)
	for i := int(r.ExpFloat64() * gap); i < len(mem); i += 1 + int(r.ExpFloat64()*gap) {
		k, n := genLogUniform(r, 1.05, 2.5), 1+r.IntN(6)
		for j := i; j < min(i+n, len(mem)); j++ {
			mem[j] *= k
		}
		i += n
	}
}

// genLeak is a memory leak cut short by restarts: in a quarter of web and
// compute containers memory grows by rate × base per day and falls back
// at a restart every 0.5-4 days.
type genLeak struct {
	perStep      float64 // growth per step, as a fraction of base
	period, step int     // steps between restarts; steps since the last one
}

func newGenLeak(r *rand.Rand) genLeak {
	if r.Float64() >= 0.25 {
		return genLeak{}
	}
	period := int(genUniform(r, 0.5, 4) * float64(genStepsPerDay))
	return genLeak{perStep: genLogUniform(r, 0.02, 0.4) / float64(genStepsPerDay), period: period, step: r.IntN(period)}
}

// next returns the current memory multiplier and advances one step.
func (l *genLeak) next() float64 {
	if l.period == 0 {
		return 1
	}
	m := 1 + l.perStep*float64(l.step)
	if l.step++; l.step == l.period {
		l.step = 0
	}
	return m
}

// web: a diurnal sinusoid peaking in the local afternoon, quieter at
// weekends, with noise and occasional traffic spikes; memory steady with a
// mild diurnal swing (and perhaps a leak).
func (s *genSim) web() {
	r, c := s.r, s.c
	trough := genUniform(r, 0.15, 0.5)
	weekend := genUniform(r, 0.4, 1)
	peak := (12 + r.IntN(5)) * genStepsPerHour // 12:00-16:59 local
	memSwing := genUniform(r, 0.05, 0.25)
	memSpike := genUniform(r, 0.05, 0.3)
	cpuNoise := newGenNoise(genUniform(r, 0.05, 0.2), 0.7)
	memNoise := newGenNoise(0.01, 0.9)
	spikes := genSpikes{meanGap: float64(genStepsPerDay) / genUniform(r, 0.2, 2), durMin: 3, durMax: 12, ampMin: 1.5, ampMax: 3}
	spikes.start(r)
	leak := newGenLeak(r)
	for i := range s.cpu {
		level := trough + (1-trough)*genDiurnal[(s.tod-peak+genStepsPerDay)%genStepsPerDay]
		if s.dow == 0 || s.dow == 6 {
			level *= weekend
		}
		sp := spikes.level(r, i)
		u1, u2 := s.uniforms()
		s.cpu[i] = c.cpuBase * level * sp * (1 + cpuNoise.next(u1))
		m := (1 - memSwing + memSwing*level) * leak.next()
		if sp > 1 {
			m *= 1 + memSpike
		}
		s.mem[i] = c.memBase * m * (1 + memNoise.next(u2))
		s.tick()
	}
}

// batch: jobs that switch on and off, either at random (exponential idle
// gaps) or on a schedule (every 6, 12 or 24 h at a fixed time). A job runs
// CPU-hot and its memory rises from the idle floor to the job's peak, then
// is released when the job ends.
func (s *genSim) batch() {
	r, c := s.r, s.c
	idleCPU := genUniform(r, 0.005, 0.05)
	floor := genUniform(r, 0.05, 0.3)
	cpuNoise := newGenNoise(0.1, 0.5)
	memNoise := newGenNoise(0.02, 0.8)
	scheduled := r.Float64() < 0.5
	period := []int{6, 12, 24}[r.IntN(3)] * genStepsPerHour
	phase := r.IntN(period)
	meanIdle := genUniform(r, 1, 8) * float64(genStepsPerHour)
	jobMin, jobMax := 4, 72 // 20 min .. 6 h
	if scheduled {
		jobMax = min(jobMax, period-1)
	}
	var left, dur int // steps left in the current job, its length
	var intensity, peak float64
	startJob := func() {
		dur = jobMin + r.IntN(jobMax-jobMin+1)
		left = dur
		intensity = genUniform(r, 0.6, 1)
		peak = genUniform(r, 0.5, 1)
	}
	nextStart := int(r.ExpFloat64() * meanIdle)
	if r.Float64() < 0.3 && !scheduled { // caught in the middle of a job
		startJob()
		left = 1 + r.IntN(dur)
	}
	for i := range s.cpu {
		if left == 0 && ((scheduled && (i+phase)%period == 0) || (!scheduled && i >= nextStart)) {
			startJob()
		}
		u1, u2 := s.uniforms()
		if left > 0 {
			progress := float64(dur-left+1) / float64(dur)
			s.cpu[i] = c.cpuBase * intensity * (1 + cpuNoise.next(u1))
			s.mem[i] = c.memBase * (floor + (peak-floor)*progress) * (1 + memNoise.next(u2))
			if left--; left == 0 {
				nextStart = i + 1 + int(r.ExpFloat64()*meanIdle)
			}
		} else {
			s.cpu[i] = c.cpuBase * idleCPU * (1 + cpuNoise.next(u1))
			s.mem[i] = c.memBase * floor * (1 + memNoise.next(u2))
		}
	}
}

// compute: steady high CPU with small noise, steady memory (but for a leak).
func (s *genSim) compute() {
	r, c := s.r, s.c
	level := genUniform(r, 0.7, 0.95)
	memLevel := genUniform(r, 0.8, 1)
	cpuNoise := newGenNoise(genUniform(r, 0.02, 0.06), 0.5)
	memNoise := newGenNoise(0.005, 0.9)
	leak := newGenLeak(r)
	for i := range s.cpu {
		u1, u2 := s.uniforms()
		s.cpu[i] = c.cpuBase * level * (1 + cpuNoise.next(u1))
		s.mem[i] = c.memBase * memLevel * leak.next() * (1 + memNoise.next(u2))
	}
}

// database: memory grows at a random rate (faster while the workload is
// young: caches warming), in half the containers dropping back at periodic
// compactions; CPU moderate with a diurnal swing and occasional heavy queries.
func (s *genSim) database() {
	r, c := s.r, s.c
	growth := min(genLogUniform(r, 0.01, 0.15)*(1+2/(1+c.ageDays)), 0.5) // of memBase per day
	compaction := 0
	if r.Float64() < 0.5 {
		compaction = int(genUniform(r, 0.5, 3) * float64(genStepsPerDay))
	}
	// Steps of growth before the first sample: since the last restart (at
	// most 3 days ago), or since birth; a young database was born inside
	// the window, and its memory starts growing then.
	atStart := int(c.ageDays*float64(genStepsPerDay)) - s.hist + 1
	offset := atStart
	if atStart > 0 {
		offset = r.IntN(min(atStart, 3*genStepsPerDay) + 1)
		if compaction > 0 {
			offset %= compaction
		}
	}
	low := genUniform(r, 0.3, 0.7)
	peak := (10 + r.IntN(8)) * genStepsPerHour
	cpuNoise := newGenNoise(0.15, 0.7)
	memNoise := newGenNoise(0.005, 0.9)
	spikes := genSpikes{meanGap: float64(genStepsPerDay) / genUniform(r, 0.3, 1), durMin: 2, durMax: 6, ampMin: 1.5, ampMax: 2.5}
	spikes.start(r)
	perStep := growth / float64(genStepsPerDay)
	grown := offset
	for i := range s.cpu {
		level := low + (1-low)*genDiurnal[(s.tod-peak+genStepsPerDay)%genStepsPerDay]
		u1, u2 := s.uniforms()
		s.cpu[i] = c.cpuBase * level * spikes.level(r, i) * (1 + cpuNoise.next(u1))
		s.mem[i] = c.memBase * min(1+perStep*float64(max(grown, 0)), genMaxDBGrowth) * (1 + memNoise.next(u2))
		if grown++; compaction > 0 && grown >= compaction {
			grown = 0
		}
		s.tick()
	}
}

// cron: idle most of the time, with sharp runs every 15 min .. 24 h: CPU
// and memory jump for a few steps. One run in twenty takes 2-4× longer.
func (s *genSim) cron() {
	r, c := s.r, s.c
	period := []int{3, 6, 12, 24, 72, 144, 288}[r.IntN(7)]
	phase := r.IntN(period)
	runLen := 1 + r.IntN(max(1, min(6, period/3)))
	idleCPU := genUniform(r, 0.002, 0.02)
	idleMem := genUniform(r, 0.05, 0.2)
	runMem := genUniform(r, 0.6, 1)
	cpuNoise := newGenNoise(0.3, 0.3)
	memNoise := newGenNoise(0.02, 0.8)
	left := 0
	var level float64
	for i := range s.cpu {
		if (i+phase)%period == 0 && left == 0 {
			left = runLen
			if r.IntN(20) == 0 {
				left = int(float64(runLen) * genUniform(r, 2, 4))
			}
			level = genUniform(r, 0.7, 1)
		}
		u1, u2 := s.uniforms()
		if left > 0 {
			left--
			s.cpu[i] = c.cpuBase * level * (1 + 0.3*cpuNoise.next(u1))
			s.mem[i] = c.memBase * runMem * (1 + memNoise.next(u2))
		} else {
			s.cpu[i] = c.cpuBase * idleCPU * (1 + cpuNoise.next(u1))
			s.mem[i] = c.memBase * idleMem * (1 + memNoise.next(u2))
		}
	}
}

func genUniform(r *rand.Rand, lo, hi float64) float64 { return lo + (hi-lo)*r.Float64() }

func genLogUniform(r *rand.Rand, lo, hi float64) float64 {
	return lo * math.Exp(r.Float64()*math.Log(hi/lo))
}

// genMix64 is SplitMix64's finalizer: it spreads (seed, index) into PCG
// state so neighbouring samples get unrelated streams.
func genMix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
