package monitoring

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"
)

func TestStatsDLineFormats(t *testing.T) {
	t.Parallel()
	bt := 8.0
	rec := record{ApiId: "orders", OperationId: "list", Hostname: "api.contoso.com", ResponseCode: 502, BackendResponseCode: 503,
		LastErrorReason: "Backend|Failure", Cache: "none", TotalTime: 12.5, BackendTime: &bt}
	tags := "ApiId%sorders,OperationId%slist,Hostname%sapi.contoso.com,GatewayResponseCode%s502,GatewayResponseCodeCategory%s5xx," +
		"BackendResponseCode%s503,BackendResponseCodeCategory%s5xx,LastErrorReason%sBackend_Failure,Cache%snone"
	with := func(sep string) string { return strings.ReplaceAll(tags, "%s", sep) }
	tests := []struct {
		format   string
		sampling float64
		want     []string
	}{
		{TagFormatDogStatsD, 1, []string{"Requests:1|c|#" + with(":"), "DurationInMS:12.5|ms|#" + with(":"), "BackendDurationInMS:8|ms|#" + with(":")}},
		{TagFormatInfluxDB, 1, []string{"Requests," + with("=") + ":1|c", "DurationInMS," + with("=") + ":12.5|ms", "BackendDurationInMS," + with("=") + ":8|ms"}},
		{TagFormatLibrato, 1, []string{"Requests#" + with("=") + ":1|c", "DurationInMS#" + with("=") + ":12.5|ms", "BackendDurationInMS#" + with("=") + ":8|ms"}},
	}
	for _, tc := range tests {
		s := &statsdSender{sampling: tc.sampling, format: tc.format}
		s.record(&rec)
		if got := strings.Split(string(s.buf), "\n"); strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", tc.format, got, tc.want)
		}
	}
	s := &statsdSender{sampling: 0.5, format: TagFormatDogStatsD}
	for range 1000 {
		s.record(&record{TotalTime: 1})
		if len(s.buf) > 0 && !strings.HasSuffix(strings.SplitN(string(s.buf), "\n", 2)[0], "|c|@0.5") {
			t.Fatalf("sampled line without rate: %q", s.buf)
		}
		s.buf = s.buf[:0]
	}
}

// TestStatsDExport: telemetry.metrics.local statsd sends every request as
// datagrams no larger than a packet.
func TestStatsDExport(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	// UDP drops what the socket buffer cannot hold.
	_ = pc.(*net.UDPConn).SetReadBuffer(4 << 20)
	gw := newFakeGateway(0)
	defer gw.Close()
	gw.add(50) // about 50 KB of lines: fits a default socket buffer
	h := &harness{cfg: Config{GatewayTelemetryURL: gw.URL, PollInterval: 20 * time.Millisecond,
		StatsD: &StatsDConfig{Endpoint: pc.LocalAddr().String(), Sampling: 1}}, deps: Deps{Logger: zerolog.Nop()}}
	_, stop := h.start(t)
	defer stop()
	requests := 0
	buf := make([]byte, 65536)
	for requests < 50 {
		pc.SetReadDeadline(time.Now().Add(5 * time.Second))
		n, _, err := pc.ReadFrom(buf)
		if err != nil {
			t.Fatalf("after %d requests: %v", requests, err)
		}
		if n > statsdPacket {
			t.Fatalf("datagram of %d bytes", n)
		}
		for _, l := range strings.Split(string(buf[:n]), "\n") {
			if strings.HasPrefix(l, "Requests:1|c|#") {
				requests++
			}
		}
	}
}
