package bench

import (
	"slices"
	"time"
)

// Summary is the median of several runs' figures.
type Summary struct {
	Runs          int           `json:"runs"`
	DeliverRate   float64       `json:"delivered_per_sec"`
	PublishRate   float64       `json:"published_per_sec"`
	MissedPercent float64       `json:"missed_percent"`
	P50           time.Duration `json:"p50_ns"`
	P99           time.Duration `json:"p99_ns"`
	P999          time.Duration `json:"p999_ns"`
	// Baseline figures, when measured, and the bus's delivery rate as a
	// fraction of the baseline's, the median of the per-run ratios.
	BaselineRate float64       `json:"baseline_per_sec,omitempty"`
	BaselineP50  time.Duration `json:"baseline_p50_ns,omitempty"`
	BaselineP99  time.Duration `json:"baseline_p99_ns,omitempty"`
	Ratio        float64       `json:"ratio,omitempty"`
	// Without metadata, when Config.Correlation compared it, and the
	// medians of the per-run ratios with/without of delivery rate and p50.
	PlainRate      float64       `json:"plain_delivered_per_sec,omitempty"`
	PlainP50       time.Duration `json:"plain_p50_ns,omitempty"`
	PlainRateRatio float64       `json:"correlation_rate_ratio,omitempty"`
	PlainP50Ratio  float64       `json:"correlation_p50_ratio,omitempty"`
}

// Summarize takes the median of each figure over reps.
func Summarize(reps []Report) Summary {
	s := Summary{Runs: len(reps)}
	if len(reps) == 0 {
		return s
	}
	s.DeliverRate = median(reps, func(r Report) float64 { return r.Bus.DeliverRate() })
	s.PublishRate = median(reps, func(r Report) float64 { return r.Bus.PublishRate() })
	s.MissedPercent = median(reps, func(r Report) float64 { return r.Bus.MissedPercent() })
	s.P50 = time.Duration(median(reps, func(r Report) float64 { return float64(r.Bus.Latency.P50) }))
	s.P99 = time.Duration(median(reps, func(r Report) float64 { return float64(r.Bus.Latency.P99) }))
	s.P999 = time.Duration(median(reps, func(r Report) float64 { return float64(r.Bus.Latency.P999) }))
	if reps[0].Baseline != nil {
		s.BaselineRate = median(reps, func(r Report) float64 { return r.Baseline.DeliverRate() })
		s.BaselineP50 = time.Duration(median(reps, func(r Report) float64 { return float64(r.Baseline.Latency.P50) }))
		s.BaselineP99 = time.Duration(median(reps, func(r Report) float64 { return float64(r.Baseline.Latency.P99) }))
		s.Ratio = median(reps, func(r Report) float64 { return r.Ratio() })
	}
	if reps[0].Plain != nil {
		s.PlainRate = median(reps, func(r Report) float64 { return r.Plain.DeliverRate() })
		s.PlainP50 = time.Duration(median(reps, func(r Report) float64 { return float64(r.Plain.Latency.P50) }))
		s.PlainRateRatio = median(reps, func(r Report) float64 { return r.Bus.DeliverRate() / r.Plain.DeliverRate() })
		s.PlainP50Ratio = median(reps, func(r Report) float64 { return float64(r.Bus.Latency.P50) / float64(r.Plain.Latency.P50) })
	}
	return s
}

// Ratio is the bus's delivery rate per subscriber as a fraction of the
// baseline's single-reader rate, or 0 without a baseline.
func (r Report) Ratio() float64 {
	if r.Baseline == nil || r.Config.Subs == 0 {
		return 0
	}
	return r.Bus.DeliverRate() / float64(r.Config.Subs) / r.Baseline.DeliverRate()
}

// MissedPercent is the share of expected deliveries that were dropped.
func (r Result) MissedPercent() float64 {
	total := r.Delivered + r.Missed
	if total == 0 {
		return 0
	}
	return 100 * float64(r.Missed) / float64(total)
}

func median(reps []Report, f func(Report) float64) float64 {
	v := make([]float64, len(reps))
	for i, r := range reps {
		v[i] = f(r)
	}
	slices.Sort(v)
	if n := len(v); n%2 == 1 {
		return v[n/2]
	} else {
		return (v[n/2-1] + v[n/2]) / 2
	}
}
