package server

import (
	"bytes"
	"strconv"
	"strings"
	"testing"

	"github.com/seed393f6fe3/apim-arc-gateway/gateway/policy"
)

func TestEmittedSeriesAreBounded(t *testing.T) {
	t.Parallel()
	e := newEmitted()
	for i := range maxEmittedSeries + 5 {
		e.Emit("ns", "m", 1, []policy.Dimension{{Name: "client", Value: strconv.Itoa(i)}})
	}
	e.Emit("ns", "m", 2, []policy.Dimension{{Name: "client", Value: "0"}}) // an existing series still counts
	var b bytes.Buffer
	e.write(&b)
	out := b.String()
	if !strings.Contains(out, "apim_gateway_emitted_metric_dropped_total 5") {
		t.Errorf("dropped count missing:\n%s", out[len(out)-300:])
	}
	if !strings.Contains(out, `apim_gateway_emitted_metric_sum{namespace="ns",name="m",dim_client="0"} 3`) {
		t.Error("existing series not updated after the limit")
	}
	if n := strings.Count(out, "apim_gateway_emitted_metric_sum{"); n != maxEmittedSeries {
		t.Errorf("%d series, want %d", n, maxEmittedSeries)
	}
}

func TestEmittedLabels(t *testing.T) {
	t.Parallel()
	got := emittedLabels("API Management", "calls", []policy.Dimension{{Name: "Z dim", Value: `a"b`}, {Name: "API ID", Value: "echo"}})
	want := `namespace="API Management",name="calls",dim_API_ID="echo",dim_Z_dim="a\"b"`
	if got != want {
		t.Errorf("labels\n got %s\nwant %s", got, want)
	}
}
