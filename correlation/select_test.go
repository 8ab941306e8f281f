package correlation

import (
	"strings"
	"testing"
)

// TestSelect: criteria, visibility, and both limits, newest kept; nothing
// the asker may not see is counted against the limits.
func TestSelect(t *testing.T) {
	tr, clk := newTestTracker(t, Config{})
	var all []Event
	for i := range 10 {
		m := md("C", "", "R", "scan", "investigation_id", "INC-1")
		ev := record(t, tr, clk, m, 10+i, "procmond", false)
		all = append(all, ev)
	}
	restricted := func(topic string) bool { return !strings.HasSuffix(topic, "lifecycle") }
	size := all[0].Size()
	tests := []struct {
		name      string
		sel       Selection
		want      int // events returned, the most recent
		truncated bool
	}{
		{"all by tag", Selection{Tags: map[string]string{"investigation_id": "INC-1"}, Limit: 100, MaxBytes: 1 << 20}, 10, false},
		{"limit keeps the newest", Selection{CorrelationID: "C", Limit: 3, MaxBytes: 1 << 20}, 3, false},
		{"bytes keep the newest that fit", Selection{RootID: "R", Limit: 100, MaxBytes: 4*size + size/2}, 4, true},
		{"stage and another tag", Selection{Stage: "scan", Tags: map[string]string{"investigation_id": "INC-2"}, Limit: 100, MaxBytes: 1 << 20}, 0, false},
		{"invisible topics are neither returned nor counted", Selection{Limit: 1, MaxBytes: 1 << 20, Visible: restricted}, 0, false},
		{"range", Selection{Since: all[5].ReceivedAt, Limit: 100, MaxBytes: 1 << 20}, 5, false},
		{"no limit returns nothing", Selection{CorrelationID: "C"}, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, truncated := tr.Select(tt.sel)
			if len(got) != tt.want || truncated != tt.truncated {
				t.Fatalf("Select = %d events, truncated %v; want %d, %v", len(got), truncated, tt.want, tt.truncated)
			}
			for i, ev := range got {
				if want := all[len(all)-tt.want+i]; ev.PublisherPID != want.PublisherPID {
					t.Errorf("event %d from pid %d; want %d (the most recent, in receive order)", i, ev.PublisherPID, want.PublisherPID)
				}
			}
		})
	}
}
