// Package report turns tailor's events into readouts (SPEC "tailor
// report"): per experiment and variant, the visitors exposed, the visitors
// converting per goal after their exposure, conversion rates and the
// uplift against the baseline with 95% intervals — fixed-horizon ones and
// always-valid (sequential) ones that stay valid however often the
// readout is looked at —, engagement value per visitor with its
// intervals, a sample-ratio-mismatch check against the configured
// weights, breakdowns of all that by segment, device, stage, persona or
// country; then visitors per segment, stage and persona. Every count is
// of distinct visitors: the Builder keeps each visitor's state exactly
// (no sketches).
//
// The Builder is incremental: each event updates the tallies it changes
// (an identify retracts both visitors' contributions, merges them and
// adds the result back), so a Report costs the same whatever the number
// of visitors and events. Its state can be written as a snapshot and
// read back (WriteTo, ReadBuilder) to resume a fold of the stream.
// Values are counted in units of 1/10,000 with exact integer sums, so a
// readout does not depend on the order events were folded in.
//
// It is pure: events in, a Report out; no clock, no I/O besides the
// snapshot's reader and writer.
package report
