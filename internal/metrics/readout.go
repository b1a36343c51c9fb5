package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	natsync "github.com/tailor-edge/tailor/sync"
)

// Folder exports a readout folder's counters (natsync.Folder): what it
// folded, how far behind the stream it is, its snapshots, and whether
// this edge holds the lease.
func Folder(reg prometheus.Registerer, f interface{ Stats() natsync.FolderStats }) {
	stats := f.Stats
	reg.MustRegister(
		counterFunc("tailor_readout_folded_events_total", "Events this edge folded into the experiment readouts.",
			func() float64 { return float64(stats().Folded) }),
		counterFunc("tailor_readout_skipped_events_total", "Events the readout folder skipped as folded before (by stream sequence, or a copy by event id).",
			func() float64 { return float64(stats().Skipped) }),
		gaugeFunc("tailor_readout_lag_events", "Events in the stream not folded yet, while this edge holds the readout lease (the stream's last sequence less the last folded).",
			func() float64 {
				s := stats()
				if !s.Holding || s.Last < s.Seq {
					return 0
				}
				return float64(s.Last - s.Seq)
			}),
		gaugeFunc("tailor_readout_lease_held", "1 while this edge holds the readout lease and folds the events stream; one edge at a time does.",
			func() float64 {
				if stats().Holding {
					return 1
				}
				return 0
			}),
		counterFunc("tailor_readout_snapshots_total", "Readout snapshots this edge stored in the object store.",
			func() float64 { return float64(stats().Snapshots) }),
		gaugeFunc("tailor_readout_snapshot_bytes", "Size of the last readout snapshot this edge stored.",
			func() float64 { return float64(stats().SnapshotBytes) }),
		gaugeFunc("tailor_readout_snapshot_seconds", "How long the last readout snapshot took to write and store.",
			func() float64 { return stats().SnapshotSeconds }),
	)
}
