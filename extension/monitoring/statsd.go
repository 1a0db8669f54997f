package monitoring

import (
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
)

// StatsD tag formats (telemetry.metrics.localStatsd.tagFormat).
const (
	TagFormatDogStatsD = "dogStatsD"
	TagFormatInfluxDB  = "influxDB"
	TagFormatLibrato   = "librato"
)

// StatsDConfig configures the local StatsD export
// (telemetry.metrics.local: statsd).
type StatsDConfig struct {
	Endpoint  string  // host:port (UDP)
	Sampling  float64 // share of requests sent, 0 to 1
	TagFormat string  // dogStatsD (default), influxDB or librato
}

// statsdPacket stays under a typical 1500-byte MTU.
const statsdPacket = 1400

// statsdSender sends the self-hosted gateway's local metrics (Requests,
// DurationInMS, BackendDurationInMS, ClientDurationInMS) per request,
// sampled, several lines per UDP datagram. Used by the ingest goroutine
// only.
type statsdSender struct {
	conn     net.Conn
	sampling float64
	format   string
	buf      []byte
	tags     []byte
	errors   atomic.Uint64
	sent     atomic.Uint64
}

func newStatsD(cfg StatsDConfig) (*statsdSender, error) {
	conn, err := net.Dial("udp", cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", KeyStatsDEndpoint, err)
	}
	return &statsdSender{conn: conn, sampling: cfg.Sampling, format: cfg.TagFormat}, nil
}

// statsdValue drops the characters the StatsD line formats use as
// separators.
var statsdValue = strings.NewReplacer(":", "_", "|", "_", ",", "_", "#", "_", "=", "_", "@", "_", " ", "_", "\n", "_")

func (s *statsdSender) record(r *record) {
	if s.sampling < 1 && rand.Float64() >= s.sampling {
		return
	}
	s.tags = s.tags[:0]
	tag := func(k, v string) {
		if v == "" {
			return
		}
		if len(s.tags) > 0 {
			s.tags = append(s.tags, ',')
		}
		s.tags = append(s.tags, k...)
		if s.format == TagFormatDogStatsD || s.format == "" {
			s.tags = append(s.tags, ':')
		} else {
			s.tags = append(s.tags, '=')
		}
		s.tags = append(s.tags, statsdValue.Replace(v)...)
	}
	tag("ApiId", r.ApiId)
	tag("OperationId", r.OperationId)
	tag("Hostname", r.Hostname)
	if r.ResponseCode > 0 {
		tag("GatewayResponseCode", strconv.Itoa(r.ResponseCode))
		tag("GatewayResponseCodeCategory", category(r.ResponseCode))
	}
	if r.BackendResponseCode > 0 {
		tag("BackendResponseCode", strconv.Itoa(r.BackendResponseCode))
		tag("BackendResponseCodeCategory", category(r.BackendResponseCode))
	}
	tag("LastErrorReason", r.LastErrorReason)
	tag("Cache", r.Cache)
	s.line("Requests", 1, "c")
	s.line("DurationInMS", r.TotalTime, "ms")
	if r.BackendTime != nil {
		s.line("BackendDurationInMS", *r.BackendTime, "ms")
	}
	if r.ClientTime != nil {
		s.line("ClientDurationInMS", *r.ClientTime, "ms")
	}
}

// line appends one metric line in the configured tag format.
func (s *statsdSender) line(name string, v float64, typ string) {
	start := len(s.buf)
	if start > 0 {
		s.buf = append(s.buf, '\n')
	}
	s.buf = append(s.buf, name...)
	switch s.format {
	case TagFormatInfluxDB:
		if len(s.tags) > 0 {
			s.buf = append(s.buf, ',')
			s.buf = append(s.buf, s.tags...)
		}
	case TagFormatLibrato:
		if len(s.tags) > 0 {
			s.buf = append(s.buf, '#')
			s.buf = append(s.buf, s.tags...)
		}
	}
	s.buf = append(s.buf, ':')
	s.buf = strconv.AppendFloat(s.buf, v, 'f', -1, 64)
	s.buf = append(s.buf, '|')
	s.buf = append(s.buf, typ...)
	if s.sampling < 1 {
		s.buf = append(s.buf, "|@"...)
		s.buf = strconv.AppendFloat(s.buf, s.sampling, 'f', -1, 64)
	}
	if (s.format == TagFormatDogStatsD || s.format == "") && len(s.tags) > 0 {
		s.buf = append(s.buf, "|#"...)
		s.buf = append(s.buf, s.tags...)
	}
	if len(s.buf) > statsdPacket {
		if start == 0 {
			s.flush() // one line larger than a packet goes alone
			return
		}
		line := append([]byte(nil), s.buf[start+1:]...)
		s.buf = s.buf[:start]
		s.flush()
		s.buf = append(s.buf, line...)
	}
}

// flush sends what is buffered. UDP: a collector that is down loses the
// datagram; the error is counted, never retried.
func (s *statsdSender) flush() {
	if len(s.buf) == 0 {
		return
	}
	if _, err := s.conn.Write(s.buf); err != nil {
		s.errors.Add(1)
	} else {
		s.sent.Add(1)
	}
	s.buf = s.buf[:0]
}

func (s *statsdSender) close() error {
	s.flush()
	return s.conn.Close()
}
